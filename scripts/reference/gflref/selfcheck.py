"""Runs every case in the GFL fixture set (anchors, overlaps, qfl, dfl, giou_loss, atss, head_loss, postprocess)
through this package and checks the tolerances of shared/fixtures/gfl/README.md. One line per case; exit 1 on
any failure.

    python3 -m gflref.selfcheck [--fixtures DIR]
"""
import argparse
import glob
import json
import os
import sys

import torch

from .anchors import grid_anchors, valid_flags
from .atss_assigner import INF, atss_assign
from .box_ops import bbox_overlaps
from .gfl_loss import GflLoss, total_loss
from .losses import (distribution_focal_loss, distribution_focal_loss_elementwise, giou_loss,
                     giou_loss_elementwise, quality_focal_loss, quality_focal_loss_elementwise)
from .postprocess import TestConfig, predict_single

KINDS = ("anchors", "overlaps", "qfl", "dfl", "giou_loss", "atss", "head_loss", "postprocess")
DTYPES = {"float32": torch.float32, "int64": torch.long, "bool": torch.bool}


def default_fixtures_dir():
    """Repo copy tests/GflTrainer.Tests/Fixtures/gfl if present, else ../shared/fixtures/gfl from the repo root
    (then any shared/fixtures/gfl further up)."""
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    candidates = [os.path.join(repo, "tests", "GflTrainer.Tests", "Fixtures", "gfl"),
                  os.path.join(repo, "..", "shared", "fixtures", "gfl")]
    up = repo
    while os.path.dirname(up) != up:
        up = os.path.dirname(up)
        candidates.append(os.path.join(up, "shared", "fixtures", "gfl"))
    for c in candidates:
        if os.path.isdir(os.path.join(c, "head_loss")):
            return os.path.normpath(c)
    return os.path.normpath(candidates[1])


def tensor(obj):
    """Fixture tensor {shape, dtype, data} -> torch tensor (float32 values read as double then cast: exact)."""
    return torch.tensor(obj["data"], dtype=torch.float64 if obj["dtype"] == "float32" else torch.long) \
        .to(DTYPES[obj["dtype"]]).reshape(obj["shape"])


class Case:
    """Collects comparisons for one fixture file."""

    def __init__(self):
        self.failures = []
        self.worst = 0.0   # largest error / allowed

    def close(self, what, actual, expected, atol=0.0, rtol=0.0):
        a = torch.as_tensor(actual).detach().double().cpu()
        e = torch.as_tensor(expected).detach().double().cpu()
        if a.shape != e.shape:
            self.failures.append(f"{what}: shape {tuple(a.shape)} != {tuple(e.shape)}")
            return
        if a.numel() == 0:
            return
        err = (a - e).abs()
        allowed = atol + rtol * e.abs()
        bad = err > allowed
        ratio = torch.where(allowed > 0, err / allowed.clamp(min=1e-300), (err > 0).double() * float("inf"))
        self.worst = max(self.worst, float(ratio.max()))
        if bool(bad.any()):
            i = int(bad.reshape(-1).nonzero()[0])
            self.failures.append(f"{what}: {int(bad.sum())} of {e.numel()} off, first at {i}: "
                                 f"{a.reshape(-1)[i].item():.9g} vs {e.reshape(-1)[i].item():.9g}")

    def exact(self, what, actual, expected):
        a = torch.as_tensor(actual).detach().cpu()
        e = torch.as_tensor(expected).detach().cpu()
        if a.shape != e.shape:
            self.failures.append(f"{what}: shape {tuple(a.shape)} != {tuple(e.shape)}")
        elif not torch.equal(a.to(e.dtype), e):
            diff = (a.to(e.dtype) != e).reshape(-1).nonzero()
            i = int(diff[0])
            self.failures.append(f"{what}: {diff.numel()} of {e.numel()} differ, first at {i}: "
                                 f"{a.reshape(-1)[i].item()} vs {e.reshape(-1)[i].item()}")


def check_anchors(c, p, inp, exp):
    sizes = [tuple(s) for s in inp["featmap_sizes"]]
    anchors = grid_anchors(sizes, p["strides"])
    for l, a in enumerate(anchors):
        c.exact(f"anchors[{l}]", a, tensor(exp["anchors"][l]))
        c.exact(f"base_anchors[{l}]", a[:1], tensor(exp["base_anchors"][l]))
    c.exact("anchors_concat", torch.cat(anchors), tensor(exp["anchors_concat"]))
    c.exact("num_anchors_per_level", torch.tensor([a.size(0) for a in anchors]),
            torch.tensor(exp["num_anchors_per_level"]))
    for case in exp["valid_flag_cases"]:
        flags = valid_flags(sizes, p["strides"], case["pad_shape"])
        for l, f in enumerate(flags):
            c.exact(f"valid{case['pad_shape']}[{l}]", f, tensor(case["valid_flags"][l]))
        c.exact(f"num_valid{case['pad_shape']}", torch.tensor([int(f.sum()) for f in flags]),
                torch.tensor(case["num_valid_per_level"]))


