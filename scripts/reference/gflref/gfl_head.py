"""GFLHead layers (gfl_spec 3.1-3.2): two towers of stacked 3x3 conv (no bias) + GroupNorm(32) + ReLU shared
across levels, gfl_cls (num_classes logits) and gfl_reg (4*(reg_max+1) distribution logits), a learnable
Scale per level multiplying the raw regression logits. Normal(0, 0.01) init, gfl_cls bias -log(99).
State-dict names as mmdetection: cls_convs.i.conv/gn, reg_convs.i.conv/gn, gfl_cls, gfl_reg, scales.i.scale,
integral.project."""
import math

import torch
import torch.nn as nn


class ConvGnRelu(nn.Module):
    """mmcv ConvModule(conv 3x3 bias=False, norm GN, act ReLU): children `.conv` and `.gn`."""

    def __init__(self, in_ch, out_ch, num_groups=32):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.gn = nn.GroupNorm(num_groups, out_ch)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.conv(x)
        # GroupNorm in float32 under autocast (CUDA autocast does this itself; CPU bf16 autocast in torch 1.13
        # would pass a bf16 input with float32 affine parameters and fail).
        if x.dtype != self.gn.weight.dtype:
            x = x.to(self.gn.weight.dtype)
        return self.activate(self.gn(x))


class Scale(nn.Module):
    """mmcv Scale: one learnable scalar, init 1."""

    def __init__(self, value=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(value, dtype=torch.float32))

    def forward(self, x):
        return x * self.scale


class Integral(nn.Module):
    """Holds the projection vector linspace(0, reg_max, reg_max+1) (a persistent buffer in mmdetection)."""

    def __init__(self, reg_max=16):
        super().__init__()
        self.register_buffer("project", torch.linspace(0, reg_max, reg_max + 1))


class GflHead(nn.Module):
    def __init__(self, num_classes, in_channels=256, feat_channels=256, stacked_convs=4, reg_max=16,
                 num_levels=5, num_groups=32, prior_prob=0.01):
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for i in range(stacked_convs):
            ch = in_channels if i == 0 else feat_channels
            self.cls_convs.append(ConvGnRelu(ch, feat_channels, num_groups))
            self.reg_convs.append(ConvGnRelu(ch, feat_channels, num_groups))
        self.gfl_cls = nn.Conv2d(feat_channels, num_classes, 3, padding=1)
        self.gfl_reg = nn.Conv2d(feat_channels, 4 * (reg_max + 1), 3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
        self.integral = Integral(reg_max)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.gfl_cls.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, feats):
        """feats: P3..P7 -> (cls_scores[l] (N,C,h,w), bbox_preds[l] (N,4*(reg_max+1),h,w) float32)."""
        cls_scores, bbox_preds = [], []
        for x, scale in zip(feats, self.scales):
            cls_feat, reg_feat = x, x
            for conv in self.cls_convs:
                cls_feat = conv(cls_feat)
            for conv in self.reg_convs:
                reg_feat = conv(reg_feat)
            cls_scores.append(self.gfl_cls(cls_feat))
            bbox_preds.append(scale(self.gfl_reg(reg_feat)).float())
        return cls_scores, bbox_preds
