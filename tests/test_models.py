import dataclasses
import math
import os
import time
from pathlib import Path

import open_clip
import pytest
import skimage.data
import timm
import torch
from safetensors.torch import save_file

from vitlessons.data import photos
from vitlessons.data.categories import CATEGORIES, decide_16
from vitlessons.models import WeightsUnavailable, get_spec, list_models, load_model, weights_available
from vitlessons.models.hub import OpenClipModel
from vitlessons.models.registry import cached_weights


def photo(name: str) -> torch.Tensor:
    """A bundled scikit-image photo as a (1, 3, H, W) batch in [0, 1]."""
    return torch.from_numpy(getattr(skimage.data, name)()[..., :3]).permute(2, 0, 1)[None].float() / 255


def fake_hub_cache(cache: Path, repo: str, filename: str, state_dict: dict) -> Path:
    """Lay out a Hugging Face cache entry the way huggingface_hub writes it."""
    revision = "0" * 40
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(revision)
    target = folder / "snapshots" / revision / filename
    target.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(target))
    return target


def test_registry_names_resolve_to_exact_identifiers() -> None:
    assert {"resnet50", "vit_b16", "deit_s", "clip_b32", "efficientnet_lite0", "lab_vit", "lab_cnn"} <= set(list_models())
    assert get_spec("resnet50").hub_files[0] == "timm/resnet50.tv_in1k"
    assert get_spec("vit_b16").hub_files[0] == "timm/vit_base_patch16_224.augreg_in21k_ft_in1k"
    assert get_spec("deit_s").hub_files[0] == "timm/deit_small_patch16_224.fb_in1k"
    assert get_spec("clip_b32").builder == OpenClipModel("ViT-B-32-quickgelu", "openai")


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="unknown model 'vit_b32'.*resnet50.*lab_cnn"):
        load_model("vit_b32")


@pytest.mark.parametrize("name", ["resnet50", "vit_b16", "deit_s", "clip_b32"])
def test_missing_weights_fail_fast_and_say_how_to_fetch(name: str) -> None:
    assert not weights_available(name)
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailable) as error:
        load_model(name)
    assert time.perf_counter() - start < 5
    message = str(error.value)
    assert name in message and get_spec(name).hub_files[0] in message
    assert f"vitlessons prefetch {name}" in message


def test_missing_checkpoint_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        load_model("resnet50", checkpoint=tmp_path / "nothing.pth")


def test_resnet50_loads_a_local_checkpoint_through_timm(tmp_path: Path) -> None:
    reference = timm.create_model("resnet50", pretrained=False)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    model = load_model("resnet50", checkpoint=path, device="cpu")
    for (name, expected), actual in zip(reference.state_dict().items(), model.net.state_dict().values()):
        assert torch.equal(expected, actual), name
    # the torchvision weights' preprocessing, resolved from timm's pretrained config
    assert model.preprocessing.interpolation == "bilinear" and model.preprocessing.crop_pct == 0.875
    assert model.preprocessing.mean == (0.485, 0.456, 0.406) and len(model.labels) == 1000
    assert model(torch.rand(2, 3, 100, 150)).shape == (2, 1000)


def test_deit_is_found_in_the_hugging_face_cache(tmp_path: Path) -> None:
    import os

    reference = timm.create_model("deit_small_patch16_224", pretrained=False)
    stored = fake_hub_cache(Path(os.environ["HF_HUB_CACHE"]), "timm/deit_small_patch16_224.fb_in1k",
                            "model.safetensors", reference.state_dict())
    assert cached_weights("deit_s") == stored and weights_available("deit_s")
    model = load_model("deit_s", device="cpu")
    assert torch.equal(model.net.cls_token, reference.cls_token)
    assert model.preprocessing.interpolation == "bicubic" and model.preprocessing.crop_pct == 0.9


