"""Box geometry as mmdetection computes it: bbox_overlaps (no +1, eps as a lower clamp),
DistancePointBBoxCoder (decode / encode in distance form) and the Integral projection (gfl_spec 3.4-3.5)."""
import torch
import torch.nn.functional as F


def bbox_overlaps(boxes1, boxes2, mode="iou", is_aligned=False, eps=1e-6):
    """IoU / IoF / GIoU of xyxy boxes. Aligned: (n,4),(n,4) -> (n,); else (m,4),(n,4) -> (m,n).
    Areas are not corrected for inverted boxes; union and enclosing area are clamped at >= eps."""
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])
    if is_aligned:
        b1, b2, a1, a2 = boxes1, boxes2, area1, area2
    else:
        b1, b2 = boxes1[:, None, :], boxes2[None, :, :]
        a1, a2 = area1[:, None], area2[None, :]
    lt = torch.max(b1[..., :2], b2[..., :2])
    rb = torch.min(b1[..., 2:], b2[..., 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = a1 + a2 - overlap if mode in ("iou", "giou") else a1.expand_as(overlap)
    eps_t = union.new_tensor([eps])
    union = torch.max(union, eps_t)
    ious = overlap / union
    if mode in ("iou", "iof"):
        return ious
    enclosed_lt = torch.min(b1[..., :2], b2[..., :2])
    enclosed_rb = torch.max(b1[..., 2:], b2[..., 2:])
    enclose_wh = (enclosed_rb - enclosed_lt).clamp(min=0)
    enclose_area = torch.max(enclose_wh[..., 0] * enclose_wh[..., 1], eps_t)
    return ious - (enclose_area - union) / enclose_area


def distance2bbox(points, distance, max_shape=None):
    """Decode (x,y) + (l,t,r,b) -> (x-l, y-t, x+r, y+b); optional clamp to [0,W]x[0,H] of max_shape=(H,W)."""
    x1 = points[..., 0] - distance[..., 0]
    y1 = points[..., 1] - distance[..., 1]
    x2 = points[..., 0] + distance[..., 2]
    y2 = points[..., 1] + distance[..., 3]
    boxes = torch.stack([x1, y1, x2, y2], -1)
    if max_shape is not None:
        boxes[..., 0::2] = boxes[..., 0::2].clamp(min=0, max=max_shape[1])
        boxes[..., 1::2] = boxes[..., 1::2].clamp(min=0, max=max_shape[0])
    return boxes


def bbox2distance(points, boxes, max_dis, eps=0.1):
    """Encode boxes as distances from points, clamped to [0, max_dis - eps] (16 - 0.1 -> float32 15.9)."""
    left = points[..., 0] - boxes[..., 0]
    top = points[..., 1] - boxes[..., 1]
    right = boxes[..., 2] - points[..., 0]
    bottom = boxes[..., 3] - points[..., 1]
    dist = torch.stack([left, top, right, bottom], -1)
    return dist.clamp(min=0, max=max_dis - eps)


def integral(bbox_pred, project):
    """Distribution logits (..., 4*(reg_max+1)), side-major, -> expected distance per side (N, 4) in bins.
    project = linspace(0, reg_max, reg_max+1)."""
    n_bins = project.numel()
    prob = F.softmax(bbox_pred.reshape(-1, n_bins), dim=1)
    return F.linear(prob, project.type_as(prob)).reshape(-1, 4)


def anchor_center(anchors):
    """Midpoint of anchor boxes (N,4) -> (N,2); for GFL anchors this is (x*s, y*s)."""
    cx = (anchors[..., 2] + anchors[..., 0]) / 2
    cy = (anchors[..., 3] + anchors[..., 1]) / 2
    return torch.stack([cx, cy], dim=-1)


def bbox2delta(proposals, gt, means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0)):
    """mmdetection DeltaXYWHBBoxCoder.encode (delta_xywh_bbox_coder.bbox2delta): centre offsets in units of the prior's
    width/height and log size ratios, then (delta - means) / stds."""
    proposals = proposals.float()
    gt = gt.float()
    px = (proposals[..., 0] + proposals[..., 2]) * 0.5
    py = (proposals[..., 1] + proposals[..., 3]) * 0.5
    pw = proposals[..., 2] - proposals[..., 0]
    ph = proposals[..., 3] - proposals[..., 1]
    gx = (gt[..., 0] + gt[..., 2]) * 0.5
    gy = (gt[..., 1] + gt[..., 3]) * 0.5
    gw = gt[..., 2] - gt[..., 0]
    gh = gt[..., 3] - gt[..., 1]
    dx = (gx - px) / pw
    dy = (gy - py) / ph
    dw = torch.log(gw / pw)
    dh = torch.log(gh / ph)
    deltas = torch.stack([dx, dy, dw, dh], dim=-1)
    means = deltas.new_tensor(means).unsqueeze(0)
    stds = deltas.new_tensor(stds).unsqueeze(0)
    return deltas.sub_(means).div_(stds)


def delta2bbox(rois, deltas, means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0), max_shape=None,
               wh_ratio_clip=16 / 1000, clip_border=True):
    """mmdetection DeltaXYWHBBoxCoder.decode (delta2bbox, add_ctr_clamp False): denormalise, size ratios clamped to
    |log(wh_ratio_clip)|, boxes clipped to max_shape (H, W) when given."""
    import numpy as np
    num_bboxes, num_classes = deltas.size(0), deltas.size(1) // 4
    if num_bboxes == 0:
        return deltas
    deltas = deltas.reshape(-1, 4)
    means_t = deltas.new_tensor(means).view(1, -1)
    stds_t = deltas.new_tensor(stds).view(1, -1)
    denorm = deltas * stds_t + means_t
    dxy = denorm[:, :2]
    dwh = denorm[:, 2:]
    rois_ = rois.repeat(1, num_classes).reshape(-1, 4)
    pxy = (rois_[:, :2] + rois_[:, 2:]) * 0.5
    pwh = rois_[:, 2:] - rois_[:, :2]
    dxy_wh = pwh * dxy
    max_ratio = np.abs(np.log(wh_ratio_clip))
    dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    x1y1 = gxy - (gwh * 0.5)
    x2y2 = gxy + (gwh * 0.5)
    bboxes = torch.cat([x1y1, x2y2], dim=-1)
    if clip_border and max_shape is not None:
        bboxes[..., 0::2].clamp_(min=0, max=max_shape[1])
        bboxes[..., 1::2].clamp_(min=0, max=max_shape[0])
    return bboxes.reshape(num_bboxes, -1)


def centerness_target(anchors, gts):
    """mmdetection ATSSHead.centerness_target: sqrt(min(l, r)/max(l, r) * min(t, b)/max(t, b)) of the anchor centre's
    distances to the sides of its assigned gt."""
    anchors_cx = (anchors[:, 2] + anchors[:, 0]) / 2
    anchors_cy = (anchors[:, 3] + anchors[:, 1]) / 2
    l_ = anchors_cx - gts[:, 0]
    t_ = anchors_cy - gts[:, 1]
    r_ = gts[:, 2] - anchors_cx
    b_ = gts[:, 3] - anchors_cy
    left_right = torch.stack([l_, r_], dim=1)
    top_bottom = torch.stack([t_, b_], dim=1)
    return torch.sqrt((left_right.min(dim=-1)[0] / left_right.max(dim=-1)[0]) *
                      (top_bottom.min(dim=-1)[0] / top_bottom.max(dim=-1)[0]))
