"""GFL's three losses as mmdetection defines them (gfl_spec 5.2-5.4), each an element-wise function plus
mmdetection's weight_reduce_loss: sum(loss * weight) / (avg_factor + float32 eps)."""
import torch
import torch.nn.functional as F

from .box_ops import bbox_overlaps

FLOAT32_EPS = float(torch.finfo(torch.float32).eps)


def weight_reduce(loss, weight=None, avg_factor=None):
    """mmdetection weight_reduce_loss with reduction 'mean': plain mean without avg_factor,
    else sum / (avg_factor + eps) (eps = float32 machine epsilon, added in Python double)."""
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        return loss.mean()
    return loss.sum() / (avg_factor + FLOAT32_EPS)


def quality_focal_loss_elementwise(logits, labels, quality, beta=2.0):
    """QFL (N, C): BCEWithLogits(z, t) * |t - sigmoid(z)|^beta with t = quality on the label column of
    foreground rows (labels in [0, C)), else 0. The modulating factor keeps its gradient."""
    sigma = logits.sigmoid()
    # Negative formula everywhere, then the positive (row, label) entries are replaced: the replaced
    # entries contribute no gradient from the negative formula, as in mmdet's in-place overwrite.
    loss = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none") * sigma.pow(beta)
    num_classes = logits.size(1)
    pos = ((labels >= 0) & (labels < num_classes)).nonzero().squeeze(1)
    if pos.numel() > 0:
        pos_label = labels[pos].long()
        z = logits[pos, pos_label]
        t = quality[pos].to(z.dtype)
        pos_loss = F.binary_cross_entropy_with_logits(z, t, reduction="none") * (t - sigma[pos, pos_label]).abs().pow(beta)
        loss = loss.index_put((pos, pos_label), pos_loss)
    return loss


def quality_focal_loss(logits, labels, quality, weight=None, avg_factor=None, beta=2.0, loss_weight=1.0):
    """Reduced QFL: per-sample sum over classes, weighted, normalised."""
    per_sample = quality_focal_loss_elementwise(logits, labels, quality, beta).sum(dim=1)
    return loss_weight * weight_reduce(per_sample, weight, avg_factor)


def distribution_focal_loss_elementwise(logits, target):
    """DFL (N,): for continuous target y in [0, reg_max): (floor(y)+1-y)*CE(floor(y)) + (y-floor(y))*CE(floor(y)+1)."""
    left = target.long()               # truncation = floor for y >= 0
    right = left + 1
    w_left = right.float() - target
    w_right = target - left.float()
    return (F.cross_entropy(logits, left, reduction="none") * w_left
            + F.cross_entropy(logits, right, reduction="none") * w_right)


def distribution_focal_loss(logits, target, weight=None, avg_factor=None, loss_weight=0.25):
    """Reduced DFL."""
    return loss_weight * weight_reduce(distribution_focal_loss_elementwise(logits, target), weight, avg_factor)


def giou_loss_elementwise(pred, target, eps=1e-6):
    """1 - GIoU for aligned box pairs (n,)."""
    return 1 - bbox_overlaps(pred, target, mode="giou", is_aligned=True, eps=eps)


def giou_loss(pred, target, weight=None, avg_factor=None, eps=1e-6, loss_weight=2.0):
    """mmdetection GIoULoss.forward: returns (pred*weight).sum() (= 0) when no weight is > 0;
    (n,4) weights are averaged over the last dim."""
    if weight is not None and not torch.any(weight > 0):
        if pred.dim() == weight.dim() + 1:
            weight = weight.unsqueeze(1)
        return (pred * weight).sum()
    if weight is not None and weight.dim() > 1:
        weight = weight.mean(-1)
    return loss_weight * weight_reduce(giou_loss_elementwise(pred, target, eps), weight, avg_factor)


def sigmoid_focal_loss_elementwise(logits, labels, gamma=2.0, alpha=0.25):
    """Focal Loss (Lin et al. 2017) with a sigmoid per class, as mmdetection's py_sigmoid_focal_loss computes it
    (mmdet/models/losses/focal_loss.py; the mmcv CUDA op gives the same values): one-hot targets over num_classes + 1
    columns with the background column dropped, pt = (1 - p) t + p (1 - t),
    focal_weight = (alpha t + (1 - alpha)(1 - t)) pt^gamma, loss = BCEWithLogits(z, t) * focal_weight. (N, C)."""
    num_classes = logits.size(1)
    target = F.one_hot(labels.long(), num_classes=num_classes + 1)[:, :num_classes].type_as(logits)
    pred_sigmoid = logits.sigmoid()
    pt = (1 - pred_sigmoid) * target + pred_sigmoid * (1 - target)
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none") * focal_weight


def sigmoid_focal_loss(logits, labels, weight=None, avg_factor=None, gamma=2.0, alpha=0.25, loss_weight=1.0):
    """mmdetection FocalLoss(use_sigmoid=True).forward with reduction 'mean': a per-row weight (N,) is broadcast over
    the classes (weight.view(-1, 1)), then weight_reduce_loss."""
    loss = sigmoid_focal_loss_elementwise(logits, labels, gamma, alpha)
    if weight is not None:
        weight = weight.view(-1, 1)
    return loss_weight * weight_reduce(loss, weight, avg_factor)
