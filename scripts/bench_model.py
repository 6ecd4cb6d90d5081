#!/usr/bin/env python3
"""PyTorch counterpart of GflTrainer.Model.ModelBenchmark: forward and forward+backward ms/image of
ResNet-depth + FPN + GFL head (80 classes, reg_max 16) on random input, same protocol (2 warm-up iterations,
eval-mode no_grad forward; train-mode forward + backward of the sum of output means, no optimizer step).
mmdetection's frozen stem/layer1 and eval-mode BatchNorm are reproduced, so backward does the same work.

  python3 scripts/bench_model.py --device cpu --depth 50 --height 800 --width 1344 --batch 2 --iterations 10
"""
import argparse
import time

import torch
import torchvision
from torch import nn
from torch.nn import functional as F


class Fpn(nn.Module):
    def __init__(self, in_channels, out=256):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, out, 1) for c in in_channels)
        self.output = nn.ModuleList(nn.Conv2d(out, out, 3, padding=1) for _ in in_channels)
        self.extra = nn.ModuleList(nn.Conv2d(out, out, 3, stride=2, padding=1) for _ in range(2))

    def forward(self, feats):
        lat = [conv(f) for conv, f in zip(self.lateral, feats)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:], mode="nearest")
        outs = [conv(x) for conv, x in zip(self.output, lat)]
        for conv in self.extra:
            outs.append(conv(outs[-1]))
        return outs


class GflHead(nn.Module):
    def __init__(self, classes=80, reg_max=16, ch=256, stacked=4):
        super().__init__()

        def tower():
            layers = []
            for _ in range(stacked):
                layers += [nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.GroupNorm(32, ch), nn.ReLU(inplace=True)]
            return nn.Sequential(*layers)

        self.cls_convs, self.reg_convs = tower(), tower()
        self.gfl_cls = nn.Conv2d(ch, classes, 3, padding=1)
        self.gfl_reg = nn.Conv2d(ch, 4 * (reg_max + 1), 3, padding=1)
        self.scales = nn.ParameterList(nn.Parameter(torch.tensor(1.0)) for _ in range(5))

    def forward(self, feats):
        return ([self.gfl_cls(self.cls_convs(x)) for x in feats],
                [(self.gfl_reg(self.reg_convs(x)) * s).float() for x, s in zip(feats, self.scales)])


class Detector(nn.Module):
    def __init__(self, depth):
        super().__init__()
        self.backbone = getattr(torchvision.models, f"resnet{depth}")(weights=None)
        del self.backbone.fc
        c = 512 if depth < 50 else 2048
        self.neck = Fpn([c // 4, c // 2, c])
        self.head = GflHead()
        for m in (self.backbone.conv1, self.backbone.bn1, self.backbone.layer1):
            for p in m.parameters():
                p.requires_grad_(False)

    def train(self, mode=True):
        super().train(mode)
        for m in self.backbone.modules():  # norm_eval
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x):
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        c3 = b.layer2(b.layer1(x))
        c4 = b.layer3(c3)
        return self.head(self.neck([c3, c4, b.layer4(c4)]))


def timed(device, iterations, step):
    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1000 / iterations


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--height", type=int, default=800)
    p.add_argument("--width", type=int, default=1344)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--iterations", type=int, default=10)
    a = p.parse_args()
    device = torch.device(a.device)
    torch.manual_seed(0)
    model = Detector(a.depth).to(device)
    images = torch.randn(a.batch, 3, a.height, a.width, device=device)

    model.eval()

    def forward():
        with torch.no_grad():
            model(images)

    fwd = timed(device, a.iterations, forward)
    model.train()

    def forward_backward():
        cls, reg = model(images)
        sum(t.mean() for t in cls + reg).backward()
        model.zero_grad(set_to_none=True)

    fb = timed(device, a.iterations, forward_backward)
    print(f"torch {torch.__version__} {device} resnet{a.depth} {a.height}x{a.width} batch {a.batch} "
          f"x{a.iterations}: forward {fwd / a.batch:.2f} ms/image, forward+backward {fb / a.batch:.2f} ms/image "
          f"(threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
