"""One SGD step and the inference loop, shared by train.py and bench.py. The lr schedule is a pure function of
the iteration (mmengine LinearLR warm-up from factor 0.001 + MultiStepLR by epoch, gfl_spec 6.1)."""
import contextlib

import torch

from .gfl_loss import total_loss
from .postprocess import TestConfig, predict_single, predict_single_atss
from .retina import predict_single_retina


def lr_at(base_lr, iteration, epoch, warmup_iters=500, warmup_ratio=0.001, steps=(8, 11), gamma=0.1):
    """iteration: 0-based global iteration about to run; epoch: 0-based epoch it belongs to."""
    lr = base_lr * gamma ** sum(1 for s in steps if epoch >= s)
    if iteration < warmup_iters:
        lr *= warmup_ratio + (1 - warmup_ratio) * iteration / warmup_iters
    return lr


def make_optimizer(model, lr, momentum=0.9, weight_decay=1e-4):
    """SGD on every trainable parameter (frozen ones are left out), weight decay on all of them."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def autocast(device, enabled):
    """torch.autocast for the device: float16 on CUDA, bfloat16 on CPU; a no-op when disabled."""
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def pad_shapes(batch):
    return [m.pad_shape for m in batch.metas]


def train_step(model, loss_fn, optimizer, batch, device, amp=False, scaler=None):
    """Forward, loss (always float32, outside autocast), backward, SGD step. Returns dict of python floats."""
    images = batch.images.to(device, non_blocking=True)
    with autocast(device, amp):
        outputs = model(images)   # GFL: cls, bbox; ATSS: cls, bbox, centerness
    losses = loss_fn(*outputs, batch.gt_bboxes, batch.gt_labels, pad_shapes(batch))
    loss = total_loss(losses)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    out = {k: float(sum(v).detach()) for k, v in losses.items()}
    out["loss"] = float(loss.detach())
    return out


@torch.no_grad()
def detect(model, batch, device, cfg=TestConfig(), amp=False, strides=(8, 16, 32, 64, 128)):
    """Forward + post-processing; returns one Detections per image (original-image pixels)."""
    images = batch.images.to(device, non_blocking=True)
    with autocast(device, amp):
        outputs = model(images)
    results = []
    for i, meta in enumerate(batch.metas):
        per_image = [[t[i] for t in level_maps] for level_maps in outputs]
        if model.head_type == "retinanet":
            dets, _ = predict_single_retina(*per_image, meta.img_shape, meta.scale_factor,
                                            TestConfig(cfg.nms_pre, cfg.min_bbox_size, cfg.score_thr, 0.5, cfg.max_per_img), strides)
        elif model.head_type == "atss":
            dets, _ = predict_single_atss(*per_image, meta.img_shape, meta.scale_factor, cfg, strides)
        else:
            dets = predict_single(*per_image, meta.img_shape, meta.scale_factor, cfg, strides, model.bbox_head.reg_max)
        results.append(dets)
    return results
