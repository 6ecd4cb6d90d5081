#!/usr/bin/env python3
"""Fixtures of the parts the ATSS and RetinaNet heads add to GFL's (issue 19), in the public set's format, from
gflref's transcriptions of mmdetection 3.x:
  delta_coder/  DeltaXYWHBBoxCoder encode and decode (gflref.box_ops.bbox2delta / delta2bbox): ATSS's stds
                (0.1, 0.1, 0.2, 0.2) and RetinaNet's (1, 1, 1, 1), the wh-ratio clamp, clipping to max_shape;
                plus ATSSHead.centerness_target on the same anchors and boxes.
  max_iou/      MaxIoUAssigner as RetinaNet configures it (gflref.max_iou_assigner).
  atss_loss/    ATSSHead.loss_by_feat (gflref.atss_loss) on the gts, feature-map sizes and pad shapes of every
                head_loss/ case of the public set, with seeded random class, delta and centerness maps: per-level
                losses, normalisers and the gradients with respect to every head output.
  atss_postprocess/  ATSS's test-time path (gflref.postprocess.predict_single_atss) on the class maps, image shapes
                and scale factors of every postprocess/ case of the public set, with seeded random deltas and
                centerness maps.

Run with Debian's interpreter (torch 1.13): /usr/bin/python3 scripts/reference/make_dense_head_fixtures.py
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gflref.box_ops import bbox2delta, centerness_target, delta2bbox  # noqa: E402
from gflref.fixture_json import tensor, write  # noqa: E402
from gflref.max_iou_assigner import max_iou_assign  # noqa: E402
from gflref.atss_loss import AtssLoss  # noqa: E402
from gflref.postprocess import TestConfig, predict_single_atss  # noqa: E402
from gflref.retina import RetinaLoss, predict_single_retina  # noqa: E402
import json  # noqa: E402

FIXTURES = os.path.join(HERE, "..", "..", "tests", "GflTrainer.Tests", "Fixtures", "gfl")
REFERENCE = ("mmdetection v3.3.0 (44ebd17b) DeltaXYWHBBoxCoder / ATSSHead.centerness_target / MaxIoUAssigner logic "
             "(scripts/reference/gflref), float32, PyTorch " + torch.__version__ + " CPU")


def retina_anchors(h, w, strides=(8, 16)):
    """mmdetection AnchorGenerator(octave_base_scale 4, scales_per_octave 3, ratios 0.5/1/2, center_offset 0) for a
    few levels: per location 9 anchors (ratio-major, then scale), locations row-major, levels concatenated."""
    out = []
    for s in strides:
        scales = torch.tensor([4 * 2 ** (i / 3) for i in range(3)])
        ratios = torch.tensor([0.5, 1.0, 2.0])
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        ws = (s * w_ratios[:, None] * scales[None, :]).view(-1)
        hs = (s * h_ratios[:, None] * scales[None, :]).view(-1)
        base = torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=-1)
        fh, fw = -(-h // s), -(-w // s)
        sx = torch.arange(0, fw) * s
        sy = torch.arange(0, fh) * s
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        shifts = torch.stack([xx.reshape(-1), yy.reshape(-1), xx.reshape(-1), yy.reshape(-1)], dim=-1).float()
        out.append((base[None, :, :] + shifts[:, None, :]).view(-1, 4))
    return torch.cat(out)


def random_boxes(g, n, w, h, min_side=4, max_side=None):
    max_side = max_side or min(w, h) / 2
    wh = torch.rand(n, 2, generator=g) * (max_side - min_side) + min_side
    xy = torch.rand(n, 2, generator=g) * (torch.tensor([w, h]) - wh)
    return torch.cat([xy, xy + wh], dim=1)


def delta_case(name, description, g, stds, max_shape, n=40, big_deltas=False):
    anchors = random_boxes(g, n, 320, 256, 8, 128)
    gts = random_boxes(g, n, 320, 256, 3, 200)
    # Centres inside their gt for the centerness target (ATSS positives are), a few right on a side's middle.
    cx = gts[:, 0] + (gts[:, 2] - gts[:, 0]) * (0.05 + 0.9 * torch.rand(n, generator=g))
    cy = gts[:, 1] + (gts[:, 3] - gts[:, 1]) * (0.05 + 0.9 * torch.rand(n, generator=g))
    cx[:3] = (gts[:3, 0] + gts[:3, 2]) / 2
    half = (anchors[:, 2:] - anchors[:, :2]) / 2
    anchors = torch.stack([cx - half[:, 0], cy - half[:, 1], cx + half[:, 0], cy + half[:, 1]], dim=1)
    means = (0.0, 0.0, 0.0, 0.0)
    encoded = bbox2delta(anchors, gts, means, stds)
    deltas = torch.randn(n, 4, generator=g) * (6.0 if big_deltas else 0.5)
    decoded = delta2bbox(anchors, deltas, means, stds)
    clipped = delta2bbox(anchors, deltas, means, stds, max_shape=max_shape)
    roundtrip = delta2bbox(anchors, encoded, means, stds)
    write(os.path.join(FIXTURES, "delta_coder"), "delta_coder", name, description, REFERENCE,
          {"means": list(means), "stds": list(stds), "max_shape": list(max_shape), "wh_ratio_clip": 0.016},
          {"anchors": tensor(anchors), "gt_bboxes": tensor(gts), "deltas": tensor(deltas)},
          {"encoded": tensor(encoded), "decoded": tensor(decoded), "decoded_clipped": tensor(clipped),
           "decoded_encoded": tensor(roundtrip), "centerness": tensor(centerness_target(anchors, gts))})


def max_iou_case(name, description, gts, labels, h=64, w=96):
    priors = retina_anchors(h, w)
    inds, max_overlaps, assigned_labels = max_iou_assign(priors, gts, labels)
    write(os.path.join(FIXTURES, "max_iou"), "max_iou", name, description, REFERENCE,
          {"pos_iou_thr": 0.5, "neg_iou_thr": 0.4, "min_pos_iou": 0.0, "gt_max_assign_all": True,
           "match_low_quality": True, "image_shape": [h, w]},
          {"priors": tensor(priors), "gt_bboxes": tensor(gts), "gt_labels": tensor(labels)},
          {"assigned_gt_inds": tensor(inds), "max_overlaps": tensor(max_overlaps), "assigned_labels": tensor(assigned_labels),
           "num_pos": int((inds > 0).sum()), "num_neg": int((inds == 0).sum()), "num_ignored": int((inds < 0).sum())})


def from_fixture(t):
    dtype = {"float32": torch.float32, "int64": torch.long}[t["dtype"]]
    return torch.tensor(t["data"], dtype=dtype).reshape(t["shape"])


def atss_loss_case(source, g):
    """The gts and shapes of a head_loss case of the public set; the head outputs are ATSS's, drawn here."""
    with open(source) as f:
        src = json.load(f)
    p = src["params"]
    num_classes = p["num_classes"]
    gt_bboxes = [from_fixture(t) for t in src["inputs"]["gt_bboxes"]]
    gt_labels = [from_fixture(t) for t in src["inputs"]["gt_labels"]]
    pad_shapes = [tuple(s) for s in p["image_pad_shapes"]]
    batch = len(pad_shapes)
    sizes = [tuple(s) for s in src["inputs"]["featmap_sizes"]]
    cls = [(torch.randn(batch, num_classes, h, w, generator=g) * 1.5 - 3).requires_grad_(True) for h, w in sizes]
    box = [(torch.randn(batch, 4, h, w, generator=g) * 0.5).requires_grad_(True) for h, w in sizes]
    ctr = [torch.randn(batch, 1, h, w, generator=g).requires_grad_(True) for h, w in sizes]
    trace = {}
    losses = AtssLoss(num_classes, strides=tuple(p["strides"]), topk=p["topk"])(cls, box, ctr, gt_bboxes, gt_labels,
                                                                                  pad_shapes, trace)
    total = sum(sum(v) for v in losses.values())
    total.backward()
    name = os.path.splitext(os.path.basename(source))[0]
    write(os.path.join(FIXTURES, "atss_loss"), "atss_loss", name,
          "ATSSHead.loss_by_feat on the gts and shapes of head_loss/" + name + " with seeded random ATSS head outputs "
          "(class logits around -3, deltas std 0.5, centerness logits std 1).", REFERENCE,
          {"num_classes": num_classes, "strides": p["strides"], "topk": p["topk"], "image_pad_shapes": p["image_pad_shapes"],
           "loss_cls": {"type": "FocalLoss", "gamma": 2.0, "alpha": 0.25, "loss_weight": 1.0},
           "loss_bbox": {"type": "GIoULoss", "loss_weight": 2.0},
           "loss_centerness": {"type": "CrossEntropyLoss", "use_sigmoid": True, "loss_weight": 1.0},
           "bbox_coder": {"type": "DeltaXYWHBBoxCoder", "target_means": [0.0] * 4, "target_stds": [0.1, 0.1, 0.2, 0.2]}},
          {"featmap_sizes": [list(s) for s in sizes], "cls_scores": [tensor(t) for t in cls],
           "bbox_preds": [tensor(t) for t in box], "centernesses": [tensor(t) for t in ctr],
           "gt_bboxes": src["inputs"]["gt_bboxes"], "gt_labels": src["inputs"]["gt_labels"]},
          {"loss_cls": [float(x) for x in losses["loss_cls"]], "loss_bbox": [float(x) for x in losses["loss_bbox"]],
           "loss_centerness": [float(x) for x in losses["loss_centerness"]], "total_loss": float(total),
           "num_pos_per_image": trace["targets"].num_pos, "avg_factor": trace["avg_factor"],
           "centerness_sum_per_level": trace["centerness_sum_per_level"], "bbox_avg_factor": trace["bbox_avg_factor"],
           "grad_cls_scores": [tensor(t.grad) for t in cls], "grad_bbox_preds": [tensor(t.grad) for t in box],
           "grad_centernesses": [tensor(t.grad) for t in ctr]})


