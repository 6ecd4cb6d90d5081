#!/usr/bin/env python3
"""Whole training step of the plain-PyTorch reference (gflref) on a small GFL detector, saved so that gfl's C# step
can be compared with it term by term and parameter by parameter (issue 22, tests/.../Training/StepParityTests.cs).

Run with Debian's interpreter (torch 1.13, torchvision): /usr/bin/python3 scripts/reference/make_step_parity_fixture.py

The detector is gflref.GflDetector with a narrow torchvision ResNet-18 (width 8, same code path as the real one,
scripts/make_model_fixtures.py), FPN and head 32 channels, 2 stacked convs, GN 32, 3 classes, nothing frozen and
BatchNorms in training mode (batch statistics), as a from-scratch config. The batch holds two 160x192 images with
small boxes (6-20 px, smaller than the 64 px P3 anchors: the platelet case), medium and large ones, and one gt
touching the border. Written (tests/GflTrainer.Tests/Fixtures/parity/):
  step_parity.safetensors  model.* (state dict, mmdetection names), images, gt boxes/labels per image,
                           loss.<term>.<level>, grad.<parameter name> (after backward of the summed loss)
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import safetensors_format  # noqa: E402
from make_model_fixtures import NarrowResNet  # noqa: E402
from gflref.detector import GflDetector  # noqa: E402
from gflref.fpn import FPN  # noqa: E402
from gflref.gfl_loss import GflLoss  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "tests", "GflTrainer.Tests", "Fixtures", "parity")


def narrow_gfl_detector(width, channels=32, num_classes=3):
    """gflref.GflDetector from scratch (nothing frozen, BN in training mode) with a torchvision ResNet-18 of base
    width `width` (gfl: model.backbone.base_channels) and FPN/head of `channels`, 2 stacked convs."""
    det = GflDetector(num_classes=num_classes, depth=18, fpn_channels=channels, feat_channels=channels,
                      stacked_convs=2, frozen_stages=-1, norm_eval=False)
    narrow = NarrowResNet(18, width)
    bb = det.backbone
    bb.conv1, bb.bn1, bb.layer1, bb.layer2, bb.layer3, bb.layer4 = (
        narrow.conv1, narrow.bn1, narrow.layer1, narrow.layer2, narrow.layer3, narrow.layer4)
    bb.out_channels = [width, 2 * width, 4 * width, 8 * width]
    det.neck = FPN(bb.out_channels[1:], channels, num_outs=5)
    return det


def build(g):
    torch.manual_seed(0)
    det = narrow_gfl_detector(8)
    # Random but non-trivial values everywhere (a fresh head predicts ~0.01 everywhere, which hides little).
    with torch.no_grad():
        for name, p in det.named_parameters():
            if name.endswith("scale"):
                p.copy_(1.0 + 0.2 * torch.rand(p.shape, generator=g))
            elif ".bn" in name or name.startswith("backbone.bn") or ".gn." in name or "downsample.1" in name:
                p.copy_((torch.rand(p.shape, generator=g) + 0.5) if name.endswith("weight")
                        else torch.randn(p.shape, generator=g) * 0.1)
            else:
                fan_in = max(1, p[0].numel()) if p.dim() > 1 else 1
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
    det.train()
    return det


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(22)
    det = build(g)
    images = torch.randn(2, 3, 160, 192, generator=g)
    gt_bboxes = [
        torch.tensor([[20.0, 30.0, 26.0, 36.0],        # 6x6, far below the P3 anchor
                      [60.5, 40.25, 72.5, 50.75],      # 12x10.5
                      [100.0, 100.0, 120.0, 120.0],    # 20x20 (a platelet at this scale)
                      [30.0, 70.0, 150.0, 150.0],      # large
                      [170.0, 2.0, 192.0, 40.0]]),     # touching the right border
        torch.tensor([[8.0, 8.0, 17.0, 19.0],          # 9x11
                      [40.0, 60.0, 100.0, 110.0],      # medium
                      [0.0, 0.0, 191.0, 159.0]]),      # whole image
    ]
    gt_labels = [torch.tensor([2, 2, 2, 0, 1]), torch.tensor([2, 1, 0])]
    pad_shapes = [(160, 192), (160, 192)]

    cls_scores, bbox_preds = det(images)
    losses = GflLoss(num_classes=3)(cls_scores, bbox_preds, gt_bboxes, gt_labels, pad_shapes)
    total = sum(sum(v) for v in losses.values())
    total.backward()

    tensors = {"images": images}
    for k, v in det.state_dict().items():
        tensors["model." + k] = v.clone()
    for i, (b, l) in enumerate(zip(gt_bboxes, gt_labels)):
        tensors[f"gt_boxes.{i}"] = b
        tensors[f"gt_labels.{i}"] = l
    for term, levels in losses.items():
        for lvl, v in enumerate(levels):
            tensors[f"loss.{term}.{lvl}"] = v.detach().reshape(1)
    for name, p in det.named_parameters():
        if p.grad is not None:
            tensors["grad." + name] = p.grad.clone()
    path = os.path.join(OUT, "step_parity.safetensors")
    safetensors_format.write(path, tensors, {"torch": torch.__version__,
                                             "generator": "scripts/reference/make_step_parity_fixture.py"})
    print(f"{path}: total loss {float(total):.6f}, {sum(1 for k in tensors if k.startswith('grad.'))} gradients,"
          f" {os.path.getsize(path)} bytes")
    for term, levels in losses.items():
        print(term, [round(float(v), 6) for v in levels])


if __name__ == "__main__":
    main()
