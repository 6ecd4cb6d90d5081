"""RetinaNet (Lin et al. 2017) as mmdetection 3.x configures it in retinanet_r50_fpn_1x_coco, transcribed from its
logic: AnchorGenerator(octave_base_scale 4, scales_per_octave 3, ratios 0.5/1/2, strides 8..128, center_offset 0),
RetinaHead (4+4 conv3x3-with-bias + ReLU towers, no norm; retina_cls A*C, retina_reg A*4; Normal(0, 0.01), cls bias
-log(99)), AnchorHead.get_targets with MaxIoUAssigner(0.5, 0.4, 0) and PseudoSampler (allowed_border -1, pos_weight
-1), AnchorHead.loss_by_feat (FocalLoss on all anchors, L1Loss on the encoded deltas with bbox_weights, both over
avg_factor = sum_i max(num_pos_i, 1), no reduce_mean), and BaseDenseHead._predict_by_feat_single (pairs above
score_thr, nms_pre best per level, DeltaXYWH decode clipped to the image, rescale, NMS 0.5)."""
import math

import torch
import torch.nn as nn
from .anchors import level_valid_flags
from .box_ops import bbox2delta, delta2bbox
from .losses import giou_loss, sigmoid_focal_loss, weight_reduce
from .max_iou_assigner import max_iou_assign
from .postprocess import Detections, TestConfig, batched_nms

STRIDES = (8, 16, 32, 64, 128)
RATIOS = (0.5, 1.0, 2.0)


def base_anchors(stride, octave_base_scale=4, scales_per_octave=3, ratios=RATIOS):
    """mmdetection AnchorGenerator.gen_single_level_base_anchors (scale_major): (A, 4), ratio-major."""
    scales = torch.tensor([2 ** (i / scales_per_octave) * octave_base_scale for i in range(scales_per_octave)])
    ratios = torch.tensor(ratios)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (stride * w_ratios[:, None] * scales[None, :]).view(-1)
    hs = (stride * h_ratios[:, None] * scales[None, :]).view(-1)
    return torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=-1)


def level_anchors(featmap_size, stride, device="cpu", **kw):
    """(h*w*A, 4): base anchors + shifts (x*s, y*s), locations row-major, the A anchors of a location together."""
    h, w = featmap_size
    base = base_anchors(stride, **kw).to(device)
    sx = torch.arange(0, w, device=device).float() * stride
    sy = torch.arange(0, h, device=device).float() * stride
    xx = sx.repeat(h)
    yy = sy.view(-1, 1).repeat(1, w).view(-1)
    shifts = torch.stack([xx, yy, xx, yy], dim=-1)
    return (base[None, :, :] + shifts[:, None, :]).view(-1, 4)