def atss_postprocess_case(source, g):
    with open(source) as f:
        src = json.load(f)
    p = src["params"]
    cls = [from_fixture(t) for t in src["inputs"]["cls_scores"]]
    sizes = [tuple(c.shape[-2:]) for c in cls]
    box = [torch.randn(4, h, w, generator=g) * 0.7 for h, w in sizes]
    ctr = [torch.randn(1, h, w, generator=g) * 2 for h, w in sizes]
    img_shape = tuple(src["inputs"]["img_shape"])
    scale = src["inputs"]["scale_factor"]
    dets, pre = predict_single_atss(cls, box, ctr, img_shape, scale, strides=tuple(p["strides"]))
    name = os.path.splitext(os.path.basename(source))[0]
    params = {k: p[k] for k in ("nms_pre", "min_bbox_size", "score_thr", "iou_threshold", "max_per_img", "num_classes", "strides")}
    params["bbox_coder"] = {"type": "DeltaXYWHBBoxCoder", "target_means": [0.0] * 4, "target_stds": [0.1, 0.1, 0.2, 0.2]}
    write(os.path.join(FIXTURES, "atss_postprocess"), "atss_postprocess", name,
          "ATSS test-time post-processing on the class maps, image shape and scale of postprocess/" + name +
          " with seeded random deltas (std 0.7) and centerness logits (std 2).", REFERENCE, params,
          {"cls_scores": src["inputs"]["cls_scores"], "bbox_preds": [tensor(t) for t in box],
           "centernesses": [tensor(t) for t in ctr], "img_shape": list(img_shape), "scale_factor": scale},
          {"bboxes": tensor(dets.bboxes), "scores": tensor(dets.scores), "labels": tensor(dets.labels),
           "pre_nms": {"bboxes": tensor(pre.bboxes), "scores": tensor(pre.scores), "labels": tensor(pre.labels)}})


