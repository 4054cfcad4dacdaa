"""Chapter 6's checkers: random PatchDrop with a seed, and linear CKA."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vitlessons.exercises.common import ExerciseFailed, passed, run
from vitlessons.metrics import linear_cka

# Exercise 6.1: random PatchDrop ---------------------------------------------------------------


def check_random_patch_drop(drop: Callable[[Tensor, float, int, int], Tensor]) -> None:
    """Exercise 6.1: black out round(fraction x patches) whole patches per image, drawn from a seeded generator."""
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.1  # no pixel is black
    for fraction, patch_size in ((0.5, 8), (0.25, 4), (0.0, 8), (1.0, 16)):
        out = run(drop, images.clone(), fraction, patch_size, 7)
        if not isinstance(out, Tensor) or out.shape != images.shape:
            raise ExerciseFailed(f"return images shaped like the input {tuple(images.shape)}, got "
                                 f"{getattr(out, 'shape', type(out).__name__)}")
        grid = 32 // patch_size
        patches = out.reshape(3, 3, grid, patch_size, grid, patch_size).permute(0, 2, 4, 1, 3, 5).flatten(3)
        originals = images.reshape(3, 3, grid, patch_size, grid, patch_size).permute(0, 2, 4, 1, 3, 5).flatten(3)
        black = (patches == 0).all(-1)
        kept = (patches == originals).all(-1)
        if not (black | kept).all():
            raise ExerciseFailed(f"at patch size {patch_size}, some patches are partly blacked out or changed: set a "
                                 "dropped patch to 0 entirely and leave every other pixel as it was")
        expected = round(fraction * grid * grid)
        counts = black.flatten(1).sum(1).tolist()
        if counts != [expected] * 3:
            raise ExerciseFailed(f"at fraction {fraction} of {grid * grid} patches, drop {expected} per image "
                                 f"(round(fraction x patches)), got {counts}")
    first, again = run(drop, images.clone(), 0.5, 8, 7), run(drop, images.clone(), 0.5, 8, 7)
    other = run(drop, images.clone(), 0.5, 8, 8)
    if not torch.equal(first, again):
        raise ExerciseFailed("the same seed gave different patches: draw them from torch.Generator().manual_seed(seed)")
    if torch.equal(first, other):
        raise ExerciseFailed("seeds 7 and 8 dropped the same patches: the seed must decide the draw")
    dropped = (first == 0).all(1)
    if torch.equal(dropped[0], dropped[1]) and torch.equal(dropped[1], dropped[2]):
        raise ExerciseFailed("every image lost the same patches: draw a fresh set for each image, as PatchDrop does")
    passed("whole patches, the right number per image, a fresh draw per image, decided by the seed")


# Exercise 6.2: linear CKA ---------------------------------------------------------------------


def check_linear_cka(cka: Callable[[Tensor, Tensor], float]) -> None:
    """Exercise 6.2: linear CKA of two (n, d) representations of the same inputs."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(100, 12, generator=generator) + 3.0  # not centred: the formula needs centred columns
    rotation, _ = torch.linalg.qr(torch.randn(12, 12, generator=generator))
    noise = torch.randn(100, 12, generator=generator)
    other = torch.randn(100, 5, generator=generator)
    cases = {"x against itself": (x, x), "x against a rotation of x": (x, x @ rotation),
             "x against 4x": (x, 4 * x), "x against x plus noise": (x, x + noise), "x against an unrelated (100, 5)": (x, other)}
    for name, (a, b) in cases.items():
        answer, expected = float(run(cka, a.clone(), b.clone())), linear_cka(a, b)
        if abs(answer - expected) > 1e-4:
            uncentred = _uncentred_cka(a, b)
            hint = "centre each column (subtract the mean over the inputs) first" if abs(answer - uncentred) < 1e-4 else \
                "CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on centred X and Y: square the numerator's norm"
            raise ExerciseFailed(f"{name}: expected {expected:.4f}, got {answer:.4f}; {hint}")
    passed("1 for itself, a rotation and a scaling; lower with noise; near 0 for unrelated features")


def _uncentred_cka(x: Tensor, y: Tensor) -> float:
    """The common slip: the formula without centring."""
    x, y = x.double(), y.double()
    return (torch.linalg.matrix_norm(y.T @ x) ** 2 / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y))).item()
