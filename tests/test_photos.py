import pytest
import torch

from vitlessons.data import photos


def test_photos_are_square_batches_in_range() -> None:
    batch = photos.photos(size=96)
    assert batch.shape == (len(photos.PHOTOS), 3, 96, 96) and batch.dtype == torch.float32
    assert 0 <= batch.min() and batch.max() <= 1
    assert batch.std(dim=(1, 2, 3)).min() > 0.05  # real pictures, not blank frames


def test_textures_are_grey_and_horse_is_a_silhouette() -> None:
    brick = photos.texture("brick", size=64)
    assert brick.shape == (1, 3, 64, 64) and torch.equal(brick[:, 0], brick[:, 1])
    mask = photos.horse_mask(128)
    assert mask.dtype == torch.bool and 0.15 < mask.float().mean() < 0.5
    assert not mask[0].any() and not mask[:, 0].any()  # padded: the horse does not touch the border


def test_fill_shape_puts_texture_inside_and_background_outside() -> None:
    mask = photos.horse_mask(64)
    texture = photos.texture("grass", size=64)
    image = photos.fill_shape(mask, texture, background=0.25)
    assert torch.equal(image[..., mask], texture[..., mask])
    assert (image[..., ~mask] == 0.25).all()


def test_bad_names_and_masks_are_explained() -> None:
    with pytest.raises(ValueError, match="unknown photo.*chelsea"):
        photos.photos(("dog",))
    with pytest.raises(ValueError, match="unknown texture 'wood'"):
        photos.texture("wood")
    with pytest.raises(ValueError, match="bool tensor"):
        photos.fill_shape(torch.ones(32, 32), torch.rand(1, 3, 32, 32))
