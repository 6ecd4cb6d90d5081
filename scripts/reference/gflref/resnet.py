"""ResNet backbone (mmdetection ResNet, style 'pytorch' = torchvision v1.5) built from torchvision's blocks so the
parameter names are torchvision's (conv1, bn1, layer1.0.conv1, ..., layer1.0.downsample.0/1) and an ImageNet
state dict loads 1:1. frozen_stages and norm_eval behave as in mmdetection (gfl_spec 1)."""
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

ARCH = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
        50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3])}


class ResNetBackbone(nn.Module):
    """Returns C2..C5. frozen_stages=1: stem and layer1 frozen and kept in eval mode; norm_eval=True: every
    BatchNorm stays in eval mode during training (running stats never updated, affine still trained)."""

    def __init__(self, depth=50, frozen_stages=1, norm_eval=True, zero_init_residual=True):
        super().__init__()
        block, layers = ARCH[depth]
        # torchvision initialises conv kaiming_normal(fan_out, relu) and BN (1, 0), and with zero_init_residual the
        # last BN of each block at weight 0: mmdetection's ResNet init without weights (zero_init_residual=True is
        # its default, mmdet/models/backbones/resnet.py; torchvision's default is False).
        tv = ResNet(block, layers, zero_init_residual=zero_init_residual)
        self.conv1, self.bn1, self.relu, self.maxpool = tv.conv1, tv.bn1, tv.relu, tv.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = tv.layer1, tv.layer2, tv.layer3, tv.layer4
        expansion = block.expansion
        self.out_channels = [64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self._freeze_stages()

    def _freeze_stages(self):
        frozen = []
        if self.frozen_stages >= 0:
            frozen += [self.conv1, self.bn1]
        frozen += [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return c2, c3, c4, c5
