"""Chapter 2's checkers: a batch turned four ways with its rotation labels, and AUROC by hand."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vitlessons.exercises.common import ExerciseFailed, passed, run
from vitlessons.metrics import auroc

# Exercise 2.1: rotated copies with their labels ------------------------------------------------


def check_rotated_batch(rotated_batch: Callable[[Tensor], tuple[Tensor, Tensor]]) -> None:
    """Exercise 2.1: (4B, C, H, W) copies turned 0, 90, 180, 270 degrees counter-clockwise, and (4B,) labels 0-3."""
    images = torch.rand(3, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    answer = run(rotated_batch, images.clone())
    if not isinstance(answer, tuple) or len(answer) != 2:
        raise ExerciseFailed("return two things: the turned images and their rotation labels")
    turned, labels = answer
    if not isinstance(turned, Tensor) or turned.shape != (12, 3, 6, 6):
        raise ExerciseFailed(f"for 3 images expected 12 turned copies shaped (12, 3, 6, 6), got "
                             f"{tuple(getattr(turned, 'shape', ()))}")
    labels = torch.as_tensor(labels)
    if labels.shape != (12,) or labels.dtype not in (torch.int64, torch.int32):
        raise ExerciseFailed(f"the labels must be 12 integers, one per copy, got {tuple(labels.shape)} {labels.dtype}")
    for copy, label in zip(turned, labels.tolist()):
        sources = [k for k in range(4) for image in images if torch.equal(copy, torch.rot90(image, k, dims=(-2, -1)))]
        if not sources:
            raise ExerciseFailed("a copy is not a quarter turn of any input image")
        if label not in sources and (-label) % 4 in sources:
            raise ExerciseFailed(f"a copy labelled {label} is turned {label * 90} degrees clockwise: torch.rot90 with k "
                                 "quarter turns over dims (-2, -1) turns counter-clockwise")
        if label not in sources:
            raise ExerciseFailed(f"a copy turned {sources[0] * 90} degrees is labelled {label}: label k for k quarter turns")
    counts = torch.bincount(labels, minlength=4).tolist()
    if counts != [3, 3, 3, 3]:
        raise ExerciseFailed(f"every image needs all four turns; the labels count {counts} of each turn")
    passed("every image in all four turns, each labelled by its number of quarter turns")


# Exercise 2.2: AUROC by hand -------------------------------------------------------------------


def check_auroc(auroc_by_hand: Callable[[Tensor, Tensor], float]) -> None:
    """Exercise 2.2: the chance that an anomalous input scores above a normal one, ties counting one half."""
    cases = [(torch.tensor([0.1, 0.2]), torch.tensor([0.8, 0.9])), (torch.tensor([1.0, 3.0]), torch.tensor([2.0, 0.0])),
             (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0])), (torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.5]))]
    generator = torch.Generator().manual_seed(2)
    cases.append((torch.randn(40, generator=generator).round(), torch.randn(30, generator=generator).round() + 0.5))
    for normal, anomalous in cases:
        answer, expected = float(run(auroc_by_hand, normal.clone(), anomalous.clone())), auroc(normal, anomalous)
        if abs(answer - expected) > 1e-9:
            strict = ((anomalous[:, None] > normal[None]).double().mean()).item()
            hint = "ties between a normal and an anomalous score count one half" if abs(answer - strict) < 1e-9 else \
                "count the (normal, anomalous) pairs in which the anomalous score is higher, over all pairs"
            if abs(answer - (1 - expected)) < 1e-9 and expected != 0.5:
                hint = "higher scores mean more anomalous: count pairs where the anomalous input scores higher"
            raise ExerciseFailed(f"normal {normal.tolist()[:6]}..., anomalous {anomalous.tolist()[:6]}...: expected "
                                 f"{expected:.4f}, got {answer:.4f}; {hint}")
    passed("AUROC agrees on separable, reversed, tied and random scores")
