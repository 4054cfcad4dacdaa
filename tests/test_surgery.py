import pytest
import timm
import torch
from torch import nn

from vitlessons import attention
from vitlessons.data import cueworld
from vitlessons.models import load_model
from vitlessons.models.surgery import depth, local_attention, max_window, removed, window_mask

LABELS = list(cueworld.CLASS_NAMES)


def lab_vit(**architecture) -> nn.Module:
    return load_model("lab_vit", labels=LABELS, seed=1, **architecture).eval()


@pytest.fixture(autouse=True)
def no_grad() -> None:
    """Forward passes only: without autograd's bookkeeping they take half the time."""
    with torch.no_grad():
        yield


def timm_vit(**options) -> nn.Module:
    """A random timm ViT-Ti: qkv bias and 16 px patches, which the lab ViT lacks; 64 px and 5 blocks for speed."""
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, depth=5, num_classes=10,
                             **options).eval()


def registers_vit() -> nn.Module:
    """Four register tokens and no class token: prefix tokens that are not a class token."""
    return timm_vit(class_token=False, reg_tokens=4, global_pool="avg", no_embed_class=True)


def trunk_and_input(model: nn.Module, images: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """The timm network and what it sees: a course model preprocesses, a raw timm network does not."""
    return (model.trunk, model.preprocessing(images)) if hasattr(model, "trunk") else (model, images)


def manual_forward(model: nn.Module, images: torch.Tensor, skip: int, part: str) -> torch.Tensor:
    """timm's forward written out block by block, leaving out one branch of one block."""
    vit, x = trunk_and_input(model, images)
    x = vit.norm_pre(vit._pos_embed(vit.patch_embed(x)))
    for index, block in enumerate(vit.blocks):
        if index != skip:
            x = block(x)
        elif part == "attention":
            x = x + block.ls2(block.mlp(block.norm2(x)))
        else:
            x = x + block.ls1(block.attn(block.norm1(x)))
    return vit.forward_head(vit.norm(x))


@pytest.mark.parametrize("make", [lab_vit, timm_vit])
def test_removing_every_block_leaves_embedding_norm_and_head(make) -> None:
    model = make()
    images = torch.rand(2, 3, 64, 64)
    vit, x = trunk_and_input(model, images)
    tokens = torch.cat([vit.cls_token.expand(2, -1, -1), vit.patch_embed(x)], dim=1) + vit.pos_embed
    by_hand = vit.head(vit.norm(tokens)[:, 0])
    with removed(model, range(depth(model))):
        torch.testing.assert_close(model(images), by_hand, atol=1e-6, rtol=0)


@pytest.mark.parametrize("part", ["attention", "mlp"])
@pytest.mark.parametrize("make", [lab_vit, timm_vit, registers_vit])
def test_removing_a_branch_equals_a_forward_without_it(make, part: str) -> None:
    model = make()
    images = torch.rand(2, 3, 64, 64)
    with removed(model, 2, part):
        torch.testing.assert_close(model(images), manual_forward(model, images, 2, part), atol=1e-6, rtol=0)
    assert not torch.allclose(model(images), manual_forward(model, images, 2, part), atol=1e-3)


def test_removing_nothing_changes_nothing_and_the_model_comes_back_exactly() -> None:
    model = lab_vit()
    images = torch.rand(2, 3, 64, 64)
    before, state = model(images), {k: v.clone() for k, v in model.state_dict().items()}
    with removed(model, []):
        assert torch.equal(model(images), before)
    for part in ("block", "attention", "mlp"):
        with removed(model, [0, -1], part):
            assert not torch.equal(model(images), before)
        with pytest.raises(RuntimeError, match="inside"), removed(model, 1, part):
            raise RuntimeError("inside")
    assert torch.equal(model(images), before)
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(value, state[key]) for key, value in model.state_dict().items())


def test_block_indices_count_like_python_and_bad_ones_say_what_exists() -> None:
    model = lab_vit()
    images = torch.rand(1, 3, 64, 64)
    with removed(model, 3):
        last = model(images)
    with removed(model, [-1, 3]):
        assert torch.equal(model(images), last)
    with pytest.raises(ValueError, match="lab_vit has 4 blocks, 0 to 3 .*no block 4"), removed(model, 4):
        pass
    with pytest.raises(ValueError, match="no block -5"), removed(model, [0, -5]):
        pass
    with pytest.raises(TypeError, match="must be ints, got '1'"), removed(model, ["1"]):
        pass
    with pytest.raises(ValueError, match="part must be one of .*'heads'"), removed(model, 1, "heads"):
        pass
    cnn = load_model("lab_cnn", labels=LABELS)
    with pytest.raises(TypeError, match="not a timm VisionTransformer"), removed(cnn, 0):
        pass


