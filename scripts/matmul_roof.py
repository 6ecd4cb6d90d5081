#!/usr/bin/env python3
"""Practical fp32 roof of this machine: GFLOP/s of a square torch.mm (2 n^3 FLOPs) and of a 3x3 256->256 conv on a
P3-sized map (1x256x100x168: 19.8 GFLOP, the GFL head's shape), median of --repeats.

torch.mm goes through the BLAS torch was built against (Debian's python3-torch: the system libblas, which can be
the unoptimised reference BLAS); conv2d goes through oneDNN where available. Both figures are printed."""
import argparse
import statistics
import time

import torch

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--n", type=int, default=1024)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeats", type=int, default=5)
args = ap.parse_args()
torch.set_num_threads(args.threads)
a, b = torch.randn(args.n, args.n), torch.randn(args.n, args.n)
torch.mm(a, b)
times = []
for _ in range(args.repeats):
    t = time.perf_counter()
    torch.mm(a, b)
    times.append(time.perf_counter() - t)
med = statistics.median(times)
print(f"torch {torch.__version__}, {args.threads} threads, {args.n}x{args.n} fp32 mm: median {med * 1000:.0f} ms = "
      f"{2 * args.n ** 3 / med / 1e9:.1f} GFLOP/s (runs: " + ", ".join(f"{2 * args.n ** 3 / t / 1e9:.1f}" for t in times) + ")")

x = torch.randn(1, 256, 100, 168)
conv = torch.nn.Conv2d(256, 256, 3, padding=1)
flops = 2 * 256 * 256 * 9 * 100 * 168
with torch.no_grad():
    conv(x)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        conv(x)
        times.append(time.perf_counter() - t)
med = statistics.median(times)
print(f"conv2d 3x3 256->256 on 1x256x100x168: median {med * 1000:.0f} ms = {flops / med / 1e9:.1f} GFLOP/s (runs: "
      + ", ".join(f"{flops / t / 1e9:.1f}" for t in times) + ")")
