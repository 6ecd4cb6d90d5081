"""ATSSAssigner(topk=9) as mmdetection 3.x runs it for GFL (gfl_spec 4, gfl_reference_notes 3), on the valid
anchors of one image:
1. IoU between anchor boxes and gts; 2. centre distances; 3. per level the min(topk, n_l) nearest anchors
per gt; 4. threshold per gt = mean + unbiased std of the candidates' IoUs; 5. positive if IoU >= threshold and
the anchor centre is inside the gt by > 0.01 px; 6. an anchor positive for several gts goes to the highest IoU
(exact ties: lowest gt index)."""
from dataclasses import dataclass

import torch

from .box_ops import bbox_overlaps

INF = 100000000


@dataclass
class AssignResult:
    gt_inds: torch.Tensor        # (n,) int64: 0 negative, i+1 = gt i
    labels: torch.Tensor         # (n,) int64: gt label or -1
    max_overlaps: torch.Tensor   # (n,) IoU with the assigned gt, -INF for negatives, 0 if no gt
    thresholds: torch.Tensor     # (k,) mean + std per gt
    num_candidates: int          # per gt: sum over levels of min(topk, n_l)


def atss_assign(anchors, num_level_anchors, gt_bboxes, gt_labels, topk=9):
    """anchors (n,4) valid anchors in level order; num_level_anchors: valid count per level;
    gt_bboxes (k,4); gt_labels (k,)."""
    n, k = anchors.size(0), gt_bboxes.size(0)
    device = anchors.device
    overlaps = bbox_overlaps(anchors, gt_bboxes)
    gt_inds = torch.zeros(n, dtype=torch.long, device=device)
    labels = torch.full((n,), -1, dtype=torch.long, device=device)
    if k == 0 or n == 0:
        return AssignResult(gt_inds, labels, anchors.new_zeros(n), anchors.new_zeros(k), 0)

    gt_points = torch.stack([(gt_bboxes[:, 0] + gt_bboxes[:, 2]) / 2.0, (gt_bboxes[:, 1] + gt_bboxes[:, 3]) / 2.0], 1)
    anchor_cx = (anchors[:, 0] + anchors[:, 2]) / 2.0
    anchor_cy = (anchors[:, 1] + anchors[:, 3]) / 2.0
    anchor_points = torch.stack([anchor_cx, anchor_cy], 1)
    distances = (anchor_points[:, None, :] - gt_points[None, :, :]).pow(2).sum(-1).sqrt()   # (n, k)

    candidates = []
    start = 0
    for count in num_level_anchors:
        end = start + count
        if count > 0:
            _, idx = distances[start:end].topk(min(topk, count), dim=0, largest=False)
            candidates.append(idx + start)
        start = end
    candidate_idxs = torch.cat(candidates, dim=0)                    # (C, k)
    candidate_overlaps = overlaps.gather(0, candidate_idxs)           # (C, k)
    thresholds = candidate_overlaps.mean(0) + candidate_overlaps.std(0)
    is_pos = candidate_overlaps >= thresholds[None, :]

    cand_cx = anchor_cx[candidate_idxs]
    cand_cy = anchor_cy[candidate_idxs]
    margins = torch.stack([cand_cx - gt_bboxes[:, 0], cand_cy - gt_bboxes[:, 1],
                           gt_bboxes[:, 2] - cand_cx, gt_bboxes[:, 3] - cand_cy], dim=0)
    is_pos = is_pos & (margins.min(dim=0).values > 0.01)

    # Real IoU only at positive (anchor, gt) pairs, -INF elsewhere; the per-anchor max decides.
    gt_cols = torch.arange(k, device=device).expand_as(candidate_idxs)
    overlaps_inf = torch.full_like(overlaps, -INF)
    rows, cols = candidate_idxs[is_pos], gt_cols[is_pos]
    overlaps_inf[rows, cols] = overlaps[rows, cols]
    max_overlaps, argmax = overlaps_inf.max(dim=1)
    assigned = max_overlaps != -INF
    gt_inds[assigned] = argmax[assigned] + 1
    labels[assigned] = gt_labels[argmax[assigned]].long()
    return AssignResult(gt_inds, labels, max_overlaps, thresholds, candidate_idxs.size(0))
