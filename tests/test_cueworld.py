import pytest
import torch

from vitlessons.data import cueworld
from vitlessons.data.cueworld import SHAPES, SPLITS, TEXTURES, make_split


def test_same_seed_same_images_other_seed_other_images() -> None:
    first, again, other = make_split("aligned", 40, seed=3), make_split("aligned", 40, seed=3), make_split("aligned", 40, seed=4)
    assert torch.equal(first.images, again.images) and first.captions == again.captions
    assert not torch.equal(first.images, other.images)


def test_rendering_in_chunks_does_not_change_images(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = make_split("randomised", 30, seed=1)
    monkeypatch.setattr(cueworld, "CHUNK", 7)
    chunked = make_split("randomised", 30, seed=1)
    assert torch.equal(whole.shapes, chunked.shapes) and torch.equal(whole.textures, chunked.textures)
    assert torch.equal(whole.masks, chunked.masks)  # masks draw no chunk-dependent noise


@pytest.mark.parametrize("split", SPLITS)
def test_every_split_follows_the_image_convention(split: str) -> None:
    batch = make_split(split, 24, seed=0, size=48)
    assert batch.images.shape == (24, 3, 48, 48) and batch.images.dtype == torch.float32
    assert 0 <= batch.images.min() and batch.images.max() <= 1
    assert batch.masks.shape == (24, 48, 48) and batch.masks.dtype == torch.bool
    assert len(batch.captions) == len(batch) == len(batch.labels) == 24
    assert batch.labels.min() >= 0 and batch.labels.max() < len(SHAPES)


def test_labels_couple_cues_as_each_split_promises() -> None:
    n = 600
    aligned = make_split("aligned", n)
    assert torch.equal(aligned.shapes, aligned.textures)
    conflict = make_split("conflict", n)
    assert (conflict.shapes != conflict.textures).all()
    assert torch.equal(conflict.labels, conflict.shapes)
    randomised = make_split("randomised", n)
    agree = (randomised.shapes == randomised.textures).float().mean().item()
    assert 0.08 < agree < 0.28  # independent cues agree about 1 time in 6
    texture = make_split("texture", n)
    assert (texture.shapes == -1).all() and torch.equal(texture.labels, texture.textures)
    for split in ("silhouette", "edges"):
        assert (make_split(split, n).textures == -1).all()
    for batch in (aligned, conflict, randomised, texture):
        assert set(batch.labels.tolist()) == set(range(len(SHAPES)))  # every class occurs


def test_masks_cover_the_shape_and_texture_only_has_no_shape() -> None:
    filled, edges = make_split("silhouette", 50), make_split("edges", 50)
    coverage = filled.masks.float().mean(dim=(1, 2))
    assert (coverage > 0.05).all() and (coverage < 0.6).all()
    round_shapes = torch.isin(filled.shapes, torch.tensor([SHAPES.index("circle"), SHAPES.index("square")]))
    outline = edges.masks.float().mean(dim=(1, 2))  # same seed, so the same poses as the silhouettes
    assert (outline[round_shapes] < coverage[round_shapes]).all()  # a compact shape's outline covers less
    assert not (edges.masks & ~filled.masks).all(dim=(1, 2)).any()  # the outline hugs the shape
    assert make_split("texture", 5).masks.all()


def test_silhouette_differs_from_background_inside_the_mask() -> None:
    batch = make_split("silhouette", 30)
    inside = (batch.images * batch.masks[:, None]).sum(dim=(2, 3)) / batch.masks.sum(dim=(1, 2))[:, None]
    outside = (batch.images * ~batch.masks[:, None]).sum(dim=(2, 3)) / (~batch.masks).sum(dim=(1, 2))[:, None]
    assert ((inside - outside).abs().max(dim=1).values > 0.15).all()


def test_captions_name_the_cues() -> None:
    batch = make_split("conflict", 10)
    for caption, shape, texture in zip(batch.captions, batch.shapes, batch.textures):
        assert caption == f"a {cueworld.TEXTURE_ADJECTIVES[texture]} {SHAPES[shape]}"
    assert make_split("edges", 1).captions[0].startswith("the outline of a ")
    assert make_split("texture", 1).captions[0].endswith(" surface")


def test_each_texture_is_its_own_pattern() -> None:
    """The mean image of each texture class differs from the others in its spectrum, so the cue is learnable."""
    batch = make_split("texture", 600, size=32)
    grey = batch.images.mean(dim=1)
    spectra = torch.stack([torch.fft.rfft2(grey[batch.textures == k] - 0.5).abs().mean(0) for k in range(len(TEXTURES))])
    distances = torch.cdist(spectra.flatten(1), spectra.flatten(1))
    off_diagonal = distances[~torch.eye(len(TEXTURES), dtype=torch.bool)]
    assert off_diagonal.min() > 0.05 * distances.max()


def test_sub_batches_keep_everything_aligned() -> None:
    batch = make_split("conflict", 12)
    part = batch[2:5]
    assert len(part) == 3 and part.captions == batch.captions[2:5]
    assert torch.equal(part.images, batch.images[2:5]) and part.split == "conflict"
    images, labels = next(iter(batch.loader(batch_size=4)))
    assert images.shape == (4, 3, 64, 64) and torch.equal(labels, batch.labels[:4])


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="unknown cue-world split 'stylised'.*aligned"):
        make_split("stylised", 4)
    with pytest.raises(ValueError, match="n >= 1"):
        make_split("aligned", 0)


def test_a_fixed_texture_angle_gives_stripes_an_up_and_changes_nothing_else() -> None:
    free = cueworld.make_split("texture", 40, seed=3)
    upright = cueworld.make_split("texture", 40, seed=3, texture_angle=0.0)
    assert torch.equal(free.textures, upright.textures) and free.captions == upright.captions
    stripes = upright.images[upright.textures == cueworld.TEXTURES.index("stripes")].mean(1)
    # at angle 0 (+-20 degrees) the stripes run top to bottom: pixels vary far more across a row than down a column
    across, down = stripes.diff(dim=-1).abs().mean(), stripes.diff(dim=-2).abs().mean()
    assert across > 2 * down
    turned = cueworld.make_split("texture", 40, seed=3, texture_angle=torch.pi / 2).images[upright.textures == 0].mean(1)
    assert turned.diff(dim=-2).abs().mean() > 2 * turned.diff(dim=-1).abs().mean()


def test_compose_draws_a_silhouette_without_a_texture() -> None:
    flat = cueworld.compose("heart", None, seed=1)
    filled = cueworld.compose("heart", "stripes", seed=1)
    assert flat.shape == filled.shape == (1, 3, 64, 64)
    inside = (flat - filled).abs().sum(1)[0] > 0.05  # the texture changes pixels inside the shape only
    assert 0.1 < inside.float().mean() < 0.7
    with pytest.raises(ValueError, match="or None"):
        cueworld.compose("heart", "plaid")
