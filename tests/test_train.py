import os
from pathlib import Path

import pytest
import torch
from torch import nn

from vitlessons.data import cueworld
from vitlessons.data.sources import CueWorldStream, TensorSource
from vitlessons.evaluate import cue_world_report, cue_world_shape_bias, decisions
from vitlessons.models import load_model
from vitlessons.objectives import Classification, Objective, StepOutput
from vitlessons.trained import train_or_load
from vitlessons.train import Recipe, fit

QUICK = Recipe(epochs=2, batch_size=32, lr=2e-3)


def small_run(seed: int):
    data = cueworld.make_split("aligned", 96, seed=0, size=32)
    model = load_model("lab_cnn", labels=cueworld.CLASS_NAMES, device="cpu", seed=seed, image_size=32)
    history = fit(model, Classification(), TensorSource(data.images, data.labels), QUICK, seed=seed, progress=False)
    return model, history, data


def test_same_seed_gives_the_same_model_and_history() -> None:
    (first, h1, data), (second, h2, _) = small_run(0), small_run(0)
    assert h1.logs == h2.logs and set(h1.logs) == {"loss", "accuracy", "images seen"}
    assert h1["images seen"] == [96.0, 192.0]
    assert torch.equal(first(data.images[:4]), second(data.images[:4]))
    _, h3, _ = small_run(1)
    assert h3["loss"] != h1["loss"]


def test_training_lowers_the_loss_and_learns_the_aligned_world() -> None:
    data = cueworld.make_split("aligned", 600, seed=0, size=32)
    model = load_model("lab_cnn", labels=cueworld.CLASS_NAMES, device="cpu", image_size=32)
    before = (decisions(model, data.images) == data.labels).float().mean().item()
    history = fit(model, Classification(), TensorSource(data.images, data.labels),
                  Recipe(epochs=4, batch_size=32, lr=4e-3), progress=False)
    assert history["loss"][-1] < history["loss"][0] and len(history["accuracy"]) == 4 and history.seconds > 0
    assert history.steps == 4 * 19
    after = (decisions(model, data.images) == data.labels).float().mean().item()
    assert after > 0.6 and after > before + 0.3


def test_a_stream_draws_fresh_images_every_epoch_and_repeats_with_its_seed() -> None:
    stream = CueWorldStream("aligned", images=40, seed=3, size=32)
    first, again = list(stream.batches(0, 16, seed=0)), list(stream.batches(0, 16, seed=0))
    second = list(stream.batches(1, 16, seed=0))
    assert [len(b[0]) for b in first] == [16, 16, 8]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))
    assert not torch.equal(first[0][0], second[0][0])
    test_images = cueworld.make_split("aligned", 16, seed=1, size=32).images
    assert not any(torch.equal(test_images, b[0]) for e in range(3) for b in stream.batches(e, 16, seed=0))
    with pytest.raises(ValueError, match="unknown cue-world split"):
        CueWorldStream("shapes", images=10)


