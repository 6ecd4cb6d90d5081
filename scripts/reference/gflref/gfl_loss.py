"""GFLHead.get_targets + loss_by_feat (mmdetection 3.x; gfl_spec 4-5, gfl_reference_notes 4-6).

Targets are computed once for the batch without gradient; the loss then runs per level on (B*n_l) rows:
QFL over all rows (normalised by sum over images of max(num_pos, 1)), GIoU and DFL on positives weighted
by the detached max class score, each level divided by the batch-global weight sum clamped to >= 1."""
from dataclasses import dataclass
from typing import List

import torch

from . import STRIDES
from .anchors import grid_anchors, valid_flags
from .atss_assigner import atss_assign
from .box_ops import anchor_center, bbox2distance, bbox_overlaps, distance2bbox, integral
from .losses import distribution_focal_loss, giou_loss, quality_focal_loss


@dataclass
class GflTargets:
    anchors: torch.Tensor          # (A, 4) all levels concatenated (same for every image)
    num_level_anchors: List[int]   # n_l
    valid_flags: torch.Tensor      # (B, A) bool
    labels: torch.Tensor           # (B, A) int64, num_classes = background
    label_weights: torch.Tensor    # (B, A) float32, 1 valid / 0 invalid
    bbox_targets: torch.Tensor     # (B, A, 4) assigned gt box in pixels, 0 for non-positives
    num_pos: List[int]             # per image