def check_overlaps(c, p, inp, exp):
    b1, b2 = tensor(inp["boxes1"]), tensor(inp["boxes2"])
    eps = p["eps"]
    if "iou_aligned" in exp:     # inverted_formula_only
        c.close("iou_aligned", bbox_overlaps(b1, b2, "iou", True, eps), tensor(exp["iou_aligned"]), atol=1e-6)
        c.close("giou_aligned", bbox_overlaps(b1, b2, "giou", True, eps), tensor(exp["giou_aligned"]), atol=1e-6)
        return
    aligned = "grad_iou_sum_wrt_boxes1" in exp
    for mode in ("iou", "iof", "giou"):
        c.close(mode, bbox_overlaps(b1, b2, mode, aligned, eps), tensor(exp[mode]), atol=1e-6)
    if aligned:
        for mode in ("iou", "giou"):
            x = b1.clone().requires_grad_(True)
            bbox_overlaps(x, b2, mode, True, eps).sum().backward()
            c.close(f"grad_{mode}", x.grad, tensor(exp[f"grad_{mode}_sum_wrt_boxes1"]), atol=1e-6, rtol=1e-4)


def check_qfl(c, p, inp, exp):
    logits, labels, quality, weight = (tensor(inp[k]) for k in ("logits", "labels", "quality", "weight"))
    x = logits.clone().requires_grad_(True)
    elem = quality_focal_loss_elementwise(x, labels, quality, p["beta"])
    c.close("loss_elementwise", elem, tensor(exp["loss_elementwise"]), atol=1e-6, rtol=1e-5)
    c.close("loss_per_sample", elem.sum(1), tensor(exp["loss_per_sample"]), atol=1e-6, rtol=1e-5)
    elem.sum().backward()
    c.close("grad_sum_elementwise", x.grad, tensor(exp["grad_sum_elementwise_wrt_logits"]), atol=1e-7, rtol=1e-4)
    x = logits.clone().requires_grad_(True)
    loss = quality_focal_loss(x, labels, quality, weight, p["avg_factor"], p["beta"], p["loss_weight"])
    c.close("loss_reduced", loss, torch.tensor(exp["loss_reduced"]), atol=1e-6, rtol=1e-5)
    loss.backward()
    c.close("grad_reduced", x.grad, tensor(exp["grad_reduced_wrt_logits"]), atol=1e-7, rtol=1e-4)


def check_dfl(c, p, inp, exp):
    logits, target, weight = (tensor(inp[k]) for k in ("logits", "target", "weight"))
    x = logits.clone().requires_grad_(True)
    per = distribution_focal_loss_elementwise(x, target)
    c.close("loss_per_sample", per, tensor(exp["loss_per_sample"]), atol=1e-6, rtol=1e-5)
    per.sum().backward()
    c.close("grad_sum", x.grad, tensor(exp["grad_sum_wrt_logits"]), atol=1e-7, rtol=1e-4)
    x = logits.clone().requires_grad_(True)
    loss = distribution_focal_loss(x, target, weight, p["avg_factor"], p["loss_weight"])
    c.close("loss_reduced", loss, torch.tensor(exp["loss_reduced"]), atol=1e-6, rtol=1e-5)
    loss.backward()
    c.close("grad_reduced", x.grad, tensor(exp["grad_reduced_wrt_logits"]), atol=1e-7, rtol=1e-4)


def check_giou_loss(c, p, inp, exp):
    pred, target, weight = (tensor(inp[k]) for k in ("pred", "target", "weight"))
    c.close("loss_per_pair", giou_loss_elementwise(pred, target, p["eps"]), tensor(exp["loss_per_pair"]),
            atol=1e-6, rtol=1e-5)
    x = pred.clone().requires_grad_(True)
    loss = giou_loss(x, target, weight, p["avg_factor"], p["eps"], p["loss_weight"])
    c.close("loss", loss, torch.tensor(exp["loss"]), atol=1e-6, rtol=1e-5)
    loss.backward()
    grad = x.grad if x.grad is not None else torch.zeros_like(x)
    c.close("grad_wrt_pred", grad, tensor(exp["grad_wrt_pred"]), atol=1e-7, rtol=1e-4)


