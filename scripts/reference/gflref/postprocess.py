"""GFLHead._predict_by_feat_single + _bbox_post_process, mmdetection 3.x (gfl_spec 6.3,
gfl_reference_notes 9): per level keep (anchor, class) pairs with score > score_thr, top nms_pre pairs,
decode around (x*s, y*s) with Integral*stride, clamp to the resized image; then rescale to the original
image, drop boxes with w or h <= min_bbox_size, class-aware NMS (mmcv's label offset trick), top max_per_img."""
from dataclasses import dataclass

import torch
from torchvision.ops import nms

from . import STRIDES
from .anchors import level_anchors
from .box_ops import anchor_center, distance2bbox, integral


@dataclass
class TestConfig:
    nms_pre: int = 1000
    min_bbox_size: float = 0
    score_thr: float = 0.05
    iou_threshold: float = 0.6
    max_per_img: int = 100


@dataclass
class Detections:
    bboxes: torch.Tensor   # (n, 4) xyxy in original-image pixels
    scores: torch.Tensor   # (n,)
    labels: torch.Tensor   # (n,) 0..C-1


def batched_nms(boxes, scores, labels, iou_threshold):
    """Class-aware NMS as mmcv does it below 10k boxes: offset each class by label*(max coord + 1) and run one
    NMS. Returns kept indices sorted by descending score."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    offsets = labels.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def predict_single(cls_scores, bbox_preds, img_shape, scale_factor, cfg=TestConfig(), strides=STRIDES,
                   reg_max=16, trace=None):
    """One image: cls_scores[l] (C,h,w), bbox_preds[l] (4*(reg_max+1),h,w) raw head outputs; img_shape (H,W)
    resized before padding; scale_factor (w_scale, h_scale). If trace is a dict it receives the intermediates."""
    device = cls_scores[0].device
    project = torch.linspace(0, reg_max, reg_max + 1, device=device)
    num_classes = cls_scores[0].size(0)
    mlvl_boxes, mlvl_scores, mlvl_labels, per_level = [], [], [], []
    for cls_score, bbox_pred, stride in zip(cls_scores, bbox_preds, strides):
        h, w = cls_score.shape[-2:]
        dist = integral(bbox_pred.float().permute(1, 2, 0), project) * stride          # (h*w, 4) pixels
        scores = cls_score.float().permute(1, 2, 0).reshape(-1, num_classes).sigmoid()
        valid_mask = scores > cfg.score_thr
        kept_scores = scores[valid_mask]
        valid_idxs = valid_mask.nonzero()
        num_topk = min(cfg.nms_pre, valid_idxs.size(0))
        kept_scores, order = kept_scores.sort(descending=True)
        kept_scores = kept_scores[:num_topk]
        anchor_idx, labels = valid_idxs[order[:num_topk]].unbind(dim=1)
        priors = level_anchors((h, w), stride, device=device)[anchor_idx]
        boxes = distance2bbox(anchor_center(priors), dist[anchor_idx], max_shape=img_shape)
        mlvl_boxes.append(boxes)
        mlvl_scores.append(kept_scores)
        mlvl_labels.append(labels)
        per_level.append(dict(num_above_thr=int(valid_idxs.size(0)), num_kept=int(num_topk)))
    boxes = torch.cat(mlvl_boxes)
    scores = torch.cat(mlvl_scores)
    labels = torch.cat(mlvl_labels)

    # mmdet 3.x scale_boxes: multiply by float32 reciprocals of the scale factor.
    inv = boxes.new_tensor([1 / scale_factor[0], 1 / scale_factor[1]]).repeat(2)
    boxes = boxes * inv
    if trace is not None:
        trace.update(pre_nms=Detections(boxes, scores, labels), per_level=per_level)
    if cfg.min_bbox_size >= 0:
        keep = ((boxes[:, 2] - boxes[:, 0]) > cfg.min_bbox_size) & ((boxes[:, 3] - boxes[:, 1]) > cfg.min_bbox_size)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if trace is not None:
        trace["num_after_size_filter"] = int(boxes.size(0))
    keep = batched_nms(boxes, scores, labels, cfg.iou_threshold)[:cfg.max_per_img]
    return Detections(boxes[keep], scores[keep], labels[keep])


def predict_single_atss(cls_scores, bbox_preds, centernesses, img_shape, scale_factor, cfg=TestConfig(), strides=STRIDES,
                        stds=(0.1, 0.1, 0.2, 0.2)):
    """mmdetection 3.x BaseDenseHead._predict_by_feat_single + _bbox_post_process as ATSSHead runs it (with_score_factors):
    the (anchor, class) pairs are selected on sigmoid(cls) alone (score_thr, nms_pre), their deltas decoded from the
    anchors (DeltaXYWH, clipped to img_shape), and after rescaling each score is multiplied by sigmoid(centerness) of its
    anchor before the size filter and NMS. Returns (Detections, pre-NMS Detections with the multiplied scores)."""
    from .box_ops import delta2bbox
    device = cls_scores[0].device
    num_classes = cls_scores[0].size(0)
    mlvl_boxes, mlvl_scores, mlvl_labels, mlvl_factors = [], [], [], []
    for cls_score, bbox_pred, centerness, stride in zip(cls_scores, bbox_preds, centernesses, strides):
        h, w = cls_score.shape[-2:]
        bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
        score_factor = centerness.permute(1, 2, 0).reshape(-1).sigmoid()
        scores = cls_score.permute(1, 2, 0).reshape(-1, num_classes).sigmoid()
        valid_mask = scores > cfg.score_thr
        kept_scores = scores[valid_mask]
        valid_idxs = torch.nonzero(valid_mask)
        num_topk = min(cfg.nms_pre, valid_idxs.size(0))
        kept_scores, idxs = kept_scores.sort(descending=True)
        kept_scores = kept_scores[:num_topk]
        keep_idxs, labels = valid_idxs[idxs[:num_topk]].unbind(dim=1)
        priors = level_anchors((h, w), stride, device=device)[keep_idxs]
        bboxes = delta2bbox(priors, bbox_pred[keep_idxs], (0.0, 0.0, 0.0, 0.0), stds, max_shape=img_shape)
        mlvl_boxes.append(bboxes)
        mlvl_scores.append(kept_scores)
        mlvl_labels.append(labels)
        mlvl_factors.append(score_factor[keep_idxs])
    boxes = torch.cat(mlvl_boxes)
    inv = boxes.new_tensor([1 / scale_factor[0], 1 / scale_factor[1]]).repeat(2)
    boxes = boxes * inv
    scores = torch.cat(mlvl_scores) * torch.cat(mlvl_factors)
    labels = torch.cat(mlvl_labels)
    pre_nms = Detections(boxes, scores, labels)
    if cfg.min_bbox_size >= 0:
        keep = ((boxes[:, 2] - boxes[:, 0]) > cfg.min_bbox_size) & ((boxes[:, 3] - boxes[:, 1]) > cfg.min_bbox_size)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = batched_nms(boxes, scores, labels, cfg.iou_threshold)[:cfg.max_per_img]
    return Detections(boxes[keep], scores[keep], labels[keep]), pre_nms
