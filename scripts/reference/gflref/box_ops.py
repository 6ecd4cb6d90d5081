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