class CountingObjective(Objective):
    """Classification through an extra head the objective owns, counting the hook's calls."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(6, 6)
        self.calls: list[tuple[int, int]] = []

    def step(self, model, batch):
        images, labels = batch
        loss = nn.functional.cross_entropy(self.head(model(images)), labels)
        return StepOutput(loss, {"loss": loss.detach()})

    def after_step(self, model, step, total_steps):
        self.calls.append((step, total_steps))


def test_objectives_own_their_heads_and_get_a_hook_after_every_step() -> None:
    data = cueworld.make_split("aligned", 64, seed=0, size=32)
    model = load_model("lab_cnn", labels=cueworld.CLASS_NAMES, device="cpu", image_size=32)
    objective = CountingObjective()
    before = objective.head.weight.clone()
    history = fit(model, objective, TensorSource(data.images, data.labels), Recipe(epochs=2, batch_size=32), progress=False)
    assert objective.calls == [(1, 4), (2, 4), (3, 4), (4, 4)] and history.steps == 4
    assert not torch.equal(before, objective.head.weight), "the objective's head was not trained"
    assert list(history.logs) == ["loss", "images seen"]
    with pytest.raises(KeyError, match="nothing logged as 'accuracy'; logged: loss, images seen"):
        history["accuracy"]


def test_report_has_every_split_and_a_shape_bias() -> None:
    model, _, _ = small_run(0)
    tests = {split: cueworld.make_split(split, 60, seed=5, size=32)
             for split in ("aligned", "conflict", "silhouette", "edges", "texture")}
    row = cue_world_report(model, tests)
    assert list(row) == ["aligned", "silhouette", "edges", "texture", "shape bias"]
    assert all(0 <= value <= 1 or value != value for value in row.values())
    assert cue_world_shape_bias(model, tests["conflict"]).overall == row["shape bias"] or row["shape bias"] != row["shape bias"]
    with pytest.raises(ValueError, match="needs the 'conflict' split"):
        cue_world_shape_bias(model, tests["aligned"])


def test_validation_data_gives_a_learning_curve_without_changing_the_model() -> None:
    train, held_out = (cueworld.make_split("aligned", n, seed=s, size=32) for n, s in ((96, 0), (64, 9)))
    runs = []
    for validation in (None, TensorSource(held_out.images, held_out.labels)):
        model = load_model("lab_cnn", labels=cueworld.CLASS_NAMES, device="cpu", image_size=32)
        runs.append((model, fit(model, Classification(), TensorSource(train.images, train.labels), QUICK,
                                validation=validation, progress=False)))
    (plain, h1), (validated, h2) = runs
    assert torch.equal(plain(held_out.images), validated(held_out.images)), "validating changed the training"
    assert len(h2["validation accuracy"]) == 2 and "validation accuracy" not in h1.logs
    final = (decisions(validated, held_out.images) == held_out.labels).float().mean().item()
    assert h2["validation accuracy"][-1] == pytest.approx(final)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="equal length"):
        TensorSource(torch.rand(10, 3, 64, 64), torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="epochs >= 1"):
        Recipe(epochs=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        Classification(label_smoothing=1.0)


def cached_run(**changes):
    """A tiny lab CNN through the trained-model cache."""
    settings = dict(objective=Classification(), data=CueWorldStream("aligned", images=64, seed=0, size=32),
                    recipe=Recipe(epochs=1, batch_size=32), seed=0, device="cpu", progress=False,
                    labels=cueworld.CLASS_NAMES, image_size=32)
    settings.update(changes)
    return train_or_load("lab_cnn", **settings)


def _cached_files() -> list[Path]:
    return sorted((Path(os.environ["VITLESSONS_CACHE"]) / "trained").glob("*.pt"))


def test_a_trained_model_is_cached_and_loaded_back() -> None:
    first = cached_run()
    assert not first.loaded and first.summary() == f"lab_cnn: trained in {first.seconds:.0f} s"
    second = cached_run()
    assert second.loaded and second.path == first.path and second.history.logs == first.history.logs
    assert second.summary().startswith(f"lab_cnn: loaded from the cache (trained in {first.seconds:.0f} s on cpu, ")
    images = torch.rand(3, 3, 32, 32)
    assert torch.equal(first.model(images), second.model(images))
    assert len(_cached_files()) == 1 and not list(first.path.parent.glob(".*.part")), "a temporary file was left"


@pytest.mark.parametrize("change", [
    dict(seed=1), dict(recipe=Recipe(epochs=1, batch_size=16)), dict(objective=Classification(label_smoothing=0.1)),
    dict(data=CueWorldStream("randomised", images=64, seed=0, size=32)), dict(labels=cueworld.CLASS_NAMES[::-1]), dict(image_size=16),
])
def test_every_part_of_the_key_gets_its_own_model(change: dict) -> None:
    cached_run()
    other = cached_run(**change)
    assert not other.loaded and len(_cached_files()) == 2


def test_a_change_in_the_training_code_retrains(monkeypatch: pytest.MonkeyPatch) -> None:
    import vitlessons.trained as trained

    cached_run()
    monkeypatch.setattr(trained, "code_version", lambda: "edited")
    assert not cached_run().loaded


@pytest.mark.parametrize("damage", ["truncate", "flip a weight", "other key"])
def test_a_damaged_cache_file_is_reported_and_retrained_never_used(damage: str) -> None:
    first = cached_run()
    stored = torch.load(first.path, weights_only=True)
    if damage == "truncate":
        first.path.write_bytes(first.path.read_bytes()[:1000])
    elif damage == "flip a weight":
        stored["states"]["model"]["net.fc.bias"] += 1
        torch.save(stored, first.path)
    else:
        stored["key"]["seed"] = 7
        torch.save(stored, first.path)
    with pytest.warns(UserWarning, match="cannot be used .*training lab_cnn again"):
        again = cached_run()
    assert not again.loaded
    assert torch.equal(again.model.net.fc.bias, first.model.net.fc.bias), "retraining did not give the same model"
    assert cached_run().loaded, "the rebuilt file was not written back"


def test_retrain_is_forced_by_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cached_run()
    assert not cached_run(retrain=True).loaded
    monkeypatch.setenv("VITLESSONS_RETRAIN", "1")
    assert not cached_run().loaded
