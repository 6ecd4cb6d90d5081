#!/usr/bin/env python3
"""Fixtures of mmdetection's sigmoid Focal Loss (issue 19) in the public set's format (gfl-fixture/1, see
tests/GflTrainer.Tests/Fixtures/gfl/README.md), from gflref.losses.sigmoid_focal_loss, which transcribes
mmdetection's py_sigmoid_focal_loss and FocalLoss.forward.

Run with Debian's interpreter (torch 1.13): /usr/bin/python3 scripts/reference/make_focal_fixtures.py
Writes tests/GflTrainer.Tests/Fixtures/gfl/focal/*.json (values and gradients: the element-wise loss, its sum's
gradient, the reduced loss and its gradient).
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gflref.fixture_json import shortest, tensor, write  # noqa: E402
from gflref.losses import sigmoid_focal_loss, sigmoid_focal_loss_elementwise  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "tests", "GflTrainer.Tests", "Fixtures", "gfl", "focal")
REFERENCE = ("mmdetection v3.3.0 (44ebd17b) FocalLoss(use_sigmoid=True) / py_sigmoid_focal_loss / weight_reduce_loss "
             "logic (scripts/reference/gflref/losses.py), float32, PyTorch " + torch.__version__ + " CPU")


def case(name, description, rows, classes, gamma, alpha, loss_weight, g, scale=2.5, fg=0.3, all_background=False):
    logits = torch.randn(rows, classes, generator=g) * scale - 2.0
    labels = torch.randint(0, classes, (rows,), generator=g)
    background = torch.rand(rows, generator=g) > fg
    if all_background:
        background[:] = True
    labels[background] = classes
    weight = torch.tensor([0.0, 0.5, 1.0, 2.0])[torch.randint(0, 4, (rows,), generator=g)]
    avg_factor = float(max(int((~background).sum()), 1))

    a = logits.clone().requires_grad_(True)
    elementwise = sigmoid_focal_loss_elementwise(a, labels, gamma, alpha)
    elementwise.sum().backward()
    b = logits.clone().requires_grad_(True)
    reduced = sigmoid_focal_loss(b, labels, weight, avg_factor, gamma, alpha, loss_weight)
    reduced.backward()
    write(OUT, "focal", name, description, REFERENCE,
          {"gamma": gamma, "alpha": alpha, "loss_weight": loss_weight, "num_classes": classes,
           "avg_factor": avg_factor, "reduction": "mean"},
          {"logits": tensor(logits), "labels": tensor(labels), "weight": tensor(weight)},
          {"loss_elementwise": tensor(elementwise), "loss_per_sample": tensor(elementwise.sum(1)),
           "grad_sum_elementwise_wrt_logits": tensor(a.grad), "loss_reduced": shortest(reduced.item()),
           "grad_reduced_wrt_logits": tensor(b.grad)})


def main():
    g = torch.Generator().manual_seed(0)
    case("c4_mixed", "FocalLoss (sigmoid, gamma 2, alpha 0.25), 60 rows x 4 classes: about 30% foreground rows, "
         "weights 0 / 0.5 / 1 / 2. labels == num_classes is background (an all-zero one-hot row).",
         60, 4, 2.0, 0.25, 1.0, g)
    case("c80_realistic", "FocalLoss as RetinaNet/ATSS use it: 40 rows x 80 classes, logits around -2 "
         "(p ~ 0.1), 10% foreground.", 40, 80, 2.0, 0.25, 1.0, g, scale=1.5, fg=0.1)
    case("extreme_logits", "Logits up to +-40 (saturated sigmoid: the loss must stay finite), loss_weight 2.",
         50, 3, 2.0, 0.25, 2.0, g, scale=15.0, fg=0.5)
    case("other_gamma_alpha", "gamma 1.5, alpha 0.5: both factors are parameters, not constants.",
         40, 5, 1.5, 0.5, 1.0, g)
    case("no_positives", "Every row background: only the (1 - alpha) p^gamma term; avg_factor clamps to 1.",
         30, 4, 2.0, 0.25, 1.0, g, all_background=True)


if __name__ == "__main__":
    main()
