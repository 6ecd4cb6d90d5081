"""ATSSHead.loss_by_feat (mmdetection 3.x, mmdet/models/dense_heads/atss_head.py) on the same ATSS targets as GFL's
(GflLoss.targets: one anchor per location, octave scale 8, reg_decoded_bbox: the targets are the gt boxes in pixels).
Per level: Focal Loss over every valid anchor normalised by sum over images of max(num_pos, 1); on the positives the
deltas are decoded from the anchors (DeltaXYWH, stds 0.1/0.1/0.2/0.2), GIoU weighted by the centerness target with
avg_factor 1, and BCE of the centerness logit against that target normalised like the classification; each level's
GIoU is then divided by the sum of all centerness targets clamped to >= 1."""
import torch
import torch.nn.functional as F

from . import STRIDES
from .box_ops import centerness_target, delta2bbox
from .gfl_loss import GflLoss
from .losses import giou_loss, sigmoid_focal_loss, weight_reduce


class AtssLoss:
    """Callable: loss(cls_scores, bbox_preds, centernesses, gt_bboxes, gt_labels, pad_shapes) -> dict of per-level
    losses (loss_cls, loss_bbox, loss_centerness); `trace` receives the normalisers."""

    def __init__(self, num_classes, strides=STRIDES, topk=9, gamma=2.0, alpha=0.25, cls_weight=1.0, bbox_weight=2.0,
                 centerness_weight=1.0, stds=(0.1, 0.1, 0.2, 0.2)):
        self.num_classes = num_classes
        self.target_builder = GflLoss(num_classes, strides=strides, topk=topk)
        self.gamma, self.alpha = gamma, alpha
        self.cls_weight, self.bbox_weight, self.centerness_weight = cls_weight, bbox_weight, centerness_weight
        self.stds = stds

    def __call__(self, cls_scores, bbox_preds, centernesses, gt_bboxes, gt_labels, pad_shapes, trace=None):
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        device = cls_scores[0].device
        tg = self.target_builder.targets(featmap_sizes, pad_shapes, gt_bboxes, gt_labels, device)
        batch = len(pad_shapes)
        avg_factor = float(sum(max(n, 1) for n in tg.num_pos))
        losses_cls, losses_bbox, losses_centerness, centerness_sums = [], [], [], []
        start = 0
        for level, (cls_score, bbox_pred, centerness) in enumerate(zip(cls_scores, bbox_preds, centernesses)):
            n_l = tg.num_level_anchors[level]
            sl = slice(start, start + n_l)
            start += n_l
            anchors = tg.anchors[sl].repeat(batch, 1)
            cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.num_classes).contiguous()
            bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4)
            centerness = centerness.permute(0, 2, 3, 1).reshape(-1)
            bbox_targets = tg.bbox_targets[:, sl].reshape(-1, 4)
            labels = tg.labels[:, sl].reshape(-1)
            label_weights = tg.label_weights[:, sl].reshape(-1)
            loss_cls = sigmoid_focal_loss(cls_score, labels, label_weights, avg_factor, self.gamma, self.alpha,
                                          self.cls_weight)
            pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
            if len(pos) > 0:
                pos_bbox_targets = bbox_targets[pos]
                pos_anchors = anchors[pos]
                centerness_targets = centerness_target(pos_anchors, pos_bbox_targets)
                pos_decode_bbox_pred = delta2bbox(pos_anchors, bbox_pred[pos], (0.0, 0.0, 0.0, 0.0), self.stds)
                loss_bbox = giou_loss(pos_decode_bbox_pred, pos_bbox_targets, weight=centerness_targets, avg_factor=1.0,
                                      loss_weight=self.bbox_weight)
                bce = F.binary_cross_entropy_with_logits(centerness[pos], centerness_targets, reduction="none")
                loss_centerness = self.centerness_weight * weight_reduce(bce, None, avg_factor)
            else:
                loss_bbox = bbox_pred.sum() * 0
                loss_centerness = centerness.sum() * 0
                centerness_targets = bbox_targets.new_tensor(0.0)
            losses_cls.append(loss_cls)
            losses_bbox.append(loss_bbox)
            losses_centerness.append(loss_centerness)
            centerness_sums.append(centerness_targets.sum())
        bbox_avg_factor = sum(centerness_sums).clamp_(min=1).item()
        losses_bbox = [x / bbox_avg_factor for x in losses_bbox]
        if trace is not None:
            trace.update(targets=tg, avg_factor=avg_factor, centerness_sum_per_level=[float(s) for s in centerness_sums],
                         bbox_avg_factor=bbox_avg_factor)
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox, loss_centerness=losses_centerness)
