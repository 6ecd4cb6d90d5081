"""mmdetection MaxIoUAssigner.assign_wrt_overlaps (mmdet/models/task_modules/assigners/max_iou_assigner.py), as
RetinaNet configures it: pos_iou_thr 0.5, neg_iou_thr 0.4, min_pos_iou 0, gt_max_assign_all True,
match_low_quality True, ignore_iof_thr -1. Transcribed statement by statement, including the gt loop of the
low-quality matches (a later gt overwrites an earlier one)."""
import torch

from .box_ops import bbox_overlaps


def max_iou_assign(priors, gt_bboxes, gt_labels, pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0.0,
                   gt_max_assign_all=True, match_low_quality=True):
    """Returns (assigned_gt_inds (n,) int64: -1 ignored, 0 negative, i+1 gt i; max_overlaps (n,); assigned_labels
    (n,) int64, -1 where not positive)."""
    overlaps = bbox_overlaps(gt_bboxes, priors)          # (G, n)
    num_gts, num_bboxes = overlaps.size(0), overlaps.size(1)
    assigned_gt_inds = overlaps.new_full((num_bboxes,), -1, dtype=torch.long)
    if num_gts == 0 or num_bboxes == 0:
        max_overlaps = overlaps.new_zeros((num_bboxes,))
        if num_gts == 0:
            assigned_gt_inds[:] = 0
        assigned_labels = overlaps.new_full((num_bboxes,), -1, dtype=torch.long)
        return assigned_gt_inds, max_overlaps, assigned_labels
    max_overlaps, argmax_overlaps = overlaps.max(dim=0)
    gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)
    assigned_gt_inds[(max_overlaps >= 0) & (max_overlaps < neg_iou_thr)] = 0
    pos_inds = max_overlaps >= pos_iou_thr
    assigned_gt_inds[pos_inds] = argmax_overlaps[pos_inds] + 1
    if match_low_quality:
        for i in range(num_gts):
            if gt_max_overlaps[i] >= min_pos_iou:
                if gt_max_assign_all:
                    max_iou_inds = overlaps[i, :] == gt_max_overlaps[i]
                    assigned_gt_inds[max_iou_inds] = i + 1
                else:
                    assigned_gt_inds[gt_argmax_overlaps[i]] = i + 1
    assigned_labels = assigned_gt_inds.new_full((num_bboxes,), -1)
    pos = torch.nonzero(assigned_gt_inds > 0, as_tuple=False).squeeze()
    if pos.numel() > 0:
        assigned_labels[pos] = gt_labels[assigned_gt_inds[pos] - 1]
    return assigned_gt_inds, max_overlaps, assigned_labels
