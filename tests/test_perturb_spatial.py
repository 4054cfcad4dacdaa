"""Spatial transformations: shifts wrap without loss, turns agree with quarter turns and keep the corners filled."""

import pytest
import torch

from vitlessons.perturb import rotate, shift, turn


def _images() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_shift_moves_content_and_wraps_around():
    images = _images()
    moved = shift(images, 3)
    assert torch.equal(moved[..., 3:, 3:], images[..., :-3, :-3])
    assert torch.equal(moved[..., :3, :3], images[..., -3:, -3:])  # wrapped, nothing lost
    assert torch.equal(shift(moved, -3), images)
    assert torch.equal(shift(images, 2, vertical=0)[..., 2:], images[..., :-2])


def test_turn_by_zero_and_by_a_quarter():
    images = _images()
    assert torch.allclose(turn(images, 0), images, atol=1e-6)
    assert torch.allclose(turn(images, 90), rotate(images, 1), atol=1e-5)


def test_turn_fills_corners_with_image_content_not_black():
    white = torch.ones(1, 3, 32, 32)
    assert torch.allclose(turn(white, 30), white, atol=1e-6)  # a fill colour would darken the corners


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="whole number"):
        shift(_images(), 1.5)
    with pytest.raises(ValueError, match="finite"):
        turn(_images(), float("nan"))
