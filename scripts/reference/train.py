#!/usr/bin/env python3
"""Train the reference GFL detector from scratch on a COCO-format dataset, then write COCO-format detections for
the val split (and COCO metrics when pycocotools is importable).

    /usr/bin/python3 scripts/reference/train.py \
        --ann-train D/annotations/instances_train.json --img-train D/images \
        --ann-val D/annotations/instances_val.json --img-val D/images \
        --epochs 1 --batch 2 --lr 0.01 --img-scale 320 320 --depth 18 --out runs/ref
"""
import argparse
import json
import os
import random
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gflref.coco import CocoAnnotations  # noqa: E402
from gflref.detector import GflDetector, num_parameters  # noqa: E402
from gflref.engine import detect, lr_at, make_optimizer, train_step  # noqa: E402
from gflref.atss_loss import AtssLoss  # noqa: E402
from gflref.gfl_loss import GflLoss  # noqa: E402
from gflref.retina import RetinaLoss  # noqa: E402
from gflref.loader import make_loader  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ann-train", required=True)
    ap.add_argument("--img-train", required=True)
    ap.add_argument("--ann-val", required=True)
    ap.add_argument("--img-val", required=True)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.01, help="base lr (mmdet: 0.01 for batch 16)")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--warmup-iters", type=int, default=500)
    ap.add_argument("--warmup-ratio", type=float, default=0.001)
    ap.add_argument("--steps", type=int, nargs="*", default=[8, 11], help="epochs (0-based >=) where lr *= 0.1")
    ap.add_argument("--img-scale", type=int, nargs=2, default=[1333, 800], metavar=("W", "H"))
    ap.add_argument("--depth", type=int, default=50, choices=[18, 34, 50, 101])
    ap.add_argument("--head", default="gfl", choices=["gfl", "atss", "retinanet"],
                    help="gfl (QFL + DFL + GIoU), atss (Focal Loss + GIoU + centerness BCE, mmdetection's ATSSHead) or "
                         "retinanet (9 anchors, MaxIoU, Focal Loss + L1; FPN P6 on C5; test NMS 0.5)")
    ap.add_argument("--retina-box", default="l1", choices=["l1", "giou"],
                    help="retinanet box loss: l1 on deltas, or giou (weight 2) on decoded boxes as mmdetection's "
                         "retinanet giou config (gfl: model.head.loss.box)")
    ap.add_argument("--feat-channels", type=int, default=256, help="head tower channels")
    ap.add_argument("--fpn-channels", type=int, default=None, help="FPN output channels (default: --feat-channels)")
    ap.add_argument("--stacked-convs", type=int, default=4)
    ap.add_argument("--frozen-stages", type=int, default=1, help="-1 freezes nothing (from scratch)")
    ap.add_argument("--norm-eval", dest="norm_eval", action="store_true", default=True)
    ap.add_argument("--no-norm-eval", dest="norm_eval", action="store_false",
                    help="train backbone BatchNorm statistics (sensible from scratch)")
    ap.add_argument("--no-zero-init-residual", dest="zero_init_residual", action="store_false", default=True,
                    help="from scratch: do not start each block's last BN at 0 (mmdetection's default is to)")
    ap.add_argument("--step-iters", type=int, nargs="*", default=None,
                    help="iterations (0-based >=) where lr *= 0.1 instead of --steps epochs (mmdet by_epoch=False)")
    ap.add_argument("--backbone-weights", help="optional torchvision ResNet state dict (.pth)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true", help="torch.autocast (fp16 + GradScaler on CUDA, bf16 on CPU)")
    ap.add_argument("--log-interval", type=int, default=10)
    ap.add_argument("--max-iters", type=int, default=0, help="stop training after this many iterations (0: all)")
    ap.add_argument("--val-batch", type=int, default=1)
    return ap.parse_args(argv)