@pytest.mark.slow
def test_clip_loads_a_local_checkpoint_through_open_clip(tmp_path: Path) -> None:
    reference = open_clip.create_model("ViT-B-32-quickgelu")
    path = tmp_path / "clip.pt"
    torch.save(reference.state_dict(), path)
    model = load_model("clip_b32", checkpoint=path, device="cpu", labels=["cat", "dog", "car"],
                       templates=["a photo of a {}."])
    assert torch.equal(model.net.clip.visual.conv1.weight, reference.visual.conv1.weight)
    assert model.preprocessing.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert model.labels == ["cat", "dog", "car"]
    logits = model(torch.rand(2, 3, 224, 224))
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


@pytest.mark.slow
def test_clip_head_is_built_per_class_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A head over new classes encodes only those; ImageNet subsets take CLIP's names; a damaged cache is rebuilt."""
    path = tmp_path / "clip.pt"
    torch.save(open_clip.create_model("ViT-B-32-quickgelu").state_dict(), path)
    encoded = []
    build = open_clip.build_zero_shot_classifier
    monkeypatch.setattr(open_clip, "build_zero_shot_classifier",
                        lambda *a, classnames, **k: encoded.extend(classnames) or build(*a, classnames=classnames, **k))
    options = dict(checkpoint=path, device="cpu", templates=["a photo of a {}."])
    first = load_model("clip_b32", labels=["cat", "dog"], **options)
    second = load_model("clip_b32", labels=["dog", "car"], **options)
    assert encoded == ["cat", "dog", "car"]
    assert torch.equal(second.net.class_weights[:, 0], first.net.class_weights[:, 1])
    sixteen = load_model("clip_b32", imagenet_classes=[281, 499], **options)
    assert sixteen.labels == [open_clip.IMAGENET_CLASSNAMES[281], open_clip.IMAGENET_CLASSNAMES[499]]
    assert sixteen.imagenet_classes == (281, 499) and sixteen(torch.rand(1, 3, 224, 224)).shape == (1, 2)
    (stored,) = list(Path(os.environ["VITLESSONS_CACHE"]).glob("zeroshot/*.pt"))
    stored.write_bytes(b"truncated")
    encoded.clear()
    with pytest.warns(UserWarning, match="damaged"):
        again = load_model("clip_b32", labels=["cat", "dog"], **options)
    assert encoded == ["cat", "dog"] and torch.allclose(again.net.class_weights, first.net.class_weights)


def test_imagenet_classes_select_outputs_and_are_checked() -> None:
    full = load_model("efficientnet_lite0", device="cpu")
    subset = load_model("efficientnet_lite0", device="cpu", imagenet_classes=[499, 281])
    cat = photo("chelsea")
    assert subset.labels == [full.labels[499], full.labels[281]] and subset.imagenet_classes == (499, 281)
    assert torch.allclose(subset(cat), full(cat)[:, [499, 281]])
    assert full.imagenet_classes == tuple(range(1000))
    for bad in ([], [3, 3], [1000]):
        with pytest.raises(ValueError, match="distinct class indices"):
            load_model("efficientnet_lite0", device="cpu", imagenet_classes=bad)
    with pytest.raises(TypeError, match="lab_cnn does not take the option imagenet_classes; it takes checkpoint, "):
        load_model("lab_cnn", labels=["a"], imagenet_classes=[1])


def test_efficientnet_lite0_sees_the_cat() -> None:
    """The packaged ImageNet weights are real: chelsea is a cat, in ImageNet and in the 16 categories."""
    model = load_model("efficientnet_lite0", device="cpu")
    probabilities = model.predict(photo("chelsea"))
    top = probabilities.argmax().item()
    assert 281 <= top <= 285, model.labels[top]  # the ImageNet cat classes
    assert CATEGORIES[decide_16(probabilities).item()] == "cat"
    coffee = model.predict(photo("coffee")).argmax().item()
    assert model.labels[coffee] == "espresso"