def retina_loss_case(source, g, giou=False):
    """The gts and shapes of a head_loss case of the public set with seeded RetinaNet head outputs (9 anchors)."""
    with open(source) as f:
        src = json.load(f)
    p = src["params"]
    num_classes = p["num_classes"]
    gt_bboxes = [from_fixture(t) for t in src["inputs"]["gt_bboxes"]]
    gt_labels = [from_fixture(t) for t in src["inputs"]["gt_labels"]]
    pad_shapes = [tuple(s) for s in p["image_pad_shapes"]]
    batch = len(pad_shapes)
    sizes = [tuple(s) for s in src["inputs"]["featmap_sizes"]]
    cls = [(torch.randn(batch, 9 * num_classes, h, w, generator=g) * 1.5 - 3).requires_grad_(True) for h, w in sizes]
    box = [(torch.randn(batch, 36, h, w, generator=g) * 0.5).requires_grad_(True) for h, w in sizes]
    trace = {}
    losses = RetinaLoss(num_classes, strides=tuple(p["strides"]), giou=giou)(cls, box, gt_bboxes, gt_labels, pad_shapes, trace)
    total = sum(sum(v) for v in losses.values())
    total.backward()
    name = os.path.splitext(os.path.basename(source))[0] + ("_giou" if giou else "")
    write(os.path.join(FIXTURES, "retina_loss"), "retina_loss", name,
          "RetinaNet's AnchorHead.loss_by_feat on the gts and shapes of head_loss/" + name.replace("_giou", "") +
          " with seeded random head outputs (9 anchors per location; class logits around -3, deltas std 0.5)" +
          (", GIoU on decoded boxes (reg_decoded_bbox)." if giou else ", L1 on the deltas."), REFERENCE,
          {"num_classes": num_classes, "strides": p["strides"], "image_pad_shapes": p["image_pad_shapes"],
           "anchor_generator": {"octave_base_scale": 4, "scales_per_octave": 3, "ratios": [0.5, 1.0, 2.0]},
           "assigner": {"type": "MaxIoUAssigner", "pos_iou_thr": 0.5, "neg_iou_thr": 0.4, "min_pos_iou": 0.0},
           "loss_cls": {"type": "FocalLoss", "gamma": 2.0, "alpha": 0.25, "loss_weight": 1.0},
           "loss_bbox": {"type": "GIoULoss", "loss_weight": 2.0} if giou else {"type": "L1Loss", "loss_weight": 1.0},
           "bbox_coder": {"type": "DeltaXYWHBBoxCoder", "target_means": [0.0] * 4, "target_stds": [1.0] * 4}},
          {"featmap_sizes": [list(s) for s in sizes], "cls_scores": [tensor(t) for t in cls],
           "bbox_preds": [tensor(t) for t in box], "gt_bboxes": src["inputs"]["gt_bboxes"],
           "gt_labels": src["inputs"]["gt_labels"]},
          {"loss_cls": [float(x) for x in losses["loss_cls"]], "loss_bbox": [float(x) for x in losses["loss_bbox"]],
           "total_loss": float(total), "num_pos_per_image": trace["targets"]["num_pos"], "avg_factor": trace["avg_factor"],
           # The anchors of the first four P3 locations and the last location of P7 (the full set is implied by the
           # losses); labels of every anchor; per image the number of anchors with label weight 1.
           "anchors_p3_head": tensor(trace["targets"]["anchors"][:36]), "anchors_tail": tensor(trace["targets"]["anchors"][-9:]),
           "labels": tensor(trace["targets"]["labels"]),
           "label_weight_sum_per_image": [int(x) for x in trace["targets"]["label_weights"].sum(1).tolist()],
           "grad_cls_scores": [tensor(t.grad) for t in cls], "grad_bbox_preds": [tensor(t.grad) for t in box]})


