import math

import pytest
import timm
import torch

from vitlessons import attention
from vitlessons.data import cueworld
from vitlessons.models import load_model

LABELS = list(cueworld.CLASS_NAMES)


def timm_vit() -> torch.nn.Module:
    """A random timm ViT with qkv bias and 16 px patches (the lab ViT has neither LayerScale nor 16 px patches)."""
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, num_classes=3).eval()


def lab_vit() -> torch.nn.Module:
    return load_model("lab_vit", labels=LABELS, seed=1)


def timm_own_weights(model: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The attention weights timm itself forms on its unfused path, read where they enter attn_drop."""
    layers = attention.attention_layers(model)
    seen: list[torch.Tensor] = []
    handles = [layer.attn_drop.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0])) for layer in layers]
    for layer in layers:
        layer.fused_attn = False
    try:
        model(images)
    finally:
        for layer in layers:
            layer.fused_attn = True
        for handle in handles:
            handle.remove()
    return seen


@pytest.mark.parametrize("make", [timm_vit, lab_vit])
def test_recorded_maps_equal_timm_unfused_weights(make) -> None:
    model = make()
    images = torch.rand(3, 3, 64, 64)
    assert all(layer.fused_attn for layer in attention.attention_layers(model))
    with attention.record(model) as maps:
        model(images)
    reference = timm_own_weights(model, images)
    assert len(maps) == len(reference) == len(attention.attention_layers(model))
    for recorded, expected in zip(maps, reference):
        assert recorded.shape == expected.shape
        torch.testing.assert_close(recorded, expected, atol=1e-6, rtol=1e-5)


def test_recording_leaves_outputs_and_model_untouched() -> None:
    model = lab_vit()
    images = torch.rand(2, 3, 64, 64)
    before = model(images)
    with attention.record(model) as maps:
        during = model(images)
        model(images)  # a second pass replaces the first pass's maps
        assert len(maps) == 4
        assert maps[0].shape == (2, 4, 65, 65)
        torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 4, 65))
    assert torch.equal(before, during)
    model(images)
    assert len(maps) == 4  # hooks removed: nothing more recorded


def test_record_refuses_a_network_without_vit_attention() -> None:
    with pytest.raises(TypeError, match="no timm ViT attention"):
        with attention.record(load_model("lab_cnn", labels=LABELS)):
            pass


def uniform_over_patches(grid: tuple[int, int], prefix: int = 1, prefix_mass: float = 0.0) -> torch.Tensor:
    """A (1, 1, tokens, tokens) map: prefix_mass on the class token, the rest spread evenly over the patches."""
    patches = grid[0] * grid[1]
    weights = torch.full((prefix + patches, prefix + patches), (1 - prefix_mass) / patches)
    weights[:, :prefix] = prefix_mass / prefix
    return weights[None, None]


def test_mean_distance_known_cases() -> None:
    identity = torch.eye(5)[None, None]  # 1 class token + a 2x2 grid, each token attending to itself only
    assert attention.mean_distance([identity], (2, 2), patch_size=8).item() == 0
    # uniformly over a 2x2 grid, a patch sees distances 0, 1, 1 and sqrt(2) patches
    uniform = attention.mean_distance([uniform_over_patches((2, 2))], (2, 2), patch_size=8)
    assert uniform.item() == pytest.approx(8 * (2 + math.sqrt(2)) / 4)
    # attention on the class token is dropped, not renormalised away (probing-vits' convention)
    half = attention.mean_distance([uniform_over_patches((2, 2), prefix_mass=0.5)], (2, 2), patch_size=8)
    assert half.item() == pytest.approx(uniform.item() / 2)
    # one row per block, one column per head
    two_blocks = [torch.cat([identity, identity], dim=1), torch.cat([identity, uniform_over_patches((2, 2))], dim=1)]
    assert attention.mean_distance(two_blocks, (2, 2), 8).shape == (2, 2)


def test_mean_distance_rejects_a_grid_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        attention.mean_distance([torch.eye(5)[None, None]], (3, 3), patch_size=8)


def test_attention_distance_is_a_mean_over_images_whatever_the_batch() -> None:
    model = lab_vit()
    images = cueworld.make_split("aligned", 5, seed=3).images
    whole = attention.attention_distance(model, images, batch_size=5)
    batched = attention.attention_distance(model, images, batch_size=2)
    singles = torch.stack([attention.attention_distance(model, image[None]) for image in images]).mean(0)
    assert whole.shape == (4, 4)
    torch.testing.assert_close(whole, batched)
    torch.testing.assert_close(whole, singles)
    diagonal = 8 * math.hypot(7, 7)  # no two patch centres of the 8x8 grid are farther apart
    assert ((whole > 0) & (whole < diagonal)).all()


def test_uniform_distance_is_the_mean_distance_of_uniform_attention() -> None:
    model = lab_vit()
    uniform = attention.mean_distance([uniform_over_patches((8, 8))], (8, 8), patch_size=8).item()
    assert attention.uniform_distance(model) == pytest.approx(uniform, rel=1e-5)