class ConvRelu(nn.Module):
    """mmcv ConvModule(conv 3x3 with bias, norm_cfg None, act ReLU): child `.conv`."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=True)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.activate(self.conv(x))


class RetinaHead(nn.Module):
    def __init__(self, num_classes, in_channels=256, feat_channels=256, stacked_convs=4, num_anchors=9, prior_prob=0.01):
        super().__init__()
        self.num_classes = num_classes
        self.num_anchors = num_anchors
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        ch = in_channels
        for _ in range(stacked_convs):
            self.cls_convs.append(ConvRelu(ch, feat_channels))
            self.reg_convs.append(ConvRelu(ch, feat_channels))
            ch = feat_channels
        self.retina_cls = nn.Conv2d(ch, num_anchors * num_classes, 3, padding=1)
        self.retina_reg = nn.Conv2d(ch, num_anchors * 4, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.retina_cls.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, feats):
        cls_scores, bbox_preds = [], []
        for x in feats:
            cls_feat, reg_feat = x, x
            for conv in self.cls_convs:
                cls_feat = conv(cls_feat)
            for conv in self.reg_convs:
                reg_feat = conv(reg_feat)
            cls_scores.append(self.retina_cls(cls_feat))
            bbox_preds.append(self.retina_reg(reg_feat))
        return cls_scores, bbox_preds


class RetinaLoss:
    """Callable: loss(cls_scores, bbox_preds, gt_bboxes, gt_labels, pad_shapes) -> dict of per-level loss_cls and
    loss_bbox; `trace` receives the targets and avg_factor. giou=True: reg_decoded_bbox with GIoULoss(weight 2)."""

    def __init__(self, num_classes, strides=STRIDES, pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0.0, gamma=2.0,
                 alpha=0.25, cls_weight=1.0, bbox_weight=1.0, giou=False):
        self.num_classes, self.strides = num_classes, strides
        self.thr = (pos_iou_thr, neg_iou_thr, min_pos_iou)
        self.gamma, self.alpha, self.cls_weight, self.bbox_weight, self.giou = gamma, alpha, cls_weight, bbox_weight, giou

    def targets(self, featmap_sizes, pad_shapes, gt_bboxes, gt_labels, device):
        mlvl = [level_anchors(size, s, device) for size, s in zip(featmap_sizes, self.strides)]
        num_level_anchors = [a.size(0) for a in mlvl]
        anchors = torch.cat(mlvl)
        n = anchors.size(0)
        batch = len(pad_shapes)
        labels = torch.full((batch, n), self.num_classes, dtype=torch.long, device=device)
        label_weights = anchors.new_zeros(batch, n)
        bbox_targets = anchors.new_zeros(batch, n, 4)      # encoded deltas, or gt boxes with giou
        bbox_weights = anchors.new_zeros(batch, n, 4)
        gt_boxes_full = anchors.new_zeros(batch, n, 4)
        num_pos = []
        for i in range(batch):
            # valid_flags: each location's flag repeated for its A anchors; allowed_border -1 keeps them all.
            valid = torch.cat([level_valid_flags(size, s, pad_shapes[i], device).repeat_interleave(9)
                               for size, s in zip(featmap_sizes, self.strides)])
            inside = valid.nonzero().squeeze(1)
            gtb = gt_bboxes[i].to(device=device, dtype=torch.float32).reshape(-1, 4)
            gtl = gt_labels[i].to(device=device, dtype=torch.long).reshape(-1)
            gt_inds, _, assigned_labels = max_iou_assign(anchors[inside], gtb, gtl, *self.thr)
            pos = (gt_inds > 0).nonzero().squeeze(1)
            neg = (gt_inds == 0).nonzero().squeeze(1)
            if pos.numel() > 0:
                pos_gt = gtb[gt_inds[pos] - 1]
                bbox_targets[i, inside[pos]] = pos_gt if self.giou else bbox2delta(anchors[inside[pos]], pos_gt)
                gt_boxes_full[i, inside[pos]] = pos_gt
                bbox_weights[i, inside[pos]] = 1.0
                labels[i, inside[pos]] = assigned_labels[pos]
                label_weights[i, inside[pos]] = 1.0
            if neg.numel() > 0:
                label_weights[i, inside[neg]] = 1.0
            num_pos.append(int(pos.numel()))
        return dict(anchors=anchors, num_level_anchors=num_level_anchors, labels=labels, label_weights=label_weights,
                    bbox_targets=bbox_targets, bbox_weights=bbox_weights, gt_boxes=gt_boxes_full, num_pos=num_pos)

    def __call__(self, cls_scores, bbox_preds, gt_bboxes, gt_labels, pad_shapes, trace=None):
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        device = cls_scores[0].device
        tg = self.targets(featmap_sizes, pad_shapes, gt_bboxes, gt_labels, device)
        batch = len(pad_shapes)
        avg_factor = float(sum(max(n, 1) for n in tg["num_pos"]))
        losses_cls, losses_bbox = [], []
        start = 0
        for level, (cls_score, bbox_pred) in enumerate(zip(cls_scores, bbox_preds)):
            n_l = tg["num_level_anchors"][level]
            sl = slice(start, start + n_l)
            start += n_l
            labels = tg["labels"][:, sl].reshape(-1)
            label_weights = tg["label_weights"][:, sl].reshape(-1)
            cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.num_classes)
            losses_cls.append(sigmoid_focal_loss(cls_score, labels, label_weights, avg_factor, self.gamma, self.alpha,
                                                 self.cls_weight))
            bbox_targets = tg["bbox_targets"][:, sl].reshape(-1, 4)
            bbox_weights = tg["bbox_weights"][:, sl].reshape(-1, 4)
            bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4)
            if self.giou:
                anchors = tg["anchors"][sl].repeat(batch, 1)
                decoded = delta2bbox(anchors, bbox_pred)
                losses_bbox.append(giou_loss(decoded, bbox_targets, bbox_weights, avg_factor, loss_weight=2.0))
            else:
                # mmdetection L1Loss: |pred - target| * weight, summed over all rows, / (avg_factor + eps).
                losses_bbox.append(self.bbox_weight * weight_reduce((bbox_pred - bbox_targets).abs(), bbox_weights,
                                                                    avg_factor))
        if trace is not None:
            trace.update(targets=tg, avg_factor=avg_factor)
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox)


def predict_single_retina(cls_scores, bbox_preds, img_shape, scale_factor, cfg=TestConfig(iou_threshold=0.5),
                          strides=STRIDES):
    """One image: cls_scores[l] (A*C, h, w), bbox_preds[l] (A*4, h, w). Returns (Detections, pre-NMS Detections)."""
    device = cls_scores[0].device
    num_anchors = 9
    num_classes = cls_scores[0].size(0) // num_anchors
    mlvl_boxes, mlvl_scores, mlvl_labels = [], [], []
    for cls_score, bbox_pred, stride in zip(cls_scores, bbox_preds, strides):
        h, w = cls_score.shape[-2:]
        bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
        scores = cls_score.permute(1, 2, 0).reshape(-1, num_classes).sigmoid()
        valid_mask = scores > cfg.score_thr
        kept_scores = scores[valid_mask]
        valid_idxs = torch.nonzero(valid_mask)
        num_topk = min(cfg.nms_pre, valid_idxs.size(0))
        kept_scores, idxs = kept_scores.sort(descending=True)
        kept_scores = kept_scores[:num_topk]
        keep_idxs, labels = valid_idxs[idxs[:num_topk]].unbind(dim=1)
        priors = level_anchors((h, w), stride, device)[keep_idxs]
        mlvl_boxes.append(delta2bbox(priors, bbox_pred[keep_idxs], max_shape=img_shape))
        mlvl_scores.append(kept_scores)
        mlvl_labels.append(labels)
    boxes = torch.cat(mlvl_boxes)
    boxes = boxes * boxes.new_tensor([1 / scale_factor[0], 1 / scale_factor[1]]).repeat(2)
    scores = torch.cat(mlvl_scores)
    labels = torch.cat(mlvl_labels)
    pre_nms = Detections(boxes, scores, labels)
    if cfg.min_bbox_size >= 0:
        keep = ((boxes[:, 2] - boxes[:, 0]) > cfg.min_bbox_size) & ((boxes[:, 3] - boxes[:, 1]) > cfg.min_bbox_size)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = batched_nms(boxes, scores, labels, cfg.iou_threshold)[:cfg.max_per_img]
    return Detections(boxes[keep], scores[keep], labels[keep]), pre_nms
