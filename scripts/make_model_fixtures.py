#!/usr/bin/env python3
"""Reference fixtures for tests/GflTrainer.Tests/Model (torchvision ResNet equivalence of the C# ResNet).

Design (fixtures must stay < 10 MB in the repository):
  * A full torchvision resnet18 is 45 MB in fp32 (22 MB even in fp16), resnet50 ~94 MB, and no RNG is shared between
    PyTorch and TorchSharp, so real-width weights cannot be shipped or regenerated. Instead the networks are
    *narrow* torchvision ResNets: the stem width and per-stage planes are w, 2w, 4w, 8w instead of 64..512
    (resnet18 with w=16 -> 0.7 M parameters, resnet50 with w=8 -> 0.37 M). They are built from torchvision's own
    BasicBlock / Bottleneck classes and ResNet._make_layer, so every block, stride, padding, downsample and the stem
    follow torchvision's code path; only the channel counts differ. The C# ResNet takes the same width
    (`baseChannels`) and must reproduce C3, C4, C5 in eval mode.
  * Weights: torchvision's init (Kaiming conv) plus *random* BatchNorm affine and running statistics, so that a
    wrong eps, a training-mode BN or a swapped mean/var would show.
  * Input: (2, 3, 61, 93), odd sizes, so ceil-mode size arithmetic of convs and max-pool is exercised.
  * Real-width naming/shape proof without weights: torchvision_resnet_shapes.json lists every state-dict name and
    shape of the real torchvision resnet18/resnet50 (C# compares its ResNet(depth) state dict to it).
Files (tests/GflTrainer.Tests/Fixtures/Model/):
  resnet{18_w16,50_w8}.safetensors      torchvision names (incl. fc.*), fp32
  resnet{18_w16,50_w8}_io.safetensors   input, c3, c4, c5 (eval mode, fp32)
  torchvision_resnet_shapes.json
  gfl_tiny_neck_head.safetensors / gfl_tiny_io.safetensors: a tiny detector (the resnet18_w16 backbone, FPN with 32
    channels, head with 2 stacked convs, GroupNorm(8), 3 classes, reg_max 4) with random neck/head weights under
    mmdetection's names (neck.lateral_convs.i.conv.*, bbox_head.cls_convs.i.gn.*, bbox_head.scales.l.scale, ...) and
    its per-level outputs on a (1, 3, 97, 131) input. The FPN and head reference below is written with PyTorch
    functional ops straight from mmdetection's FPN.forward / GFLHead.forward_single (mmdet itself needs compiled mmcv
    ops that the box lacks); it pins the semantics TorchSharp must reproduce: nearest upsampling to the lateral's
    size, 'on_output' extra convs without ReLU, conv -> GN -> ReLU towers, Scale on the reg logits.
Run: /usr/bin/python3 scripts/make_model_fixtures.py   (torch 1.13 / torchvision 0.14 from Debian were used)
"""
import json
import os
import sys

import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_format  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "GflTrainer.Tests", "Fixtures", "Model")
BLOCKS = {18: (BasicBlock, [2, 2, 2, 2]), 50: (Bottleneck, [3, 4, 6, 3])}


class NarrowResNet(ResNet):
    """torchvision ResNet with base width w instead of 64 (same modules, same _make_layer, same init)."""

    def __init__(self, depth, width, num_classes=1000):
        block, layers = BLOCKS[depth]
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return c3, c4, self.layer4(c4)


def randomize_batchnorm(model, g):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g) * 0.1
            m.running_mean.data = torch.randn(n, generator=g) * 0.1
            m.running_var.data = torch.rand(n, generator=g) * 1.5 + 0.5
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))


def main():
    os.makedirs(OUT, exist_ok=True)
    # The narrow class at width 64 must be torchvision's real network (same names and shapes).
    for depth in BLOCKS:
        real = getattr(torchvision.models, f"resnet{depth}")(weights=None).state_dict()
        narrow = NarrowResNet(depth, 64).state_dict()
        assert {k: tuple(v.shape) for k, v in real.items()} == {k: tuple(v.shape) for k, v in narrow.items()}

    shapes = {}
    for depth in (18, 50):
        shapes[f"resnet{depth}"] = {k: list(v.shape) for k, v in
                                    getattr(torchvision.models, f"resnet{depth}")(weights=None).state_dict().items()}
    with open(os.path.join(OUT, "torchvision_resnet_shapes.json"), "w") as f:
        json.dump(shapes, f, indent=0, sort_keys=True)

    for depth, width in ((18, 16), (50, 8)):
        torch.manual_seed(depth)
        g = torch.Generator().manual_seed(1000 + depth)
        # A 10-way classifier (not 1000) keeps the file small; fc.* only has to be present and ignored by the loader.
        model = NarrowResNet(depth, width, num_classes=10)
        randomize_batchnorm(model, g)
        model.eval()
        x = torch.randn(2, 3, 61, 93, generator=g)
        with torch.no_grad():
            c3, c4, c5 = model.features(x)
        name = f"resnet{depth}_w{width}"
        meta = {"torch": torch.__version__, "torchvision": torchvision.__version__, "depth": str(depth),
                "base_width": str(width), "script": "scripts/make_model_fixtures.py"}
        safetensors_format.write(os.path.join(OUT, f"{name}.safetensors"), model.state_dict(), meta)
        safetensors_format.write(os.path.join(OUT, f"{name}_io.safetensors"),
                                 {"input": x, "c3": c3, "c4": c4, "c5": c5}, meta)
        # Self-check of the writer: read back and compare.
        back, _ = safetensors_format.read(os.path.join(OUT, f"{name}.safetensors"))
        assert all(torch.equal(back[k], v) for k, v in model.state_dict().items())
        print(name, sum(p.numel() for p in model.parameters()), "params; c3..c5",
              [tuple(t.shape) for t in (c3, c4, c5)])
    tiny_detector_fixture()


