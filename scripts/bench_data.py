#!/usr/bin/env python3
"""Reference throughput of mmdetection's train input pipeline, done with cv2 + numpy + torch.

Same steps as `gfl bench data` (src/GflTrainer/Data/DataBenchmark.cs): decode (cv2.imread, IMREAD_COLOR),
keep-ratio resize to (1333, 800) with cv2 INTER_LINEAR (mmcv imrescale rule), random horizontal flip,
normalise (BGR->RGB, ImageNet mean/std, float32), pad to a multiple of 32, collate batches of 2 into a
zero-padded (N, 3, H, W) float tensor. Workers go through torch.utils.data.DataLoader(num_workers=N).

usage: /usr/bin/python3 scripts/bench_data.py --ann ANN.json --images DIR [--workers 2] [--count 100]
needs: apt-get install python3-opencv python3-torch
"""
import argparse
import json
import os
import time

import cv2
import numpy as np
import torch

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def rescale_size(w, h, scale=(1333, 800)):
    f = min(max(scale) / max(w, h), min(scale) / min(w, h))
    return int(w * f + 0.5), int(h * f + 0.5)


class Pipeline(torch.utils.data.Dataset):
    def __init__(self, files, seed=0):
        self.files, self.seed = files, seed

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        img = cv2.imread(self.files[i], cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        nw, nh = rescale_size(w, h)
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        if np.random.default_rng(self.seed * 1_000_003 + i).random() < 0.5:
            img = cv2.flip(img, 1)
        img = (img[:, :, ::-1].astype(np.float32) - MEAN) / STD
        ph, pw = -(-nh // 32) * 32, -(-nw // 32) * 32
        out = np.zeros((ph, pw, 3), np.float32)
        out[:nh, :nw] = img
        return torch.from_numpy(out).permute(2, 0, 1)


def collate(items):
    h = max(t.shape[1] for t in items)
    w = max(t.shape[2] for t in items)
    batch = torch.zeros(len(items), 3, h, w)
    for i, t in enumerate(items):
        batch[i, :, : t.shape[1], : t.shape[2]] = t
    return batch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ann", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--count", type=int, default=100)
    a = ap.parse_args()
    with open(a.ann) as f:
        images = json.load(f)["images"]
    files = [os.path.join(a.images, im["file_name"]) for im in images][: a.count]

    cv2.imread(files[0])
    t = time.perf_counter()
    for p in files:
        cv2.imread(p, cv2.IMREAD_COLOR)
    decode = len(files) / (time.perf_counter() - t)

    loader = torch.utils.data.DataLoader(Pipeline(files), batch_size=2, num_workers=a.workers, collate_fn=collate)
    n = 0
    t = time.perf_counter()
    for batch in loader:
        n += batch.shape[0]
    pipeline = n / (time.perf_counter() - t)
    print(f"decode only (1 thread): {decode:.1f} images/s")
    print(f"full pipeline ({a.workers} workers, batch 2, {n} images): {pipeline:.1f} images/s")


if __name__ == "__main__":
    main()
