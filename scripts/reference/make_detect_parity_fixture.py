#!/usr/bin/env python3
"""Detections of the plain-PyTorch reference with weights trained by gfl, for the detection parity test
(issue 22, tests/.../Inference/DetectionParityTests.cs): same weights, same images, same test pipeline
(keep-ratio resize with cv2, normalise, pad 32; score 0.05, nms_pre 1000, class-wise NMS 0.6, top 100).

    /usr/bin/python3 scripts/reference/make_detect_parity_fixture.py [FIXTURE_DIR]

FIXTURE_DIR (default tests/GflTrainer.Tests/Fixtures/parity/bccd_detect) holds model.safetensors (gfl's checkpoint
weights, mmdetection names), instances.json, images/; writes reference_detections.json (COCO results, full
precision). The model is gflref.GflDetector with a narrow torchvision ResNet-18 (width 16), FPN and head 32 channels,
2 stacked convs, 3 classes, as in the fixture's config.yaml.
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import safetensors_format  # noqa: E402
from gflref.coco import CocoAnnotations  # noqa: E402
from gflref.engine import detect  # noqa: E402
from gflref.loader import make_loader  # noqa: E402
from make_step_parity_fixture import narrow_gfl_detector  # noqa: E402

DEFAULT = os.path.join(HERE, "..", "..", "tests", "GflTrainer.Tests", "Fixtures", "parity", "bccd_detect")


def main():
    fixture = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    torch.set_num_threads(1)
    det = narrow_gfl_detector(16)
    weights, _ = safetensors_format.read(os.path.join(fixture, "model.safetensors"))
    missing, unexpected = det.load_state_dict(weights, strict=False)
    assert missing == ["bbox_head.integral.project"] and not unexpected, (missing, unexpected)
    det.eval()

    coco = CocoAnnotations(os.path.join(fixture, "instances.json"), os.path.join(fixture, "images"), filter_empty=False)
    loader = make_loader(coco.records, 2, (100000, 320), train=False, workers=0)
    results = []
    with torch.no_grad():
        for batch in loader:
            for meta, d in zip(batch.metas, detect(det, batch, torch.device("cpu"))):
                results.extend(coco.to_coco_results(meta.image_id, d))
    path = os.path.join(fixture, "reference_detections.json")
    with open(path, "w") as f:
        json.dump(results, f)
    per_cat = {}
    for r in results:
        per_cat[r["category_id"]] = per_cat.get(r["category_id"], 0) + 1
    print(f"{path}: {len(results)} detections, per category {per_cat}, "
          f"top scores {sorted((round(r['score'], 3) for r in results), reverse=True)[:5]}")


if __name__ == "__main__":
    main()