class GflLoss:
    """Callable: loss(cls_scores, bbox_preds, gt_bboxes, gt_labels, pad_shapes) -> dict of per-level losses."""

    def __init__(self, num_classes, reg_max=16, strides=STRIDES, topk=9, beta=2.0,
                 cls_weight=1.0, bbox_weight=2.0, dfl_weight=0.25):
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.strides = tuple(strides)
        self.topk = topk
        self.beta = beta
        self.cls_weight = cls_weight
        self.bbox_weight = bbox_weight
        self.dfl_weight = dfl_weight

    @torch.no_grad()
    def targets(self, featmap_sizes, pad_shapes, gt_bboxes, gt_labels, device):
        """Assign every image with ATSS on its own valid anchors and scatter the results back."""
        level_anchors = grid_anchors(featmap_sizes, self.strides, device)
        num_level_anchors = [a.size(0) for a in level_anchors]
        anchors = torch.cat(level_anchors)
        num_anchors = anchors.size(0)
        batch = len(pad_shapes)
        valid = torch.stack([torch.cat(valid_flags(featmap_sizes, self.strides, p, device)) for p in pad_shapes])
        labels = torch.full((batch, num_anchors), self.num_classes, dtype=torch.long, device=device)
        label_weights = valid.float()   # pos_weight -1: positives and negatives both 1, invalid 0
        bbox_targets = anchors.new_zeros(batch, num_anchors, 4)
        num_pos = []
        for i in range(batch):
            v = valid[i]
            inside_idx = v.nonzero().squeeze(1)
            level_counts = [int(c) for c in torch.stack([s.sum() for s in v.split(num_level_anchors)]).tolist()]
            gtb = gt_bboxes[i].to(device=device, dtype=torch.float32).reshape(-1, 4)
            gtl = gt_labels[i].to(device=device, dtype=torch.long).reshape(-1)
            result = atss_assign(anchors[inside_idx], level_counts, gtb, gtl, self.topk)
            pos = (result.gt_inds > 0).nonzero().squeeze(1)
            pos_full = inside_idx[pos]
            labels[i, pos_full] = result.labels[pos]
            bbox_targets[i, pos_full] = gtb[result.gt_inds[pos] - 1]
            num_pos.append(int(pos.numel()))
        return GflTargets(anchors, num_level_anchors, valid, labels, label_weights, bbox_targets, num_pos)

    def __call__(self, cls_scores, bbox_preds, gt_bboxes, gt_labels, pad_shapes, trace=None):
        """cls_scores[l] (B,C,h,w), bbox_preds[l] (B,4*(reg_max+1),h,w); gt_bboxes[i] (k_i,4) pixels;
        pad_shapes[i] = image i's own padded (H, W). If trace is a dict it receives targets and positives."""
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        device = cls_scores[0].device
        tg = self.targets(featmap_sizes, pad_shapes, gt_bboxes, gt_labels, device)
        batch = len(pad_shapes)
        cls_avg_factor = float(sum(max(n, 1) for n in tg.num_pos))
        project = torch.linspace(0, self.reg_max, self.reg_max + 1, device=device)

        losses_cls, losses_bbox, losses_dfl, weight_sums = [], [], [], []
        positives = []
        start = 0
        for level, (cls_score, bbox_pred, stride) in enumerate(zip(cls_scores, bbox_preds, self.strides)):
            n_l = tg.num_level_anchors[level]
            sl = slice(start, start + n_l)
            start += n_l
            anchors = tg.anchors[sl].repeat(batch, 1)                           # (B*n_l, 4), image-major
            cls_score = cls_score.float().permute(0, 2, 3, 1).reshape(-1, self.num_classes)
            bbox_pred = bbox_pred.float().permute(0, 2, 3, 1).reshape(-1, 4 * (self.reg_max + 1))
            labels = tg.labels[:, sl].reshape(-1)
            label_weights = tg.label_weights[:, sl].reshape(-1)
            bbox_targets = tg.bbox_targets[:, sl].reshape(-1, 4)

            pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
            score = label_weights.new_zeros(labels.shape)
            if pos.numel() > 0:
                pos_centers = anchor_center(anchors[pos]) / stride
                weight_targets = cls_score.detach().sigmoid().max(dim=1).values[pos]
                pos_bbox_pred = bbox_pred[pos]
                pred_dist = integral(pos_bbox_pred, project)
                pred_box = distance2bbox(pos_centers, pred_dist)
                target_box = bbox_targets[pos] / stride
                quality = bbox_overlaps(pred_box.detach(), target_box, is_aligned=True)
                score[pos] = quality
                dfl_target = bbox2distance(pos_centers, target_box, self.reg_max)
                loss_bbox = giou_loss(pred_box, target_box, weight=weight_targets, avg_factor=1.0,
                                      loss_weight=self.bbox_weight)
                loss_dfl = distribution_focal_loss(pos_bbox_pred.reshape(-1, self.reg_max + 1), dfl_target.reshape(-1),
                                                   weight=weight_targets[:, None].expand(-1, 4).reshape(-1),
                                                   avg_factor=4.0, loss_weight=self.dfl_weight)
                weight_sums.append(weight_targets.sum())
                if trace is not None:
                    hw = n_l
                    w_l = featmap_sizes[level][1]
                    b, cell = pos // hw, pos % hw
                    index = torch.stack([torch.full_like(b, level), b, cell // w_l, cell % w_l], 1)
                    giou = bbox_overlaps(pred_box.detach(), target_box, mode="giou", is_aligned=True)
                    positives.append(dict(index=index, weight=weight_targets, pred_dist=pred_dist.detach(),
                                          pred_box=pred_box.detach(), target_box=target_box, quality=quality,
                                          dfl_target=dfl_target, giou=giou))
            else:
                loss_bbox = bbox_pred.sum() * 0
                loss_dfl = bbox_pred.sum() * 0
                weight_sums.append(bbox_pred.new_tensor(0.0))
            losses_cls.append(quality_focal_loss(cls_score, labels, score, weight=label_weights,
                                                 avg_factor=cls_avg_factor, beta=self.beta,
                                                 loss_weight=self.cls_weight))
            losses_bbox.append(loss_bbox)
            losses_dfl.append(loss_dfl)
            if trace is not None:
                trace.setdefault("quality", []).append(score.detach().view(batch, n_l))

        weight_sum = sum(weight_sums)
        bbox_avg_factor = weight_sum.clamp(min=1).item()
        losses_bbox = [x / bbox_avg_factor for x in losses_bbox]
        losses_dfl = [x / bbox_avg_factor for x in losses_dfl]
        if trace is not None:
            trace.update(targets=tg, positives=positives, cls_avg_factor=cls_avg_factor,
                         bbox_weight_sum_per_level=[float(w) for w in weight_sums],
                         bbox_weight_sum=float(weight_sum), bbox_avg_factor=bbox_avg_factor)
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox, loss_dfl=losses_dfl)


def total_loss(losses):
    """Sum of the 15 per-level numbers."""
    return sum(sum(v) for v in losses.values())