def tiny_detector_fixture():
    g = torch.Generator().manual_seed(7)
    backbone = NarrowResNet(18, 16, num_classes=10)
    weights, _ = safetensors_format.read(os.path.join(OUT, "resnet18_w16.safetensors"))
    backbone.load_state_dict(weights)
    backbone.eval()
    channels, stacked, groups, classes, reg_max = 32, 2, 8, 3, 4
    sd = {}

    def rnd(*shape, std):
        return torch.randn(*shape, generator=g) * std

    for i, c in enumerate((32, 64, 128)):
        sd[f"neck.lateral_convs.{i}.conv.weight"] = rnd(channels, c, 1, 1, std=(1 / c) ** 0.5)
        sd[f"neck.lateral_convs.{i}.conv.bias"] = rnd(channels, std=0.1)
    for i in range(5):
        sd[f"neck.fpn_convs.{i}.conv.weight"] = rnd(channels, channels, 3, 3, std=(1 / (9 * channels)) ** 0.5)
        sd[f"neck.fpn_convs.{i}.conv.bias"] = rnd(channels, std=0.1)
    for tower in ("cls_convs", "reg_convs"):
        for i in range(stacked):
            sd[f"bbox_head.{tower}.{i}.conv.weight"] = rnd(channels, channels, 3, 3, std=(2 / (9 * channels)) ** 0.5)
            sd[f"bbox_head.{tower}.{i}.gn.weight"] = 1 + rnd(channels, std=0.2)
            sd[f"bbox_head.{tower}.{i}.gn.bias"] = rnd(channels, std=0.1)
    sd["bbox_head.gfl_cls.weight"] = rnd(classes, channels, 3, 3, std=0.05)
    sd["bbox_head.gfl_cls.bias"] = torch.full((classes,), -4.59512) + rnd(classes, std=0.1)
    sd["bbox_head.gfl_reg.weight"] = rnd(4 * (reg_max + 1), channels, 3, 3, std=0.05)
    sd["bbox_head.gfl_reg.bias"] = rnd(4 * (reg_max + 1), std=0.1)
    for level in range(5):
        sd[f"bbox_head.scales.{level}.scale"] = torch.tensor(0.5 + 0.25 * level)

    x = torch.randn(1, 3, 97, 131, generator=g)
    with torch.no_grad():
        feats = backbone.features(x)
        # mmdet FPN.forward (start_level=1, add_extra_convs='on_output', relu_before_extra_convs=False)
        lat = [F.conv2d(f, sd[f"neck.lateral_convs.{i}.conv.weight"], sd[f"neck.lateral_convs.{i}.conv.bias"])
               for i, f in enumerate(feats)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:], mode="nearest")
        outs = [F.conv2d(lat[i], sd[f"neck.fpn_convs.{i}.conv.weight"], sd[f"neck.fpn_convs.{i}.conv.bias"], padding=1)
                for i in range(3)]
        for i in (3, 4):
            outs.append(F.conv2d(outs[-1], sd[f"neck.fpn_convs.{i}.conv.weight"], sd[f"neck.fpn_convs.{i}.conv.bias"],
                                 stride=2, padding=1))
        io = {"input": x}
        # mmdet GFLHead.forward_single, shared towers, per-level Scale on the raw reg logits.
        for level, feat in enumerate(outs):
            towers = {}
            for tower in ("cls_convs", "reg_convs"):
                y = feat
                for i in range(stacked):
                    y = F.conv2d(y, sd[f"bbox_head.{tower}.{i}.conv.weight"], None, padding=1)
                    y = F.relu(F.group_norm(y, groups, sd[f"bbox_head.{tower}.{i}.gn.weight"],
                                            sd[f"bbox_head.{tower}.{i}.gn.bias"], eps=1e-5))
                towers[tower] = y
            io[f"cls_score.{level}"] = F.conv2d(towers["cls_convs"], sd["bbox_head.gfl_cls.weight"],
                                                sd["bbox_head.gfl_cls.bias"], padding=1)
            io[f"bbox_pred.{level}"] = (F.conv2d(towers["reg_convs"], sd["bbox_head.gfl_reg.weight"],
                                                 sd["bbox_head.gfl_reg.bias"], padding=1)
                                        * sd[f"bbox_head.scales.{level}.scale"]).float()
    meta = {"channels": str(channels), "stacked_convs": str(stacked), "gn_groups": str(groups),
            "num_classes": str(classes), "reg_max": str(reg_max), "script": "scripts/make_model_fixtures.py"}
    safetensors_format.write(os.path.join(OUT, "gfl_tiny_neck_head.safetensors"), sd, meta)
    safetensors_format.write(os.path.join(OUT, "gfl_tiny_io.safetensors"), io, meta)
    print("gfl_tiny levels", [tuple(io[f"cls_score.{i}"].shape) for i in range(5)])


if __name__ == "__main__":
    main()