def test_lab_models_are_small_seeded_and_need_labels() -> None:
    labels = ["a", "b", "c"]
    vit, cnn = load_model("lab_vit", labels=labels, device="cpu"), load_model("lab_cnn", labels=labels, device="cpu")
    for model in (vit, cnn):
        assert model(torch.rand(5, 3, 64, 64)).shape == (5, 3)
        assert sum(p.numel() for p in model.parameters()) < 2_000_000
    again = load_model("lab_vit", labels=labels, device="cpu")
    other = load_model("lab_vit", labels=labels, device="cpu", seed=1)
    assert torch.equal(vit.net.pos_embed, again.net.pos_embed)
    assert not torch.equal(vit.net.pos_embed, other.net.pos_embed)
    with pytest.raises(ValueError, match="needs labels"):
        load_model("lab_cnn")
    with pytest.raises(TypeError, match="resnet50 does not take the option labels"):
        load_model("resnet50", labels=labels)


def test_lab_model_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    model = load_model("lab_cnn", labels=["a", "b"], device="cpu", seed=5)
    torch.save(model.net.state_dict(), tmp_path / "cnn.pt")
    restored = load_model("lab_cnn", labels=["a", "b"], device="cpu", checkpoint=tmp_path / "cnn.pt")
    x = torch.rand(3, 3, 64, 64)
    assert torch.allclose(model(x), restored(x))
    # the CNN's convolutions keep the channels-last layout it trains fastest in, through a restore and a move
    weights = [m.weight for m in restored.modules() if isinstance(m, torch.nn.Conv2d)]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)


@pytest.mark.parametrize("bad, message", [
    (torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8), "float"),
    (torch.rand(3, 64, 64), r"\(B, 3, H, W\)"),
    (torch.rand(1, 3, 64, 64) * 2 - 1, r"\[0, 1\]"),
])
def test_classifier_rejects_images_outside_the_convention(bad: torch.Tensor, message: str) -> None:
    model = load_model("lab_cnn", labels=["a", "b"], device="cpu")
    for public in (model.predict, model.features):
        with pytest.raises((TypeError, ValueError), match=message):
            public(bad)


def test_forward_checks_the_layout_but_leaves_the_range_to_the_public_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """An attack loop calls forward hundreds of times: no pass over the values and no device sync there."""
    model = load_model("lab_cnn", labels=["a", "b"], device="cpu")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(3, 64, 64))
    passes = []
    monkeypatch.setattr(torch, "aminmax", lambda x: passes.append(1) or (x.min(), x.max()))
    model(torch.rand(2, 3, 64, 64))
    assert passes == []
    model.predict(torch.rand(130, 3, 64, 64))  # three batches, one check
    assert passes == [1]


def test_unknown_options_are_refused_with_the_ones_that_exist() -> None:
    with pytest.raises(TypeError, match="lab_vit does not take the option patchsize; it takes .*patch_size"):
        load_model("lab_vit", labels=["a"], patchsize=4)
    with pytest.raises(TypeError, match="efficientnet_lite0 does not take the options depth, seed"):
        load_model("efficientnet_lite0", seed=1, depth=2)


def test_lab_vit_options_reach_the_architecture() -> None:
    vit = load_model("lab_vit", labels=["a", "b"], device="cpu", patch_size=4, depth=2, embed_dim=64, num_heads=2)
    assert vit.trunk.patch_embed.grid_size == (16, 16) and len(vit.trunk.blocks) == 2 and vit.trunk.embed_dim == 64
    with pytest.raises(ValueError, match="multiple of patch_size 5"):
        load_model("lab_vit", labels=["a"], patch_size=5)
    with pytest.raises(ValueError, match="power-of-two patch_size, got 6; use stem='linear'"):
        load_model("lab_vit", labels=["a"], patch_size=6, image_size=60)
    linear = load_model("lab_vit", labels=["a"], device="cpu", patch_size=6, image_size=60, stem="linear")
    assert isinstance(linear.trunk.patch_embed.proj, torch.nn.Conv2d) and linear.trunk.patch_embed.grid_size == (10, 10)
    with pytest.raises(ValueError, match="unknown stem 'conv'"):
        load_model("lab_vit", labels=["a"], stem="conv")


