"""GFL detector = ResNet backbone + FPN neck + GFL head; state-dict prefixes backbone., neck., bbox_head."""
import torch
import torch.nn as nn

from .fpn import FPN
from .gfl_head import GflHead
from .resnet import ResNetBackbone


class GflDetector(nn.Module):
    def __init__(self, num_classes=80, depth=50, fpn_channels=256, feat_channels=256, stacked_convs=4,
                 reg_max=16, frozen_stages=1, norm_eval=True, zero_init_residual=True):
        super().__init__()
        self.backbone = ResNetBackbone(depth, frozen_stages, norm_eval, zero_init_residual)
        self.neck = FPN(self.backbone.out_channels[1:], fpn_channels, num_outs=5)
        self.bbox_head = GflHead(num_classes, fpn_channels, feat_channels, stacked_convs, reg_max)

    def forward(self, images):
        """images (N,3,H,W) normalised, H and W multiples of 32 -> per-level (cls_scores, bbox_preds)."""
        c2, c3, c4, c5 = self.backbone(images)
        return self.bbox_head(self.neck([c3, c4, c5]))

    def load_backbone(self, path):
        """Load a torchvision ResNet state dict (fc.* ignored, non-strict as mmengine's Pretrained init)."""
        state = torch.load(path, map_location="cpu")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        return self.backbone.load_state_dict(state, strict=False)


def num_parameters(module):
    return sum(p.numel() for p in module.parameters())
