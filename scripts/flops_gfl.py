#!/usr/bin/env python3
"""FLOPs of one GFL forward (ResNet + FPN + GFL head, scripts/reference/gflref) at a given padded input size.

Counts convolutions and linear layers only (the matmul-shaped work that dominates; BN/GN/ReLU/interpolate/add are
elementwise and < 1 % of it), as 2 x multiply-accumulates: MACs = output elements x (in_channels / groups) x kh x kw.
Shapes come from forward hooks on a "meta" device run, so nothing is computed and it takes a second.

    /usr/bin/python3 scripts/flops_gfl.py --depth 50 --batch 2 --height 800 --width 1344

A training step is taken as ~3x the forward (forward + grad w.r.t. activations + grad w.r.t. weights, each about
one forward's FLOPs); the frozen stem and stage 1 (frozen_stages=1) need neither: nothing before them requires a
gradient, so the script also reports 3 x forward minus 2 x their forward FLOPs.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
from gflref.detector import GflDetector  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1344)
    ap.add_argument("--num-classes", type=int, default=80)
    args = ap.parse_args()

    model = GflDetector(args.num_classes, args.depth)
    model.eval()
    parts = {}
    frozen = [0]   # MACs of layers whose weights get no gradient (requires_grad False)

    def hook(module, inputs, output, name):
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        else:
            k = module.in_features
        macs = output.numel() * k
        part = name.split(".")[0]
        parts[part] = parts.get(part, 0) + macs
        if not module.weight.requires_grad:
            frozen[0] += macs

    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(lambda mod, i, o, name=name: hook(mod, i, o, name))
    device = torch.device("meta")
    model.to(device)
    with torch.no_grad():
        model(torch.empty(args.batch, 3, args.height, args.width, device=device))

    total = sum(parts.values())
    print(f"R{args.depth}-GFL forward, batch {args.batch}, input {args.height}x{args.width}, {args.num_classes} classes")
    for part, macs in parts.items():
        print(f"  {part:<10} {2 * macs / 1e9:9.1f} GFLOP ({100 * macs / total:.1f} %)")
    fwd = 2 * total
    print(f"  forward    {fwd / 1e9:9.1f} GFLOP  ({fwd / args.batch / 1e9:.1f} per image)")
    train = 3 * fwd - 2 * (2 * frozen[0])
    print(f"  frozen     {2 * frozen[0] / 1e9:9.1f} GFLOP (stem + stage 1: forward only)")
    print(f"  train step ~{3 * fwd / 1e9:.0f} GFLOP (3 x forward); without gradients of the frozen layers "
          f"{train / 1e9:.0f} GFLOP")


if __name__ == "__main__":
    main()
