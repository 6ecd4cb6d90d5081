"""Plain-PyTorch reference implementation of mmdetection's gfl_r50_fpn_1x_coco (no mmdet, no mmcv).

Behaviour follows mmdetection v3.3.0 as restated in shared/research/gfl_spec.md and
gfl_reference_notes.md; `python3 -m gflref.selfcheck` verifies it against shared/fixtures/gfl.
"""

STRIDES = (8, 16, 32, 64, 128)
"""FPN levels P3..P7."""
