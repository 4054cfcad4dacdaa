"""Masks from attention mass, the Jaccard index on crafted masks, and CLS attention read from a real ViT."""

import pytest
import torch
from torchmetrics.classification import BinaryJaccardIndex

from vitlessons import segmentation
from vitlessons.attention import record
from vitlessons.data import cueworld
from vitlessons.models import load_model


def test_mass_mask_keeps_the_smallest_set_holding_the_mass() -> None:
    attention = torch.tensor([[0.5, 0.05], [0.3, 0.15]])
    assert segmentation.mass_masks(attention, 0.6).tolist() == [[True, False], [True, False]]  # 0.5 + 0.3 >= 0.6
    assert segmentation.mass_masks(attention, 0.5).tolist() == [[True, False], [False, False]]
    assert segmentation.mass_masks(attention * 7, 0.6).tolist() == [[True, False], [True, False]]  # unnormalised
    assert segmentation.mass_masks(attention, 1.0).all()
    uniform = torch.full((2, 3, 10, 10), 0.01)  # an even head keeps 60% of the patches, whatever the image
    assert segmentation.mass_masks(uniform).float().mean(dim=(-2, -1)).allclose(torch.tensor(0.6), atol=0.011)
    with pytest.raises(ValueError, match="mass"):
        segmentation.mass_masks(attention, 0.0)


def test_jaccard_on_crafted_masks() -> None:
    a = torch.zeros(4, 4, dtype=torch.bool)
    b = a.clone()
    a[:2] = True  # 8 pixels
    b[1:3] = True  # 8 pixels, 4 shared
    assert segmentation.jaccard(a, b).item() == pytest.approx(4 / 12)
    assert segmentation.jaccard(a, a).item() == 1.0 and segmentation.jaccard(a, ~a).item() == 0.0
    assert segmentation.jaccard(torch.zeros_like(a), torch.zeros_like(a)).item() == 1.0
    with pytest.raises(ValueError, match="sizes"):
        segmentation.jaccard(a, torch.zeros(3, 3, dtype=torch.bool))


def test_jaccard_agrees_with_torchmetrics() -> None:
    generator = torch.Generator().manual_seed(0)
    a, b = torch.rand(6, 9, 9, generator=generator) > 0.5, torch.rand(6, 9, 9, generator=generator) > 0.3
    reference = [BinaryJaccardIndex()(x.int(), y.int()).item() for x, y in zip(a, b)]
    assert segmentation.jaccard(a, b).tolist() == pytest.approx(reference)


def test_upsample_gives_each_patch_its_pixels() -> None:
    grid = torch.tensor([[True, False], [False, True]])
    pixels = segmentation.upsample(grid, (4, 4))
    assert pixels[:2, :2].all() and not pixels[:2, 2:].any() and pixels[2:, 2:].all()


def test_cls_attention_is_the_last_blocks_class_row() -> None:
    model = load_model("lab_vit", labels=cueworld.CLASS_NAMES, image_size=32, depth=2, embed_dim=32, num_heads=2)
    images = cueworld.make_split("aligned", 3, size=32, seed=0).images
    attention = segmentation.cls_attention(model, images, batch_size=2)
    with record(model) as maps:
        model.features(images)
    assert attention.shape == (3, 2, 4, 4)
    assert torch.allclose(attention.flatten(-2), maps[-1][:, :, 0, 1:], atol=1e-6)
    per_head = segmentation.head_jaccard(model, images, cueworld.make_split("aligned", 3, size=32, seed=0).masks)
    assert per_head.shape == (2,) and ((0 <= per_head) & (per_head <= 1)).all()
    table = segmentation.jaccard_table({"vit": model}, images, torch.ones(3, 32, 32, dtype=torch.bool))
    assert table.loc["vit", "best head"] == pytest.approx(0.6, abs=0.07)  # 60% of the patches against everything


def test_cls_attention_needs_a_class_token() -> None:
    model = load_model("lab_cnn", labels=cueworld.CLASS_NAMES)
    with pytest.raises(TypeError):
        segmentation.cls_attention(model, torch.rand(1, 3, 64, 64))


def test_patch_pca_colours() -> None:
    model = load_model("lab_vit", labels=cueworld.CLASS_NAMES, image_size=32, depth=1, embed_dim=32, num_heads=2)
    colours = segmentation.patch_pca(model, torch.rand(2, 3, 32, 32))
    assert colours.shape == (2, 4, 4, 3) and colours.min() >= 0 and colours.max() <= 1