def test_record_inside_removed_records_the_blocks_that_still_attend() -> None:
    model = lab_vit()
    images = torch.rand(2, 3, 64, 64)
    with attention.record(model) as full:
        model(images)
    with removed(model, 1), attention.record(model) as maps:
        model(images)
    assert len(maps) == 3
    assert torch.equal(maps[0], full[0])  # block 0 comes before the removed block
    with removed(model, [0, 2], "attention"), attention.record(model) as maps:
        model(images)
    assert len(maps) == 2


def test_window_mask_lets_patches_see_their_neighbourhood_and_prefix_tokens_see_all() -> None:
    mask = window_mask((3, 4), 1, prefix_tokens=2)
    assert mask.shape == (14, 14) and mask.dtype == torch.bool
    assert mask[:2].all() and mask[:, :2].all()
    patches = mask[2:, 2:]
    assert torch.equal(patches, patches.T)
    assert patches[5].sum() == 9  # cell (1, 1): a full 3x3 neighbourhood
    assert patches[0].sum() == 4  # cell (0, 0): a corner
    assert torch.equal(window_mask((3, 4), 0, 0), torch.eye(12, dtype=torch.bool))
    assert window_mask((3, 4), max_window((3, 4)), 1).all()
    assert not window_mask((3, 4), max_window((3, 4)) - 1, 1).all()
    with pytest.raises(ValueError, match="window >= 0.*window -1"):
        window_mask((3, 4), -1, 1)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("make", [lab_vit, registers_vit])
def test_a_window_covering_the_grid_is_global_attention(make, fused: bool) -> None:
    model = make()
    for layer in attention.attention_layers(model):
        layer.fused_attn = fused
    images = torch.rand(2, 3, 64, 64)
    vit, _ = trunk_and_input(model, images)
    global_ = model(images)
    with local_attention(model, max_window(tuple(vit.patch_embed.grid_size))):
        torch.testing.assert_close(model(images), global_, atol=1e-5, rtol=0)
    with local_attention(model, 0):
        assert not torch.allclose(model(images), global_, atol=1e-3)


@pytest.mark.parametrize("fused", [True, False])
def test_one_local_block_keeps_far_patches_out(fused: bool) -> None:
    model = lab_vit(depth=1)  # after one block, a patch token has seen only its window (and the input class token)
    model.trunk.blocks[0].attn.fused_attn = fused
    images = torch.rand(1, 3, 64, 64)
    near, far = images.clone(), images.clone()
    near[..., 24:32, 32:40] = torch.rand(8, 8)  # patch (3, 4), next to patch (3, 3)
    far[..., 24:32, 48:56] = torch.rand(8, 8)  # patch (3, 6), three cells away
    token = 1 + 3 * 8 + 3

    def output(x: torch.Tensor) -> torch.Tensor:
        return model.trunk.forward_features(model.preprocessing(x))[0, token]
    assert not torch.allclose(output(far), output(images), atol=1e-3)  # with global attention it sees far patches
    with local_attention(model, 1):
        torch.testing.assert_close(output(far), output(images), atol=1e-6, rtol=0)
        assert not torch.allclose(output(near), output(images), atol=1e-3)


def test_local_attention_leaves_the_model_as_it_was() -> None:
    model = lab_vit()
    images = torch.rand(2, 3, 64, 64)
    before = model(images)
    with pytest.raises(RuntimeError, match="inside"), local_attention(model, 1):
        raise RuntimeError("inside")
    assert torch.equal(model(images), before)
    assert not any(layer._forward_pre_hooks for layer in attention.attention_layers(model))
    with local_attention(model, 1), pytest.raises(ValueError, match="mask for 65 tokens.*input has 17"):
        model.trunk.blocks[0](torch.rand(1, 17, 128))


def test_recorded_maps_follow_the_window_as_timm_applies_it() -> None:
    model = timm_vit()
    layers = attention.attention_layers(model)
    images = torch.rand(2, 3, 64, 64)
    with attention.record(model) as maps, local_attention(model, 1) as allowed:  # either order of entry works
        model(images)
    assert len(maps) == 5
    for recorded in maps:
        assert torch.equal(recorded[..., ~allowed], torch.zeros_like(recorded[..., ~allowed]))
        torch.testing.assert_close(recorded.sum(-1), torch.ones(recorded.shape[:-1]))
    timm_weights: list[torch.Tensor] = []
    for layer in layers:
        layer.fused_attn = False
        layer.attn_drop.register_forward_hook(lambda _m, inputs, _o: timm_weights.append(inputs[0]))
    with local_attention(model, 1):
        model(images)
    for recorded, expected in zip(maps, timm_weights, strict=True):
        torch.testing.assert_close(recorded, expected, atol=1e-6, rtol=1e-5)