def check_atss(c, p, inp, exp):
    anchors, gtb, gtl = tensor(inp["anchors"]), tensor(inp["gt_bboxes"]), tensor(inp["gt_labels"])
    result = atss_assign(anchors, inp["num_level_anchors"], gtb, gtl, p["topk"])
    c.exact("assigned_gt_inds", result.gt_inds, tensor(exp["assigned_gt_inds"]))
    c.exact("assigned_labels", result.labels, tensor(exp["assigned_labels"]))
    c.close("max_overlaps", result.max_overlaps, tensor(exp["max_overlaps"]), atol=1e-6)
    c.close("max_iou_over_gts", bbox_overlaps(anchors, gtb).max(1).values if gtb.size(0) else anchors.new_zeros(
        anchors.size(0)), tensor(exp["max_iou_over_gts"]), atol=1e-6)
    if gtb.size(0):
        c.close("iou_threshold_per_gt", result.thresholds, tensor(exp["iou_threshold_per_gt"]), atol=1e-6)
        c.exact("num_candidates_per_gt", torch.tensor(result.num_candidates),
                torch.tensor(exp["num_candidates_per_gt"]))
    per_gt = torch.bincount(result.gt_inds, minlength=gtb.size(0) + 1)[1:]
    c.exact("num_positives_per_gt", per_gt, torch.tensor(exp["num_positives_per_gt"], dtype=torch.long))
    c.exact("num_positives", torch.tensor(int((result.gt_inds > 0).sum())), torch.tensor(exp["num_positives"]))
    assert INF == 100000000


def check_head_loss(c, p, inp, exp):
    cls_scores = [tensor(t).requires_grad_(True) for t in inp["cls_scores"]]
    bbox_preds = [tensor(t).requires_grad_(True) for t in inp["bbox_preds"]]
    gt_bboxes = [tensor(t) for t in inp["gt_bboxes"]]
    gt_labels = [tensor(t) for t in inp["gt_labels"]]
    loss_fn = GflLoss(p["num_classes"], p["reg_max"], p["strides"], p["topk"])
    trace = {}
    losses = loss_fn(cls_scores, bbox_preds, gt_bboxes, gt_labels, p["image_pad_shapes"], trace=trace)
    for key in ("loss_cls", "loss_bbox", "loss_dfl"):
        c.close(key, torch.stack(losses[key]), torch.tensor(exp[key]), rtol=1e-5)
        c.close(key + "_sum", sum(losses[key]), torch.tensor(exp[key + "_sum"]), rtol=1e-5)
    total = total_loss(losses)
    c.close("total_loss", total, torch.tensor(exp["total_loss"]), rtol=1e-5)
    tg = trace["targets"]
    c.exact("num_pos_per_image", torch.tensor(tg.num_pos), torch.tensor(exp["num_pos_per_image"]))
    c.exact("cls_avg_factor", torch.tensor(trace["cls_avg_factor"]), torch.tensor(float(exp["cls_avg_factor"])))
    c.close("bbox_weight_sum_per_level", torch.tensor(trace["bbox_weight_sum_per_level"]),
            torch.tensor(exp["bbox_weight_sum_per_level"]), atol=1e-5)
    c.close("bbox_avg_factor", torch.tensor(trace["bbox_avg_factor"]), torch.tensor(exp["bbox_avg_factor"]), atol=1e-5)
    et = exp["targets"]
    c.exact("targets.anchors", tg.anchors, tensor(et["anchors"]))
    c.exact("targets.valid_flags", tg.valid_flags, tensor(et["valid_flags"]))
    c.exact("targets.labels", tg.labels, tensor(et["labels"]))
    c.exact("targets.label_weights", tg.label_weights, tensor(et["label_weights"]))
    c.exact("targets.bbox_targets", tg.bbox_targets, tensor(et["bbox_targets"]))
    c.close("targets.quality", torch.cat(trace["quality"], dim=1), tensor(et["quality"]), atol=1e-5)
    ep = exp["positives"]
    if trace["positives"]:
        got = {k: torch.cat([d[k] for d in trace["positives"]]) for k in trace["positives"][0]}
    else:
        got = {"index": torch.zeros(0, 4, dtype=torch.long)}
        got.update({k: torch.zeros(tensor(ep[k]).shape) for k in ep if k != "index"})
    c.exact("positives.index", got["index"], tensor(ep["index"]))
    for k in ep:
        if k != "index":
            c.close("positives." + k, got[k], tensor(ep[k]), atol=1e-5)
    total.backward()
    for l, g in enumerate(exp["grad_cls_scores"]):
        c.close(f"grad_cls_scores[{l}]", cls_scores[l].grad, tensor(g), atol=1e-7, rtol=1e-4)
    idx = got["index"]
    grads = [bp.grad if bp.grad is not None else torch.zeros_like(bp) for bp in bbox_preds]
    at_pos = torch.stack([grads[int(l)][int(b), :, int(y), int(x)] for l, b, y, x in idx.tolist()]) \
        if idx.size(0) else torch.zeros(0, bbox_preds[0].size(1))
    c.close("grad_bbox_preds_at_positives", at_pos, tensor(exp["grad_bbox_preds_at_positives"]), atol=1e-7, rtol=1e-4)
    # The gradient must vanish at every non-positive position.
    mask_total = sum(float(g.abs().sum()) for g in grads)
    c.close("grad_bbox_preds_elsewhere", torch.tensor(mask_total - float(at_pos.abs().sum())), torch.tensor(0.0),
            atol=1e-6)


