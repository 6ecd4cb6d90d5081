"""COCO instances JSON -> per-image records, with mmdetection 3.x CocoDataset's filtering (gfl_spec 6.2):
annotations with no intersection with the image, area <= 0, w < 1 or h < 1, or an unknown category are
skipped; iscrowd boxes are set aside (never used by GFL); training drops images without boxes and images
with min(w, h) < 32. Labels are contiguous 0..C-1 in ascending category-id order."""
import json
import os
from dataclasses import dataclass

import numpy as np


@dataclass
class ImageRecord:
    image_id: int
    path: str
    width: int
    height: int
    bboxes: np.ndarray   # (k, 4) float32 xyxy pixels (no +1)
    labels: np.ndarray   # (k,) int64


class CocoAnnotations:
    def __init__(self, ann_file, img_dir, filter_empty=False, min_size=32):
        with open(ann_file) as f:
            coco = json.load(f)
        self.cat_ids = sorted(c["id"] for c in coco["categories"])
        self.class_names = [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
        cat2label = {cid: i for i, cid in enumerate(self.cat_ids)}
        anns_by_image = {}
        for ann in coco.get("annotations", []):
            anns_by_image.setdefault(ann["image_id"], []).append(ann)
        self.records = []
        for img in coco["images"]:
            boxes, labels = [], []
            for ann in anns_by_image.get(img["id"], []):
                x, y, w, h = ann["bbox"]
                inter_w = max(0, min(x + w, img["width"]) - max(x, 0))
                inter_h = max(0, min(y + h, img["height"]) - max(y, 0))
                if inter_w * inter_h == 0 or ann.get("area", w * h) <= 0 or w < 1 or h < 1:
                    continue
                if ann["category_id"] not in cat2label or ann.get("iscrowd", 0):
                    continue
                boxes.append([x, y, x + w, y + h])
                labels.append(cat2label[ann["category_id"]])
            if filter_empty and (not boxes or min(img["width"], img["height"]) < min_size):
                continue
            self.records.append(ImageRecord(
                img["id"], os.path.join(img_dir, img["file_name"]), img["width"], img["height"],
                np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(labels, dtype=np.int64)))

    def to_coco_results(self, image_id, detections):
        """Detections (xyxy original pixels) -> COCO result dicts with the original category ids."""
        boxes = detections.bboxes.detach().cpu().tolist()
        scores = detections.scores.detach().cpu().tolist()
        labels = detections.labels.detach().cpu().tolist()
        return [{"image_id": image_id, "category_id": self.cat_ids[l],
                 "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": s}
                for b, s, l in zip(boxes, scores, labels)]