def coco_metrics(ann_file, det_file):
    """COCO bbox metrics via pycocotools if installed, else None."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return None
    gt = COCO(ann_file)
    with open(det_file) as f:
        if not json.load(f):
            return {"note": "no detections"}
    dt = gt.loadRes(det_file)
    ev = COCOeval(gt, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    return dict(zip(names, [float(x) for x in ev.stats]))


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    train_set = CocoAnnotations(args.ann_train, args.img_train, filter_empty=True)
    val_set = CocoAnnotations(args.ann_val, args.img_val, filter_empty=False)
    num_classes = len(train_set.cat_ids)
    img_scale = tuple(args.img_scale)
    train_loader = make_loader(train_set.records, args.batch, img_scale, train=True, workers=args.workers,
                               seed=args.seed, pin_memory=device.type == "cuda")
    val_loader = make_loader(val_set.records, args.val_batch, img_scale, train=False, workers=args.workers,
                             seed=args.seed, pin_memory=device.type == "cuda")

    model = GflDetector(num_classes, args.depth, args.fpn_channels or args.feat_channels, args.feat_channels,
                        args.stacked_convs, frozen_stages=args.frozen_stages, norm_eval=args.norm_eval,
                        zero_init_residual=args.zero_init_residual, head=args.head).to(device)
    if args.backbone_weights:
        print("backbone weights:", model.load_backbone(args.backbone_weights))
    loss_fn = (RetinaLoss(num_classes, giou=args.retina_box == "giou") if args.head == "retinanet"
               else {"atss": AtssLoss, "gfl": GflLoss}[args.head](num_classes))
    optimizer = make_optimizer(model, args.lr, args.momentum, args.weight_decay)
    scaler = torch.cuda.amp.GradScaler() if args.amp and device.type == "cuda" else None
    print(f"train images {len(train_set.records)}, val images {len(val_set.records)}, classes {num_classes}, "
          f"params {num_parameters(model)}, device {device}, threads {torch.get_num_threads()}", flush=True)

    log = {"args": vars(args), "iterations": []}
    t_start = time.time()
    iteration = 0
    iters_per_epoch = len(train_loader)
    window = []
    stop = False
    for epoch in range(args.epochs):
        model.train()
        train_loader.batch_sampler.set_epoch(epoch)
        for i, batch in enumerate(train_loader):
            if args.step_iters is None:
                lr = lr_at(args.lr, iteration, epoch, args.warmup_iters, args.warmup_ratio, args.steps)
            else:   # iteration-based steps: the same closed form with the iteration as the "epoch"
                lr = lr_at(args.lr, iteration, iteration, args.warmup_iters, args.warmup_ratio, args.step_iters)
            for group in optimizer.param_groups:
                group["lr"] = lr
            window.append(train_step(model, loss_fn, optimizer, batch, device, args.amp, scaler))
            iteration += 1
            if iteration % args.log_interval == 0 or i + 1 == iters_per_epoch:
                mean = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
                entry = dict(epoch=epoch + 1, iter=i + 1, global_iter=iteration, lr=lr,
                             elapsed_s=round(time.time() - t_start, 2), **{k: round(v, 5) for k, v in mean.items()})
                log["iterations"].append(entry)
                terms = " ".join(f"{k[5:]} {v:.4f}" for k, v in mean.items() if k != "loss")
                print(f"epoch {epoch + 1} [{i + 1}/{iters_per_epoch}] lr {lr:.6f} loss {mean['loss']:.4f} "
                      f"({terms}) {entry['elapsed_s']:.1f}s", flush=True)
                window = []
            if args.max_iters and iteration >= args.max_iters:
                stop = True
                break
        if stop:
            break
    train_s = time.time() - t_start
    torch.save(model.state_dict(), os.path.join(args.out, "model_final.pth"))

    t_eval = time.time()
    model.eval()
    results = []
    for batch in val_loader:
        for meta, det in zip(batch.metas, detect(model, batch, device, amp=args.amp)):
            results.extend(val_set.to_coco_results(meta.image_id, det))
    eval_s = time.time() - t_eval
    det_file = os.path.join(args.out, "detections_val.json")
    with open(det_file, "w") as f:
        json.dump(results, f)
    metrics = coco_metrics(args.ann_val, det_file)
    log.update(train_wall_s=round(train_s, 2), eval_wall_s=round(eval_s, 2), iterations_run=iteration,
               num_detections=len(results), metrics=metrics,
               peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
    print(f"trained {iteration} iterations in {train_s:.1f}s; evaluated {len(val_set.records)} images in "
          f"{eval_s:.1f}s; {len(results)} detections -> {det_file}")
    if metrics is None:
        print("pycocotools not importable: evaluate with  gfl eval --annotations "
              f"{args.ann_val} --detections {det_file}")
    else:
        print("metrics:", json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
