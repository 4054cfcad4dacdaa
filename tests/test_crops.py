"""Multi-crop views: the right sizes, seeded, each transform doing what it says."""

import torch

from vitlessons.config import generator
from vitlessons.perturb import crops


def ramp(count: int = 4, size: int = 32) -> torch.Tensor:
    x = torch.linspace(0, 1, size)
    return torch.stack([x.expand(size, size), x[:, None].expand(size, size), torch.full((size, size), 0.5)]).expand(count, 3, size, size).clone()


def test_a_full_crop_without_flip_is_the_image() -> None:
    images = ramp()
    out = crops.resized_crops(images, 32, (1.0, 1.0), generator(0), ratio=(1.0, 1.0), flip=0.0)
    assert torch.allclose(out, images, atol=1e-5)
    flipped = crops.resized_crops(images, 32, (1.0, 1.0), generator(0), ratio=(1.0, 1.0), flip=1.0)
    assert torch.allclose(flipped, images.flip(-1), atol=1e-5)


def test_small_crops_see_a_part_of_the_image() -> None:
    images = ramp()
    out = crops.resized_crops(images, 16, (0.05, 0.1), generator(1), flip=0.0)
    assert out.shape == (4, 3, 16, 16)
    span = out[:, 0].amax(dim=(-2, -1)) - out[:, 0].amin(dim=(-2, -1))  # the horizontal ramp covers < its full range
    assert (span < 0.5).all()


def test_views_are_seeded_and_in_range() -> None:
    images = ramp(6)
    views = crops.MultiCrop(global_size=32, local_size=16, local_crops=3)
    first, again = views(images, generator(5)), views(images, generator(5))
    assert [tuple(v.shape) for v in first] == [(6, 3, 32, 32)] * 2 + [(6, 3, 16, 16)] * 3
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(v.min() >= 0 and v.max() <= 1 for v in first)
    assert not torch.equal(views(images, generator(6))[0], first[0])


def test_jitter_greyscale_blur_and_solarize() -> None:
    images = torch.rand(5, 3, 24, 24)
    assert torch.allclose(crops.colour_jitter(images, generator(0), chance=0.0), images, atol=1e-6)
    assert not torch.allclose(crops.colour_jitter(images, generator(0), chance=1.0), images, atol=1e-2)
    grey = crops.greyscale(images, generator(0), chance=1.0)
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    blurred = crops.blur(images, generator(0), chance=1.0)
    assert blurred.std() < images.std() and torch.allclose(blurred.mean(), images.mean(), atol=0.02)
    assert torch.equal(crops.blur(images, generator(0), chance=0.0), images)
    flat = torch.full((1, 3, 8, 8), 0.8)
    assert torch.allclose(crops.solarize(flat, generator(0), chance=1.0), torch.full_like(flat, 0.2))


def test_hue_turns_about_the_grey_axis() -> None:
    images = torch.rand(3, 3, 8, 8)
    assert torch.allclose(crops.turn_hue(images, torch.zeros(3)), images, atol=1e-6)
    third = torch.full((3,), 2 * torch.pi / 3)  # a third of a turn sends red to green, green to blue
    assert torch.allclose(crops.turn_hue(images, third), images[:, [2, 0, 1]], atol=1e-5)
    grey = torch.full((1, 3, 4, 4), 0.3)
    assert torch.allclose(crops.turn_hue(grey, torch.tensor([1.0])), grey, atol=1e-6)
