"""The course's lab models: trained by the first chapter that asks, loaded by every other."""

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from vitlessons import prefetch, trained, zoo
from vitlessons.data import cueworld
from vitlessons.models import lab
from vitlessons.train import History, Recipe


@pytest.fixture
def tiny_recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real code path with a recipe small enough for a unit test."""
    for name in zoo.LAB_MODELS:
        monkeypatch.setitem(lab.RECIPES, name, Recipe(epochs=2, batch_size=32))
        monkeypatch.setitem(lab.IMAGES_PER_EPOCH, name, 64)


def test_a_course_model_is_trained_once_then_shared(tiny_recipes: None) -> None:
    first = zoo.cue_world_model("lab_cnn", "aligned", device="cpu", progress=False)
    again = zoo.cue_world_model("lab_cnn", "aligned", device="cpu", progress=False)
    assert not first.loaded and again.loaded
    assert again.history["images seen"] == [64.0, 128.0] and len(again.history["validation accuracy"]) == 2
    assert not zoo.cue_world_model("lab_cnn", "randomised", device="cpu", progress=False).loaded
    assert not zoo.cue_world_model("lab_cnn", "aligned", seed=1, device="cpu", progress=False).loaded
    with pytest.raises(ValueError, match="the course trains"):
        zoo.cue_world_model("resnet50", "aligned")


def test_prefetch_lab_trains_every_course_model(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    trained = []
    monkeypatch.setattr(zoo, "cue_world_model", lambda name, split, device, **options: trained.append(
        (name, split, options)) or SimpleNamespace(summary=lambda: f"{name} on {split}: trained"))
    monkeypatch.setattr(zoo, "dino_model", lambda device, **options: trained.append(
        ("dino", options)) or SimpleNamespace(summary=lambda: "dino: trained"))
    monkeypatch.setattr(zoo, "shape_token_model", lambda device: trained.append(
        ("shape token", {})) or SimpleNamespace(summary=lambda: "lab_vit: trained"))
    monkeypatch.setattr(zoo, "rotation_model", lambda name, auxiliary, device: trained.append(
        ("rotation", name, auxiliary)) or (SimpleNamespace(summary=lambda: f"{name}: trained"), None))
    monkeypatch.setattr(zoo, "clip_model", lambda device: trained.append(
        ("clip",)) or (SimpleNamespace(summary=lambda: "lab_vit: trained"), None))
    assert prefetch.main(["--lab"]) == 0
    assert trained == [(name, split, {}) for split in zoo.CHAPTER_1_SPLITS for name in zoo.LAB_MODELS] + list(zoo.VARIANTS) \
        + [("dino", {})] + [("dino", options) for options in zoo.COLLAPSE.values()] + [("shape token", {})] \
        + [("rotation", name, auxiliary) for name, auxiliary in zoo.ROTATION_MODELS] + [("clip",), ("lab_vit", "conflict", {})]
    assert "lab_vit on randomised: trained" in capsys.readouterr().out


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> list:
    """``fit`` replaced by a recorder: the cache key and the model are real, the training is skipped."""
    recipes = []

    def fake_fit(model, objective, data, recipe, seed=0, validation=None, progress=True):
        recipes.append(recipe)
        return History(logs={"images seen": [float(data.images)] * recipe.epochs}, seconds=0.0)

    monkeypatch.setattr(trained, "fit", fake_fit)
    return recipes


def test_epochs_and_architecture_are_variants_with_their_own_cache_keys(no_training: list) -> None:
    default = zoo.cue_world_model("lab_cnn", "aligned", device="cpu", progress=False)
    early = zoo.cue_world_model("lab_cnn", "aligned", device="cpu", progress=False, epochs=3)
    assert [r.epochs for r in no_training] == [lab.RECIPES["lab_cnn"].epochs, 3]
    assert no_training[1] == replace(lab.RECIPES["lab_cnn"], epochs=3)  # only the epochs change
    assert early.path != default.path and not early.loaded
    assert zoo.cue_world_model("lab_cnn", "aligned", device="cpu", progress=False, epochs=3).loaded
    same = zoo.cue_world_model("lab_cnn", "aligned", device="cpu", progress=False, epochs=lab.RECIPES["lab_cnn"].epochs)
    assert same.path == default.path and same.loaded  # the recipe's own length is the default model
    assert len(no_training) == 2

    vit = zoo.cue_world_model("lab_vit", "aligned", device="cpu", progress=False)
    coarse = zoo.cue_world_model("lab_vit", "aligned", device="cpu", progress=False, patch_size=16)
    assert coarse.path != vit.path and not coarse.loaded
    assert tuple(coarse.model.trunk.patch_embed.patch_size) == (16, 16)
    assert tuple(vit.model.trunk.patch_embed.patch_size) == (8, 8)
    assert zoo.cue_world_model("lab_vit", "aligned", device="cpu", progress=False, patch_size=16).loaded
    assert len({default.path, early.path, vit.path, coarse.path}) == 4


def test_a_bad_name_or_split_still_raises_with_variants(no_training: list) -> None:
    with pytest.raises(ValueError, match="the course trains"):
        zoo.cue_world_model("resnet50", "aligned", epochs=1)
    with pytest.raises(ValueError, match="the course trains"):
        zoo.cue_world_model("lab_vit", "silhouette", patch_size=16)
    with pytest.raises(TypeError, match="does not take the option"):
        zoo.cue_world_model("lab_cnn", "aligned", device="cpu", progress=False, patch_size=16)
    assert no_training == []


def test_dino_is_trained_once_and_its_teacher_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoo, "DINO_RECIPE", Recipe(epochs=1, batch_size=16))
    first = zoo.dino_model(device="cpu", progress=False, images=32)
    again = zoo.dino_model(device="cpu", progress=False, images=32)
    assert not first.loaded and again.loaded and again.model.name == "lab_vit (DINO teacher)"
    images = cueworld.make_split("aligned", 4, seed=9).images
    assert torch.equal(first.model.features(images), again.model.features(images))
    assert set(again.history.logs) >= {"loss", "teacher entropy", "batch entropy", "KL"}
    assert not zoo.dino_model(device="cpu", progress=False, images=32, centring=False).loaded


def test_the_shape_token_student_is_trained_once_and_follows_its_teacher(tiny_recipes: None) -> None:
    first = zoo.shape_token_model(device="cpu", progress=False)
    again = zoo.shape_token_model(device="cpu", progress=False)
    assert not first.loaded and again.loaded
    images = cueworld.make_split("aligned", 4, seed=9).images
    assert torch.equal(first.model(images), again.model(images))
    assert set(again.history.logs) >= {"loss", "KL", "accuracy", "shape token accuracy", "agreement"}
    assert zoo.cue_world_model("lab_cnn", "randomised", device="cpu", progress=False).loaded  # the teacher, trained once


def test_rotation_models_come_back_with_their_heads(tiny_recipes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoo, "ROTATION_IMAGES", {name: 16 for name in zoo.LAB_MODELS})
    monkeypatch.setattr(zoo, "ROTATION_VALIDATION", 8)
    first, head = zoo.rotation_model("lab_cnn", device="cpu", progress=False)
    again, restored = zoo.rotation_model("lab_cnn", device="cpu", progress=False)
    assert not first.loaded and again.loaded
    assert torch.equal(head.head.weight, restored.head.weight)  # the rotation head is cached with its model
    assert again.history["images seen"] == [16.0, 32.0] and "validation rotation accuracy" in again.history.logs
    assert "accuracy" not in again.history.logs  # no labels in the pretext task
    auxiliary, _ = zoo.rotation_model("lab_cnn", auxiliary=True, device="cpu", progress=False)
    assert not auxiliary.loaded and auxiliary.history["images seen"] == [64.0, 128.0, 192.0]  # chapter 5's 3 epochs
    assert "accuracy" in auxiliary.history.logs and "rotation accuracy" in auxiliary.history.logs
    vit, _ = zoo.rotation_model("lab_vit", auxiliary=True, device="cpu", progress=False)
    assert vit.history["images seen"] == [64.0, 128.0]  # chapter 1's ViT recipe, its supervised twin's
    with pytest.raises(ValueError, match="rotation heads"):
        zoo.rotation_model("resnet50")
