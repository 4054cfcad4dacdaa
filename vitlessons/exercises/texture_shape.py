"""Chapter 1's checkers: shape bias by hand, the 16-category decision, shuffled tiles."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vitlessons.data.categories import CATEGORIES, IMAGENET_INDICES, decide_16
from vitlessons.exercises.common import ExerciseFailed, passed, run


# Exercise 1.1: shape bias by hand ------------------------------------------------------------

_SHAPE_BIAS_CASES = [
    # predictions, shapes, textures: 3 shape decisions, 1 texture decision, 1 other, 2 same-cue images
    ([0, 1, 2, 5, 4, 3, 3], [0, 1, 2, 3, 0, 3, 3], [1, 2, 0, 5, 2, 3, 3], 0.75),
    ([1, 2, 0, 3], [0, 1, 0, 2], [1, 2, 1, 0], 1 / 3),  # 1 shape, 2 texture, 1 other decision
]


def _shape_bias_mistakes(p: Tensor, s: Tensor, t: Tensor, expected: float) -> list[tuple[float, str]]:
    """Values that common mistakes produce, each with the hint that fixes it."""
    shape, texture, conflict = (p == s), (p == t), s != t
    same_cue = " Leave out images whose shape and texture agree: they cannot tell the cues apart."
    mistakes = [(1 - expected, " That is the texture bias: count shape decisions in the numerator."),
                ((shape & conflict).sum().item() / conflict.sum().item(),
                 " Divide by the shape-or-texture decisions only, not by all conflicting images.")]
    if (~conflict).any():
        mistakes += [(shape.sum().item() / (shape.sum() + texture.sum()).item(), same_cue),
                     (shape.sum().item() / (shape | texture).sum().item(), same_cue)]
    return mistakes


def check_shape_bias(shape_bias_fraction: Callable[[Tensor, Tensor, Tensor], float]) -> None:
    """Exercise 1.1: shape decisions / (shape + texture decisions), over conflicting images only."""
    for predictions, shapes, textures, expected in _SHAPE_BIAS_CASES:
        p, s, t = (torch.tensor(v) for v in (predictions, shapes, textures))
        answer = run(shape_bias_fraction, p, s, t)
        if not isinstance(answer, (float, int)) and not (isinstance(answer, Tensor) and answer.numel() == 1):
            raise ExerciseFailed(f"return one number (a float), got {type(answer).__name__}")
        answer = float(answer)
        if not 0 <= answer <= 1:
            raise ExerciseFailed(f"a fraction lies in [0, 1]; for predictions={predictions} you returned {answer:.4f} "
                                 f"(expected {expected:.4f})")
        if abs(answer - expected) < 1e-6:
            continue
        hint = next((text for value, text in _shape_bias_mistakes(p, s, t, expected) if abs(answer - value) < 1e-6), "")
        raise ExerciseFailed(f"for predictions={predictions}, shapes={shapes}, textures={textures} "
                             f"you returned {answer:.4f}, expected {expected:.4f}.{hint}")
    passed("shape bias counts shape decisions among shape-or-texture decisions on conflicting images.")


# Exercise 1.2: the 16-category decision -------------------------------------------------------

def _decision_cases() -> list[Tensor]:
    """Probability vectors where a sum over indices and the mean over indices disagree."""
    generator = torch.Generator().manual_seed(0)
    random = torch.rand(6, 1000, generator=generator) ** 8
    trap = torch.full((1, 1000), 1e-6)
    trap[0, list(IMAGENET_INDICES["dog"])] = 0.004  # a lot of dog mass, but spread over 109 classes
    trap[0, IMAGENET_INDICES["knife"][0]] = 0.05  # one confident knife class
    cases = torch.cat([random, trap])
    return [cases / cases.sum(dim=1, keepdim=True)]


def check_decision_16(decide: Callable[[Tensor], Tensor]) -> None:
    """Exercise 1.2: average the probabilities of each category's ImageNet classes, then take the arg-max."""
    for probabilities in _decision_cases():
        answer = run(decide, probabilities)
        if not isinstance(answer, Tensor) or answer.shape != (len(probabilities),):
            shape = tuple(answer.shape) if isinstance(answer, Tensor) else type(answer).__name__
            raise ExerciseFailed(f"return a tensor of {len(probabilities)} category indices, got {shape}")
        expected = decide_16(probabilities)
        wrong = (answer.long() != expected).nonzero().flatten().tolist()
        if wrong:
            i = wrong[0]
            got = CATEGORIES[answer[i]] if 0 <= answer[i] < len(CATEGORIES) else f"index {answer[i].item()}"
            hint = ""
            if CATEGORIES[expected[i]] == "knife" and got == "dog":
                hint = " Summing favours categories with many ImageNet classes (dog has 109): take the mean."
            raise ExerciseFailed(f"{len(wrong)} of {len(answer)} decisions differ; image {i}: you chose {got}, "
                                 f"expected {CATEGORIES[expected[i]]}.{hint}")
    passed("the decision is the arg-max of the mean probability over each category's ImageNet classes.")


# Exercise 1.3: keep the texture, destroy the shape ----------------------------------------------

def _tiles(image: Tensor, grid: int) -> Tensor:
    """The grid x grid tiles of a (1, 3, H, W) image, flattened, one row per tile."""
    _, channels, height, width = image.shape
    h, w = height // grid, width // grid
    tiles = image[..., :h * grid, :w * grid].reshape(channels, grid, h, grid, w).permute(1, 3, 0, 2, 4)
    return tiles.reshape(grid * grid, -1)


def check_shuffle_tiles(shuffle_tiles: Callable[[Tensor, int, int], Tensor]) -> None:
    """Exercise 1.3: the same tiles in a new order, so texture survives and the global shape does not."""
    image = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    shuffled = run(shuffle_tiles, image, 4, 0)
    if not isinstance(shuffled, Tensor) or shuffled.shape != image.shape:
        shape = tuple(shuffled.shape) if isinstance(shuffled, Tensor) else type(shuffled).__name__
        raise ExerciseFailed(f"return an image of the input's shape {tuple(image.shape)}, got {shape}")
    if torch.equal(shuffled, image):
        raise ExerciseFailed("the image came back unchanged: permute the tiles")
    before, after = _tiles(image, 4), _tiles(shuffled, 4)
    matches = (torch.cdist(after, before) < 1e-5).sum(dim=1)
    if not (matches == 1).all():
        missing = int((matches == 0).sum())
        raise ExerciseFailed(f"{missing} of 16 output tiles are not tiles of the input: cut the image into a "
                             "grid x grid array of equal tiles and move whole tiles, without flipping or resizing them")
    if not torch.equal(run(shuffle_tiles, image, 4, 0), shuffled):
        raise ExerciseFailed("the same seed gave a different shuffle: draw the permutation from a torch.Generator seeded with it")
    if torch.equal(run(shuffle_tiles, image, 4, 1), shuffled):
        raise ExerciseFailed("seeds 0 and 1 gave the same shuffle: use the seed to draw the permutation")
    passed("whole tiles are moved, each exactly once, repeatably from the seed.")
