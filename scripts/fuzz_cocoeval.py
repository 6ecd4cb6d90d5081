#!/usr/bin/env python3
"""Differential test of `gfl eval` against pycocotools on random small COCO cases.

Each case mixes what breaks naive re-implementations: annotation id 0 and duplicate ids, crowd boxes, zero-size
boxes, GT `area` at the 1024/9216 bounds or not equal to w*h, tied scores, detections on unknown categories,
images with more than 100 detections of a class. pycocotools (built as in scripts/bench_cocoeval.py) scores each
case, `gfl eval --out` scores it again, and the 12 stats must agree within 1e-9.

    /usr/bin/python3 scripts/fuzz_cocoeval.py --pycocotools /tmp/cocoapi/PythonAPI \
        --gfl "dotnet src/GflTrainer.Cli/bin/Debug/net10.0/linux-x64/gfl.dll" --cases 100
"""
import argparse
import contextlib
import io
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile


def make_case(seed):
    rnd = random.Random(seed)
    imgs = rnd.sample(range(0, 50), rnd.randint(1, 8))
    cats = rnd.sample(range(1, 20), rnd.randint(1, 4))
    anns, aid = [], rnd.choice([0, 1])
    for im in imgs:
        for _ in range(rnd.randint(0, 8)):
            x, y = rnd.choice([0, 10, 20.5]), rnd.choice([0, 5, 7.25])
            w, h = rnd.choice([0, 8, 16, 32, 40, 96, 100, 31.9]), rnd.choice([0, 8, 16, 32, 40, 96, 100, 32.1])
            anns.append({"id": aid if rnd.random() > 0.05 else max(aid - 1, 0), "image_id": im,
                         "category_id": rnd.choice(cats), "bbox": [x, y, w, h],
                         "area": rnd.choice([w * h, 1024, 9216, w * h * 0.8]),
                         "iscrowd": 1 if rnd.random() < 0.1 else 0})
            aid += 1
    dets = []
    for im in imgs:
        for _ in range(rnd.randint(0, 15 if rnd.random() < 0.9 else 130)):
            if anns and rnd.random() < 0.7:
                a = rnd.choice(anns)
                b, j = a["bbox"], rnd.choice([0, 0, 1, 2, 4])
                bb = [b[0] + rnd.uniform(-j, j), b[1] + rnd.uniform(-j, j), max(0, b[2] + rnd.uniform(-j, j)),
                      b[3] + rnd.uniform(-j, j)]
                img = a["image_id"] if rnd.random() < 0.9 else im
                cat = a["category_id"] if rnd.random() < 0.85 else rnd.choice(cats + [99])
            else:
                bb = [rnd.uniform(0, 80), rnd.uniform(0, 80), rnd.uniform(0, 100), rnd.uniform(0, 100)]
                img, cat = im, rnd.choice(cats)
            dets.append({"image_id": img, "category_id": cat, "bbox": bb,
                         "score": rnd.choice([0.5, 0.25, 0.75, round(rnd.random(), 2)])})
    gt = {"images": [{"id": i} for i in imgs], "categories": [{"id": c, "name": f"c{c}"} for c in cats],
          "annotations": anns}
    return gt, dets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pycocotools", required=True, help="folder holding the built pycocotools package")
    ap.add_argument("--gfl", required=True, help="command that runs gfl, e.g. 'dotnet .../gfl.dll'")
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sys.path.insert(0, args.pycocotools)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    failures = tried = 0
    with tempfile.TemporaryDirectory(prefix="gfl-cocoeval-fuzz-") as tmp:
        for seed in range(args.seed, args.seed + args.cases):
            gt, dets = make_case(seed)
            if not dets:
                continue  # pycocotools rejects an empty results list
            tried += 1
            gt_path, dt_path, out = (os.path.join(tmp, f) for f in ("gt.json", "dets.json", "metrics.json"))
            json.dump(gt, open(gt_path, "w"))
            json.dump(dets, open(dt_path, "w"))
            with contextlib.redirect_stdout(io.StringIO()):
                g = COCO(gt_path)
                e = COCOeval(g, g.loadRes(dt_path), "bbox")
                e.evaluate()
                e.accumulate()
                e.summarize()
            run = subprocess.run(shlex.split(args.gfl) + ["eval", "--annotations", gt_path, "--detections", dt_path,
                                                           "--out", out, "--log-level", "error"], capture_output=True, text=True)
            ours = json.load(open(out))["stats"] if run.returncode == 0 else None
            worst = max(abs(a - b) for a, b in zip(ours, e.stats)) if ours else float("inf")
            if worst > 1e-9:
                failures += 1
                print(f"seed {seed}: max abs diff {worst} (exit {run.returncode}) {run.stderr.strip()}")
    print(f"{failures} of {tried} cases differ from pycocotools")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
