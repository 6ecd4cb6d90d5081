"""Image pipeline of gfl_r50_fpn_1x_coco (gfl_spec 6.2): cv2 decode (BGR), keep-ratio resize to fit
(1333, 800) with mmcv's int(w*f + 0.5) rounding and INTER_LINEAR, horizontal flip, and in collation BGR->RGB,
normalisation with ImageNet mean/std and zero padding to multiples of 32."""
import math
import random
from dataclasses import dataclass

import cv2
import numpy as np
import torch

MEAN_RGB = (123.675, 116.28, 103.53)
STD_RGB = (58.395, 57.12, 57.375)


@dataclass
class ImageMeta:
    image_id: int
    ori_shape: tuple     # (H, W) of the file
    img_shape: tuple     # (H, W) after resize, before padding
    pad_shape: tuple     # this image's own shape padded to a multiple of 32
    scale_factor: tuple  # (w_scale, h_scale) = resized / original
    flip: bool


def rescale_size(w, h, scale):
    """mmcv rescale_size with keep_ratio: f = min(long/long_side, short/short_side); int(x*f + 0.5)."""
    long_edge, short_edge = max(scale), min(scale)
    f = min(long_edge / max(h, w), short_edge / min(h, w))
    return int(w * float(f) + 0.5), int(h * float(f) + 0.5)


def resize(img, bboxes, scale):
    """Returns resized image, boxes scaled by (new_w/w, new_h/h) and clipped to the new image, scale factor."""
    h, w = img.shape[:2]
    new_w, new_h = rescale_size(w, h, scale)
    out = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    w_scale, h_scale = new_w / w, new_h / h
    boxes = bboxes * np.array([w_scale, h_scale, w_scale, h_scale], dtype=np.float32)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, new_w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, new_h)
    return out, boxes, (w_scale, h_scale)


def hflip(img, bboxes):
    w = img.shape[1]
    flipped = bboxes.copy()
    flipped[:, 0] = w - bboxes[:, 2]
    flipped[:, 2] = w - bboxes[:, 0]
    return np.ascontiguousarray(img[:, ::-1]), flipped


def pad_to(size, divisor=32):
    return int(math.ceil(size / divisor)) * divisor


class DetectionTransform:
    """Decode + resize (+ flip) one record; returns (uint8 BGR HWC image, boxes, labels, meta)."""

    def __init__(self, img_scale=(1333, 800), flip_prob=0.0):
        self.img_scale = img_scale
        self.flip_prob = flip_prob

    def __call__(self, record):
        img = cv2.imread(record.path, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(record.path)
        ori_h, ori_w = img.shape[:2]
        img, boxes, scale_factor = resize(img, record.bboxes.copy(), self.img_scale)
        flip = self.flip_prob > 0 and random.random() < self.flip_prob
        if flip:
            img, boxes = hflip(img, boxes)
        h, w = img.shape[:2]
        meta = ImageMeta(record.image_id, (ori_h, ori_w), (h, w), (pad_to(h), pad_to(w)), scale_factor, flip)
        return img, boxes, record.labels.copy(), meta


@dataclass
class Batch:
    images: torch.Tensor   # (B, 3, H, W) float32 normalised RGB, zero padded to the batch max (multiples of 32)
    gt_bboxes: list        # (k_i, 4) float32 tensors
    gt_labels: list        # (k_i,) int64 tensors
    metas: list            # ImageMeta

    def pin_memory(self):
        self.images = self.images.pin_memory()
        return self


def collate(samples):
    """Normalise (BGR->RGB, (x - mean) / std) and pad bottom/right with 0 after normalisation."""
    metas = [s[3] for s in samples]
    height = max(m.pad_shape[0] for m in metas)
    width = max(m.pad_shape[1] for m in metas)
    images = torch.zeros(len(samples), 3, height, width, dtype=torch.float32)
    mean = torch.tensor(MEAN_RGB).view(3, 1, 1)
    std = torch.tensor(STD_RGB).view(3, 1, 1)
    for i, (img, _, _, meta) in enumerate(samples):
        h, w = meta.img_shape
        chw = torch.from_numpy(img).permute(2, 0, 1).flip(0)   # BGR -> RGB
        images[i, :, :h, :w] = (chw.float() - mean) / std
    return Batch(images, [torch.from_numpy(s[1]) for s in samples], [torch.from_numpy(s[2]) for s in samples], metas)