def retina_postprocess_case(source, g):
    with open(source) as f:
        src = json.load(f)
    p = src["params"]
    sizes = [tuple(t["shape"][-2:]) for t in src["inputs"]["cls_scores"]]
    num_classes = p["num_classes"]
    cls = [torch.randn(9 * num_classes, h, w, generator=g) * 2 - 3 for h, w in sizes]
    box = [torch.randn(36, h, w, generator=g) * 0.7 for h, w in sizes]
    img_shape = tuple(src["inputs"]["img_shape"])
    scale = src["inputs"]["scale_factor"]
    cfg = TestConfig(nms_pre=p["nms_pre"], min_bbox_size=p["min_bbox_size"], score_thr=p["score_thr"], iou_threshold=0.5,
                     max_per_img=p["max_per_img"])
    dets, pre = predict_single_retina(cls, box, img_shape, scale, cfg, strides=tuple(p["strides"]))
    name = os.path.splitext(os.path.basename(source))[0]
    params = {k: p[k] for k in ("nms_pre", "min_bbox_size", "score_thr", "max_per_img", "num_classes", "strides")}
    params["iou_threshold"] = 0.5
    params["anchor_generator"] = {"octave_base_scale": 4, "scales_per_octave": 3, "ratios": [0.5, 1.0, 2.0]}
    params["bbox_coder"] = {"type": "DeltaXYWHBBoxCoder", "target_means": [0.0] * 4, "target_stds": [1.0] * 4}
    write(os.path.join(FIXTURES, "retina_postprocess"), "retina_postprocess", name,
          "RetinaNet test-time post-processing (NMS 0.5) on the feature-map sizes, image shape and scale of postprocess/" +
          name + " with seeded random class logits (9 anchors, around -3, std 2) and deltas (std 0.7).", REFERENCE, params,
          {"cls_scores": [tensor(t) for t in cls], "bbox_preds": [tensor(t) for t in box], "img_shape": list(img_shape),
           "scale_factor": scale},
          {"bboxes": tensor(dets.bboxes), "scores": tensor(dets.scores), "labels": tensor(dets.labels),
           "pre_nms": {"bboxes": tensor(pre.bboxes), "scores": tensor(pre.scores), "labels": tensor(pre.labels)}})


