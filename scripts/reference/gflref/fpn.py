"""FPN neck of gfl_r50_fpn_1x_coco (gfl_spec 2): laterals from C3..C5, nearest top-down merge (size=), 3x3
outputs P3..P5, then P6 = 3x3/s2 conv on P5's output (on C5 for RetinaNet's 'on_input') and P7 = 3x3/s2 conv on P6
(no ReLU between).
Xavier-uniform init, zero bias. Each conv sits in a `.conv` child so the state dict reads
neck.lateral_convs.i.conv.weight as mmcv's ConvModule names it."""
import torch.nn as nn
import torch.nn.functional as F


class ConvModule(nn.Module):
    """mmcv ConvModule without norm/activation: just `.conv`."""

    def __init__(self, in_ch, out_ch, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=True)

    def forward(self, x):
        return self.conv(x)


class FPN(nn.Module):
    def __init__(self, in_channels, out_channels=256, num_outs=5, on_input=False):
        """in_channels: channels of C3, C4, C5 (start_level 1 of the backbone's four outputs). on_input: the first
        extra conv reads C5 (RetinaNet's add_extra_convs='on_input') instead of P5's output."""
        super().__init__()
        self.on_input = on_input
        self.lateral_convs = nn.ModuleList(ConvModule(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(ConvModule(out_channels, out_channels, 3, padding=1) for _ in in_channels)
        for i in range(num_outs - len(in_channels)):
            extra_in = in_channels[-1] if i == 0 and on_input else out_channels
            self.fpn_convs.append(ConvModule(extra_in, out_channels, 3, stride=2, padding=1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=1)
                nn.init.zeros_(m.bias)

    def forward(self, inputs):
        """inputs: C3, C4, C5 -> P3..P7."""
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:],
                                                              mode="nearest")
        outs = [self.fpn_convs[i](laterals[i]) for i in range(len(laterals))]
        for i in range(len(laterals), len(self.fpn_convs)):
            outs.append(self.fpn_convs[i](inputs[-1] if i == len(laterals) and self.on_input else outs[-1]))
        return outs
