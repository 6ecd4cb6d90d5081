#!/usr/bin/env python3
"""Convert an mmdetection GFL checkpoint (e.g. gfl_r50_fpn_1x_coco_20200629_121244-25944287.pth) to safetensors
with GflTrainer's state-dict names, for `WeightLoader.Load(detector, path)` (identity mapping, strict). The ATSS and
RetinaNet baselines (atss_r50_fpn_1x_coco, retinanet_r50_fpn_1x_coco) convert the same way: their heads use
mmdetection's names too (bbox_head.atss_cls/atss_reg/atss_centerness, bbox_head.retina_cls/retina_reg); train or
evaluate them with model.head.type atss / retinanet (configs/atss_r50_1x.yaml, configs/retinanet_r50_1x.yaml).

GflDetector mirrors mmdetection's module tree, so the names are already equal:
  backbone.conv1.weight, backbone.layer1.0.bn1.running_mean, ..., neck.lateral_convs.0.conv.weight,
  neck.fpn_convs.4.conv.bias, bbox_head.cls_convs.0.conv.weight, bbox_head.cls_convs.0.gn.weight,
  bbox_head.gfl_cls.weight, bbox_head.gfl_reg.bias, bbox_head.scales.0.scale (0-dim).
What the conversion still does:
  * takes checkpoint["state_dict"] (mmcv/mmengine layout) and drops a DataParallel "module." prefix if present;
  * BatchNorm num_batches_tracked: kept when present; added as int64 0 when a checkpoint lacks it (older PyTorch),
    so the strict C# load sees every buffer; the value is unused with norm_eval (BN never updates);
  * drops the optimizer/meta and any non-tensor entries; keeps dtypes as stored (F32);
  * stores the checkpoint's meta (mmdet version, CLASSES) as safetensors __metadata__ strings.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_format  # noqa: E402


def convert(state):
    out = {}
    for name, value in state.items():
        if not torch.is_tensor(value):
            continue
        if name.startswith("module."):
            name = name[len("module."):]
        out[name] = value.detach().cpu().clone()
    for name in list(out):
        if name.endswith(".running_mean"):
            tracked = name[: -len("running_mean")] + "num_batches_tracked"
            out.setdefault(tracked, torch.tensor(0, dtype=torch.int64))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="mmdetection .pth checkpoint")
    p.add_argument("output", help="output .safetensors")
    a = p.parse_args()
    ckpt = torch.load(a.checkpoint, map_location="cpu")
    state = ckpt.get("state_dict", ckpt)
    tensors = convert(state)
    meta = {"source": os.path.basename(a.checkpoint), "format": "mmdet-gfl"}
    for key, value in (ckpt.get("meta") or {}).items():
        if isinstance(value, (str, int, float)) or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
            meta[f"mmdet.{key}"] = value if isinstance(value, str) else (",".join(value) if isinstance(value, (list, tuple)) else str(value))
    prefixes = sorted({k.split(".")[0] for k in tensors})
    if prefixes != ["backbone", "bbox_head", "neck"]:
        print(f"warning: unexpected top-level names {prefixes}", file=sys.stderr)
    safetensors_format.write(a.output, tensors, meta)
    print(f"wrote {len(tensors)} tensors ({sum(t.numel() for t in tensors.values() if t.is_floating_point()):,} "
          f"float values) to {a.output}")


if __name__ == "__main__":
    main()
