"""mmdetection AnchorGenerator for GFL: one square anchor of side 8*stride per cell, centred on the cell's
top-left corner (center_offset 0), plus the per-image valid flags (gfl_spec 3.3)."""
import math

import torch


def level_anchors(featmap_size, stride, octave_base_scale=8.0, device="cpu"):
    """Anchors of one level, (h*w, 4) xyxy float32, row-major (index = y*w + x)."""
    h, w = featmap_size
    # Base anchor of cell (0,0): base_size = stride, centre 0, side = stride * octave_base_scale * ratio 1.
    half = 0.5 * (stride * octave_base_scale)
    base = torch.tensor([-half, -half, half, half], dtype=torch.float32, device=device)
    shift_x = torch.arange(w, device=device, dtype=torch.float32) * stride
    shift_y = torch.arange(h, device=device, dtype=torch.float32) * stride
    xx = shift_x.repeat(h)                          # x varies fastest
    yy = shift_y.view(-1, 1).repeat(1, w).view(-1)
    shifts = torch.stack([xx, yy, xx, yy], dim=1)
    return base[None, :] + shifts


def grid_anchors(featmap_sizes, strides, device="cpu"):
    """List of per-level anchors (n_l, 4)."""
    return [level_anchors(size, s, device=device) for size, s in zip(featmap_sizes, strides)]


def level_valid_flags(featmap_size, stride, pad_shape, device="cpu"):
    """(h*w,) bool: cells inside this image's own padded shape, min(ceil(pad/stride), feat) rows/cols."""
    h, w = featmap_size
    valid_h = min(int(math.ceil(pad_shape[0] / stride)), h)
    valid_w = min(int(math.ceil(pad_shape[1] / stride)), w)
    valid_x = torch.zeros(w, dtype=torch.bool, device=device)
    valid_y = torch.zeros(h, dtype=torch.bool, device=device)
    valid_x[:valid_w] = True
    valid_y[:valid_h] = True
    return (valid_y.view(-1, 1) & valid_x.view(1, -1)).reshape(-1)


def valid_flags(featmap_sizes, strides, pad_shape, device="cpu"):
    """List of per-level valid flags for one image."""
    return [level_valid_flags(size, s, pad_shape, device) for size, s in zip(featmap_sizes, strides)]