def check_postprocess(c, p, inp, exp):
    cfg = TestConfig(p["nms_pre"], p["min_bbox_size"], p["score_thr"], p["iou_threshold"], p["max_per_img"])
    trace = {}
    det = predict_single([tensor(t) for t in inp["cls_scores"]], [tensor(t) for t in inp["bbox_preds"]],
                         inp["img_shape"], inp["scale_factor"], cfg, p["strides"], p["reg_max"], trace=trace)
    pre = trace["pre_nms"]
    c.exact("pre_nms.labels", pre.labels, tensor(exp["pre_nms"]["labels"]))
    c.close("pre_nms.scores", pre.scores, tensor(exp["pre_nms"]["scores"]), atol=1e-6)
    c.close("pre_nms.bboxes", pre.bboxes, tensor(exp["pre_nms"]["bboxes"]), atol=1e-4, rtol=1e-6)
    for l, (got, want) in enumerate(zip(trace["per_level"], exp["per_level"])):
        c.exact(f"per_level[{l}]", torch.tensor([got["num_above_thr"], got["num_kept"]]),
                torch.tensor([want["num_above_thr"], want["num_kept"]]))
    c.exact("num_after_size_filter", torch.tensor(trace["num_after_size_filter"]),
            torch.tensor(exp["num_after_size_filter"]))
    c.exact("labels", det.labels, tensor(exp["labels"]))
    c.close("scores", det.scores, tensor(exp["scores"]), atol=1e-6)
    c.close("bboxes", det.bboxes, tensor(exp["bboxes"]), atol=1e-4, rtol=1e-6)


CHECKS = {"anchors": check_anchors, "overlaps": check_overlaps, "qfl": check_qfl, "dfl": check_dfl,
          "giou_loss": check_giou_loss, "atss": check_atss, "head_loss": check_head_loss,
          "postprocess": check_postprocess}


def run(fixtures_dir=None, out=sys.stdout):
    """Run all cases; returns (num_passed, num_failed). Prints one line per case."""
    fixtures_dir = fixtures_dir or default_fixtures_dir()
    passed = failed = 0
    torch.set_grad_enabled(True)
    for kind in KINDS:
        files = sorted(glob.glob(os.path.join(fixtures_dir, kind, "*.json")))
        if not files:
            print(f"FAIL {kind}: no fixtures under {os.path.join(fixtures_dir, kind)}", file=out)
            failed += 1
            continue
        for path in files:
            with open(path) as f:
                fx = json.load(f)
            case = Case()
            try:
                CHECKS[kind](case, fx["params"], fx["inputs"], fx["expected"])
            except Exception as e:  # a crash is a failure of that case, reported on its line
                case.failures.append(f"exception {type(e).__name__}: {e}")
            name = f"{kind}/{os.path.basename(path)}"
            if case.failures:
                failed += 1
                print(f"FAIL {name}: " + "; ".join(case.failures[:4]), file=out)
            else:
                passed += 1
                print(f"ok   {name}  (worst error {case.worst:.3f} of tolerance)", file=out)
    print(f"selfcheck: {passed} passed, {failed} failed ({fixtures_dir})", file=out)
    return passed, failed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", help="fixture root (contains anchors/, qfl/, ...)")
    args = ap.parse_args(argv)
    _, failed = run(args.fixtures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
