"""GFL detector = ResNet backbone + FPN neck + GFL head (or the ATSS or RetinaNet head of the GFL paper's baselines); state-dict
prefixes backbone., neck., bbox_head."""
import torch
import torch.nn as nn

from .fpn import FPN
from .atss_head import AtssHead
from .gfl_head import GflHead
from .retina import RetinaHead
from .resnet import ResNetBackbone


class GflDetector(nn.Module):
    def __init__(self, num_classes=80, depth=50, fpn_channels=256, feat_channels=256, stacked_convs=4,
                 reg_max=16, frozen_stages=1, norm_eval=True, zero_init_residual=True, head="gfl"):
        super().__init__()
        self.backbone = ResNetBackbone(depth, frozen_stages, norm_eval, zero_init_residual)
        # RetinaNet's FPN builds P6 from C5 (add_extra_convs='on_input'); GFL's and ATSS's from P5.
        self.neck = FPN(self.backbone.out_channels[1:], fpn_channels, num_outs=5, on_input=head == "retinanet")
        self.head_type = head
        if head == "atss":
            self.bbox_head = AtssHead(num_classes, fpn_channels, feat_channels, stacked_convs)
        elif head == "retinanet":
            self.bbox_head = RetinaHead(num_classes, fpn_channels, feat_channels, stacked_convs)
        elif head == "gfl":
            self.bbox_head = GflHead(num_classes, fpn_channels, feat_channels, stacked_convs, reg_max)
        else:
            raise ValueError(f"unknown head {head!r}: gfl, atss or retinanet")

    def forward(self, images):
        """images (N,3,H,W) normalised, H and W multiples of 32 -> per-level (cls_scores, bbox_preds) for GFL,
        (cls_scores, bbox_preds, centernesses) for ATSS."""
        c2, c3, c4, c5 = self.backbone(images)
        return self.bbox_head(self.neck([c3, c4, c5]))

    def load_backbone(self, path):
        """Load a torchvision ResNet state dict (fc.* ignored, non-strict as mmengine's Pretrained init)."""
        state = torch.load(path, map_location="cpu")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        return self.backbone.load_state_dict(state, strict=False)


def num_parameters(module):
    return sum(p.numel() for p in module.parameters())
