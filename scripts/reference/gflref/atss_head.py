"""ATSSHead layers (Zhang et al. 2020; mmdetection ATSSHead): the two GN towers of the GFL head, then atss_cls
(num_classes logits), atss_reg (4 DeltaXYWH deltas times the level's Scale) and atss_centerness (1 logit), both on
the regression tower. Normal(0, 0.01) init, atss_cls bias -log((1-p)/p). State-dict names as mmdetection:
cls_convs.i.conv/gn, reg_convs.i.conv/gn, atss_cls, atss_reg, atss_centerness, scales.i.scale."""
import math

import torch.nn as nn

from .gfl_head import ConvGnRelu, Scale


class AtssHead(nn.Module):
    def __init__(self, num_classes, in_channels=256, feat_channels=256, stacked_convs=4, num_levels=5, num_groups=32,
                 prior_prob=0.01):
        super().__init__()
        self.num_classes = num_classes
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for i in range(stacked_convs):
            ch = in_channels if i == 0 else feat_channels
            self.cls_convs.append(ConvGnRelu(ch, feat_channels, num_groups))
            self.reg_convs.append(ConvGnRelu(ch, feat_channels, num_groups))
        self.atss_cls = nn.Conv2d(feat_channels, num_classes, 3, padding=1)
        self.atss_reg = nn.Conv2d(feat_channels, 4, 3, padding=1)
        self.atss_centerness = nn.Conv2d(feat_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.atss_cls.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, feats):
        """feats: P3..P7 -> (cls_scores[l] (N,C,h,w), bbox_preds[l] (N,4,h,w) float32, centernesses[l] (N,1,h,w))."""
        cls_scores, bbox_preds, centernesses = [], [], []
        for x, scale in zip(feats, self.scales):
            cls_feat, reg_feat = x, x
            for conv in self.cls_convs:
                cls_feat = conv(cls_feat)
            for conv in self.reg_convs:
                reg_feat = conv(reg_feat)
            cls_scores.append(self.atss_cls(cls_feat))
            # mmdetection: bbox_pred = scale(self.atss_reg(reg_feat)).float()
            bbox_preds.append(scale(self.atss_reg(reg_feat)).float())
            centernesses.append(self.atss_centerness(reg_feat))
        return cls_scores, bbox_preds, centernesses
