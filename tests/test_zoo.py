"""The course's lab models: trained by the first chapter that asks, loaded by every other."""

from types import SimpleNamespace

import pytest

from vitlessons import prefetch, zoo
from vitlessons.models import lab
from vitlessons.train import Recipe


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
    monkeypatch.setattr(zoo, "cue_world_model", lambda name, split, device: trained.append((name, split))
                        or SimpleNamespace(summary=lambda: f"{name} on {split}: trained"))
    assert prefetch.main(["--lab"]) == 0
    assert trained == [(name, split) for split in zoo.TRAINING_SPLITS for name in zoo.LAB_MODELS]
    assert "lab_vit on randomised: trained" in capsys.readouterr().out