@pytest.mark.parametrize("patch_size", [2, 4, 8, 16])
def test_the_hmlp_stem_gives_each_token_its_own_patch_only(patch_size: int) -> None:
    """Change the pixels of one patch: exactly that patch's token changes, as with ViT's linear embedding."""
    vit = load_model("lab_vit", labels=["a"], device="cpu", patch_size=patch_size).trunk
    images = torch.rand(2, 3, 64, 64)
    changed = images.clone()
    row, column = 1, 0
    changed[:, :, row * patch_size:(row + 1) * patch_size, column * patch_size:(column + 1) * patch_size] = torch.rand(1)
    with torch.no_grad():
        before, after = vit.patch_embed(images), vit.patch_embed(changed)
    grid = 64 // patch_size
    assert before.shape == (2, grid * grid, 128)
    moved = (before - after).abs().amax(dim=(0, 2)) > 1e-6
    assert moved.nonzero().flatten().tolist() == [row * grid + column]


def test_block_tokens_are_what_the_head_reads() -> None:
    """The last block's class token, normalised and put through the head, gives the model's logits."""
    vit = load_model("lab_vit", labels=["a", "b", "c"], device="cpu", seed=3)
    images = torch.rand(4, 3, 64, 64)
    tokens = vit.block_tokens(images)
    assert tokens.cls.shape == (4, 4, 128) and tokens.patches.shape == (4, 4, 64, 128) and tokens.grid == (8, 8)
    with torch.no_grad():
        assert torch.allclose(vit.trunk.head(vit.trunk.norm(tokens.cls[-1])), vit(images), atol=1e-5)
        assert not torch.allclose(tokens.cls[0], tokens.cls[-1])
    with pytest.raises(TypeError, match="lab_cnn is not a timm vision transformer"):
        load_model("lab_cnn", labels=["a"], device="cpu").block_tokens(images)


def test_a_backbone_gives_the_features_its_classifier_reads() -> None:
    classifier = load_model("efficientnet_lite0", device="cpu")
    backbone = load_model("efficientnet_lite0", device="cpu", head=False)
    cat = photo("chelsea")
    with torch.no_grad():
        features = backbone(cat)
        assert features.shape == (1, 1280) and torch.allclose(features, classifier.features(cat), atol=1e-5)
        assert torch.allclose(classifier.trunk.get_classifier()(features), classifier(cat), atol=1e-4)
    with pytest.raises(ValueError, match="backbone"):
        load_model("efficientnet_lite0", head=False, imagenet_classes=[1])


def test_preprocessing_resizes_short_side_then_crops() -> None:
    model = load_model("efficientnet_lite0", device="cpu")
    wide = torch.rand(1, 3, 120, 300)
    assert model.preprocessing(wide).shape == (1, 3, 224, 224)
    flat = torch.full((1, 3, 90, 90), 0.5)
    assert model.preprocessing(flat)[0, 0].abs().max() < 1e-4  # the mean maps to zero


def test_images_at_the_input_size_go_in_uncropped() -> None:
    """model-vs-human's protocol: 224 px stimuli are normalised only, not resized to 256 and cropped."""
    preprocessing = load_model("efficientnet_lite0", device="cpu").preprocessing
    assert preprocessing.crop_pct < 1
    image = torch.rand(2, 3, 224, 224)
    mean, std = torch.tensor(preprocessing.mean)[:, None, None], torch.tensor(preprocessing.std)[:, None, None]
    assert torch.allclose(preprocessing(image), (image - mean) / std)
    border = torch.zeros(1, 3, 224, 224)
    border[..., :8, :] = 1  # a stripe that the 256/224 crop would cut away
    assert (preprocessing(border) > 0).any()
    assert not (preprocessing(torch.nn.functional.pad(border, (0, 0, 0, 1))) > 0.5).any()  # 225 px: cropped


