#!/usr/bin/env python3
"""Time pycocotools' COCOeval (bbox) on a ground-truth / detections pair, the way `gfl bench eval` times ours.

pycocotools is not packaged by Debian; build the maintained fork (ppwwyyxx/cocoapi, the source of the pip
package) in place and point --pycocotools at its PythonAPI folder:

    apt-get install -y cython3 python3-numpy
    git clone https://github.com/ppwwyyxx/cocoapi && cd cocoapi/PythonAPI && python3 setup.py build_ext --inplace
    /usr/bin/python3 scripts/bench_cocoeval.py --pycocotools cocoapi/PythonAPI \
        tests/GflTrainer.Tests/Fixtures/cocoeval/large_timing/{gt,dets}.json --repeats 3

Each repeat loads both files (COCO + loadRes), then times evaluate() and accumulate(); summarize() output is
silenced. Medians are printed, with CPU time (time.process_time) next to wall time because a shared machine
inflates wall time. --expected checks the 12 stats against an expected.json.
"""
import argparse
import contextlib
import io
import json
import statistics
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gt")
    ap.add_argument("dets")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pycocotools", help="folder holding the built pycocotools package (cocoapi/PythonAPI)")
    ap.add_argument("--expected", help="expected.json whose 'stats' the run must reproduce within 1e-6")
    ap.add_argument("--json-out", help="also write the medians (seconds) here, for scripts/bench_compare.sh")
    args = ap.parse_args()
    if args.pycocotools:
        sys.path.insert(0, args.pycocotools)
    import numpy as np
    import pycocotools
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    runs = {"load": [], "evaluate": [], "accumulate": [], "evaluate+accumulate": [], "evaluate+accumulate cpu": []}
    stats = None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(args.gt)
            dt = gt.loadRes(args.dets)
        t1 = time.perf_counter()
        ev = COCOeval(gt, dt, "bbox")
        c0 = time.process_time()
        t2 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            t3 = time.perf_counter()
            ev.accumulate()
            t4 = time.perf_counter()
            c1 = time.process_time()
            ev.summarize()
        stats = ev.stats
        runs["load"].append(t1 - t0)
        runs["evaluate"].append(t3 - t2)
        runs["accumulate"].append(t4 - t3)
        runs["evaluate+accumulate"].append(t4 - t2)
        runs["evaluate+accumulate cpu"].append(c1 - c0)

    print(f"pycocotools {getattr(pycocotools, '__version__', '?')} ({pycocotools.__file__}), numpy {np.__version__}, "
          f"Python {sys.version.split()[0]}, {args.repeats} repeats")
    for name, values in runs.items():
        print(f"{name:<24} median {statistics.median(values):.3f} s   runs " + ", ".join(f"{v:.3f}" for v in values))
    if args.json_out:
        import resource
        with open(args.json_out, "w") as f:
            json.dump(dict(impl="pycocotools", bench="eval", repeats=args.repeats,
                           **{k.replace("+", "_plus_").replace(" ", "_") + "_seconds": statistics.median(v)
                              for k, v in runs.items()},
                           runs={k: v for k, v in runs.items()},
                           peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)), f, indent=1)
    if args.expected:
        want = json.load(open(args.expected))["stats"]
        worst = max(abs(a - b) for a, b in zip(stats, want))
        print(f"stats vs {args.expected}: max abs diff {worst:.2e}")
        if worst > 1e-6:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
