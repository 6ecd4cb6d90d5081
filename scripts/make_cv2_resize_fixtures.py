#!/usr/bin/env python3
"""Writes tests/GflTrainer.Tests/Fixtures/data/cv2_resize/cases.json: what OpenCV's cv2.resize(INTER_LINEAR) (and
cv2.flip(img, 1) after it) returns for small seeded images and for the BCCD fixture JPEGs, the reference that
src/GflTrainer/Data/Transforms/Resize.cs must reproduce bit for bit (mmdetection resizes with cv2).

usage: /usr/bin/python3 scripts/make_cv2_resize_fixtures.py      (needs apt-get install python3-opencv)
Pixels are RGB HWC uint8, base64; large outputs are given as SHA-256 of the same bytes.
"""
import base64
import hashlib
import json
import os

import cv2
import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "GflTrainer.Tests", "Fixtures", "data")
OUT = os.path.join(ROOT, "cv2_resize", "cases.json")


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def image(kind, w, h, rng):
    if kind == "noise":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    # smooth ramps with a little noise: rounding cases that are not all saturated
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255.0 / max(w - 1, 1), y * 255.0 / max(h - 1, 1), (x + y) * 127.0 / max(w + h - 2, 1)], -1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def main():
    rng = np.random.default_rng(20261127)
    cases = []
    # (w, h) -> list of (new_w, new_h): up, down, mixed, exact 2x down (INTER_AREA), identity, 1-pixel, 3x up
    plans = {
        (23, 17): [(38, 28), (11, 8), (40, 9), (23, 17), (1, 1), (69, 51), (17, 23)],
        (40, 30): [(20, 15), (67, 50), (13, 10), (39, 31), (80, 60)],
        (7, 5): [(12, 8), (3, 2), (2, 2)],
        (64, 48): [(107, 80), (33, 25), (21, 16)],
    }
    for (w, h), targets in plans.items():
        for kind in ("noise", "ramp"):
            img = image(kind, w, h, rng)
            for nw, nh in targets:
                out = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
                cases.append({"name": f"{kind}_{w}x{h}_to_{nw}x{nh}", "width": w, "height": h, "pixels": b64(img),
                              "out_width": nw, "out_height": nh, "expected": b64(out),
                              "expected_flipped": b64(cv2.flip(out, 1))})
    files = []
    img_dir = os.path.join(ROOT, "bccd_mini", "images")
    for name in sorted(os.listdir(img_dir)):
        rgb = cv2.imread(os.path.join(img_dir, name), cv2.IMREAD_COLOR)[:, :, ::-1]
        h, w = rgb.shape[:2]
        resizes = []
        for nw, nh in [(1067, 800), (1333, 1000), (333, 250), (w // 2, h // 2)]:
            out = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
            resizes.append({"out_width": nw, "out_height": nh, "sha256": sha(out), "flipped_sha256": sha(cv2.flip(out, 1))})
        files.append({"file": name, "width": w, "height": h, "decoded_sha256": sha(rgb), "resizes": resizes})
    doc = {"generator": "scripts/make_cv2_resize_fixtures.py", "opencv": cv2.__version__, "cases": cases, "files": files}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"{OUT}: {len(cases)} cases, {len(files)} files")


if __name__ == "__main__":
    main()