def first_batchnorm_log_variance(model, images: torch.Tensor) -> float:
    """Median over channels of log(variance / running variance) at the first batch norm's input.

    Near 0 when the preprocessing scales the input as the weights saw it in training; a normalisation
    std k times too small shows up as about +2 log k.
    """
    norm = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    handle = norm.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].detach()))
    try:
        model.predict(images)
    finally:
        handle.remove()
    return (torch.cat(seen).var(dim=(0, 2, 3)) / norm.running_var).log().median().item()


HAND_SET_PREPROCESSING = [name for name in list_models() if getattr(get_spec(name).builder, "normalisation", None)]
SCALE_TOLERANCE = 1.5  # the input's scale may be off by this factor, its variance by the square


@pytest.mark.parametrize("name", HAND_SET_PREPROCESSING)
def test_hand_set_normalisation_matches_what_the_weights_were_trained_on(name: str) -> None:
    """Weights from outside a library's config carry a normalisation set by hand; batch norm checks it."""
    model = load_model(name, device="cpu")
    pictures = photos.photos()
    limit = 2 * math.log(SCALE_TOLERANCE)
    registered = first_batchnorm_log_variance(model, pictures)
    assert abs(registered) < limit, (name, model.preprocessing, registered)
    model.preprocessing = dataclasses.replace(model.preprocessing, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    assert abs(first_batchnorm_log_variance(model, pictures)) > limit  # the check tells ImageNet's numbers apart


def _architecture(name: str) -> tuple[torch.nn.Module, str, int]:
    """The registered architecture with random weights, its device (meta, where it builds there: sizes and FLOPs for
    free) and its input size (timm's pretrained config's, unless the builder fixes one)."""
    builder = get_spec(name).builder
    if isinstance(builder, OpenClipModel):  # open_clip moves its model to a real device
        return open_clip.create_model(builder.identifier).eval(), "cpu", 224
    size = getattr(builder, "image_size", None)
    with torch.device("meta"):
        net = timm.create_model(builder.identifier, **({"img_size": size} if size else {}))
    return net, "meta", size or net.pretrained_cfg["input_size"][-1]


@pytest.mark.parametrize("name", [n for n in list_models() if get_spec(n).gflops])
def test_stated_costs_match_the_architectures(name: str) -> None:
    """The sizes and FLOPs that the scale choice prices paper scale with are the models' own."""
    from torch.utils.flop_counter import FlopCounterMode

    spec, (net, on, size) = get_spec(name), _architecture(name)
    image = torch.zeros(1, 3, size, size, device=on)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        (net.encode_image if isinstance(spec.builder, OpenClipModel) else net)(image)
    assert counter.get_total_flops() / 1e9 == pytest.approx(spec.gflops, rel=0.03)
    if spec.hub_files is not None:
        megabytes = 4 * sum(p.numel() for p in net.parameters()) / 1e6  # float32 weights
        assert megabytes == pytest.approx(spec.download_mb, rel=0.03)
    if spec.text_gflops:
        tokens = open_clip.get_tokenizer(spec.builder.identifier)(["a photo of a cat."]).to(on)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net.encode_text(tokens)
        assert counter.get_total_flops() / 1e9 == pytest.approx(spec.text_gflops, rel=0.03)


def test_parameters_and_gflops_count_the_lab_models() -> None:
    from vitlessons.models.cost import parameters_and_gflops

    model = load_model("lab_cnn", labels=list("abcdef"))
    parameters, gflops = parameters_and_gflops(model)
    assert parameters == sum(p.numel() for p in model.net.parameters())
    first = model.net.conv1[0] if isinstance(model.net.conv1, torch.nn.Sequential) else model.net.conv1
    stem = 2 * first.weight.numel() * (64 // 2) ** 2 / 1e9  # the stride-2 stem alone, at 64 px
    assert stem < gflops < 1