def main():
    g = torch.Generator().manual_seed(0)
    post = os.path.join(FIXTURES, "postprocess")
    for source in sorted(os.listdir(post)):
        if source.endswith(".json"):
            atss_postprocess_case(os.path.join(post, source), torch.Generator().manual_seed(len(source)))
    head_loss = os.path.join(FIXTURES, "head_loss")
    for source in sorted(os.listdir(head_loss)):
        if source.endswith(".json"):
            atss_loss_case(os.path.join(head_loss, source), torch.Generator().manual_seed(len(source)))
            retina_loss_case(os.path.join(head_loss, source), torch.Generator().manual_seed(len(source) + 1))
            if source == "many_small.json":
                retina_loss_case(os.path.join(head_loss, source), torch.Generator().manual_seed(len(source) + 2), giou=True)
    for source in sorted(os.listdir(post)):
        if source.endswith(".json"):
            retina_postprocess_case(os.path.join(post, source), torch.Generator().manual_seed(len(source) + 1))
    delta_case("atss_stds", "ATSS's coder (stds 0.1, 0.1, 0.2, 0.2): 40 anchor/gt pairs, anchors centred inside their "
               "gt (three exactly on the vertical centre line: centerness sqrt(1 * t/b ratio)), decode of small deltas "
               "with and without clipping to a 256x320 image.", g, (0.1, 0.1, 0.2, 0.2), (256, 320))
    delta_case("retina_stds_clamped", "RetinaNet's coder (stds 1): large deltas (std 6) so the size ratio clamp "
               "|log(0.016)| = 4.135 and the clipping to 200x240 both act.", g, (1.0, 1.0, 1.0, 1.0), (200, 240),
               big_deltas=True)

    max_iou_case("mixed", "Five gts of 10-60 px over 64x96 (strides 8 and 16, 9 anchors per location): positives "
                 "at IoU >= 0.5, negatives below 0.4, ignored between, low-quality matches for small gts.",
                 torch.tensor([[4.0, 6.0, 40.0, 50.0], [50.0, 10.0, 90.0, 40.0], [30.0, 30.0, 42.0, 40.0],
                               [60.0, 40.0, 70.0, 52.0], [10.0, 44.0, 30.0, 62.0]]), torch.tensor([0, 1, 2, 1, 0]))
    max_iou_case("overlapping_gts", "Two nearly identical gts and one inside another: argmax ties between gts go to "
                 "the lower index, low-quality matches of a later gt overwrite an earlier one's.",
                 torch.tensor([[16.0, 16.0, 48.0, 48.0], [16.0, 16.0, 48.0, 48.5], [20.0, 20.0, 44.0, 44.0]]),
                 torch.tensor([2, 1, 0]))
    max_iou_case("tiny_gt", "A 3x3 gt: its best IoU is far below 0.4, only the low-quality match makes it positive, "
                 "with every prior of equal IoU (gt_max_assign_all).", torch.tensor([[41.0, 21.0, 44.0, 24.0]]),
                 torch.tensor([3]))
    max_iou_case("no_gt", "No gts: every prior negative, max_overlaps 0.", torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    max_iou_case("gt_outside_priors", "A gt outside every prior (IoU 0 with all): min_pos_iou 0 lets the low-quality "
                 "match assign it every prior whose IoU equals its maximum, 0 -- mmdetection's behaviour, reproduced.",
                 torch.tensor([[200.0, 200.0, 210.0, 210.0], [8.0, 8.0, 40.0, 40.0]]), torch.tensor([0, 1]))


if __name__ == "__main__":
    main()
