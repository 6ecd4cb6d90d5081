#!/usr/bin/env python3
"""Export a torchvision ResNet state dict to safetensors for `WeightLoader.LoadTorchvisionBackbone`.

The reference config initialises the backbone from torchvision's ImageNet weights (IMAGENET1K_V1, e.g.
resnet50-0676ba61.pth; *not* V2). TorchSharp cannot read PyTorch's pickled .pth files, so this script converts them.
The safetensors file is written by hand (scripts/safetensors_format.py), no `safetensors` package needed.

Names are torchvision's (conv1.weight, layer1.0.bn1.running_mean, layer1.0.downsample.0.weight, fc.weight, ...);
the C# loader maps them to backbone.* and ignores fc.*. The state dict is taken from an instantiated model, so
BatchNorm num_batches_tracked is always present even when an old .pth lacks it.

Examples:
  python3 scripts/export_torchvision_resnet.py --depth 50 --pth ~/.cache/torch/hub/checkpoints/resnet50-0676ba61.pth out.safetensors
  python3 scripts/export_torchvision_resnet.py --depth 50 --imagenet out.safetensors   # downloads (needs network)
  python3 scripts/export_torchvision_resnet.py --depth 18 --seed 0 out.safetensors     # random init (tests)
"""
import argparse
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_format  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output")
    p.add_argument("--depth", type=int, default=50, choices=[18, 34, 50, 101])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--pth", help="a torchvision .pth state dict file")
    src.add_argument("--imagenet", action="store_true", help="torchvision IMAGENET1K_V1 weights (download)")
    p.add_argument("--seed", type=int, default=0, help="seed for random init (when neither --pth nor --imagenet)")
    a = p.parse_args()

    ctor = getattr(torchvision.models, f"resnet{a.depth}")
    if a.imagenet:
        model = ctor(weights="IMAGENET1K_V1")
        source = f"torchvision resnet{a.depth} IMAGENET1K_V1"
    else:
        torch.manual_seed(a.seed)
        model = ctor(weights=None)
        source = f"torchvision resnet{a.depth} random init seed {a.seed}"
        if a.pth:
            state = torch.load(a.pth, map_location="cpu")
            state = state.get("state_dict", state)
            missing, unexpected = model.load_state_dict(state, strict=False)
            # Old files predate num_batches_tracked; anything else missing means a wrong file.
            missing = [k for k in missing if not k.endswith("num_batches_tracked")]
            if missing or unexpected:
                sys.exit(f"{a.pth}: not a torchvision resnet{a.depth} (missing {missing[:5]}, unexpected {unexpected[:5]})")
            source = f"torchvision resnet{a.depth} from {os.path.basename(a.pth)}"
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    safetensors_format.write(a.output, tensors, {"source": source, "format": "torchvision-resnet"})
    print(f"wrote {len(tensors)} tensors ({sum(t.numel() for t in tensors.values()):,} values) to {a.output}")


if __name__ == "__main__":
    main()
