import pytest
import torch

from vitlessons.data import cueworld
from vitlessons.evaluate import cue_world_report, cue_world_shape_bias, decisions
from vitlessons.models import load_model
from vitlessons.train import fit


def small_run(seed: int):
    data = cueworld.make_split("aligned", 96, seed=0, size=32)
    model = load_model("lab_cnn", labels=cueworld.CLASS_NAMES, device="cpu", seed=seed, image_size=32)
    history = fit(model, data.images, data.labels, epochs=2, batch_size=32, seed=seed, progress=False)
    return model, history, data


def test_same_seed_gives_the_same_model_and_history() -> None:
    (first, h1, data), (second, h2, _) = small_run(0), small_run(0)
    assert h1.loss == h2.loss and h1.accuracy == h2.accuracy
    assert torch.equal(first(data.images[:4]), second(data.images[:4]))
    _, h3, _ = small_run(1)
    assert h3.loss != h1.loss


def test_training_lowers_the_loss_and_learns_the_aligned_world() -> None:
    data = cueworld.make_split("aligned", 600, seed=0, size=32)
    model = load_model("lab_cnn", labels=cueworld.CLASS_NAMES, device="cpu", image_size=32)
    before = (decisions(model, data.images) == data.labels).float().mean().item()
    history = fit(model, data.images, data.labels, epochs=4, batch_size=32, lr=4e-3, progress=False)
    assert history.loss[-1] < history.loss[0] and len(history.accuracy) == 4 and history.seconds > 0
    after = (decisions(model, data.images) == data.labels).float().mean().item()
    assert after > 0.6 and after > before + 0.3


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


def test_mismatched_lengths_are_refused() -> None:
    model = load_model("lab_cnn", labels=["a", "b"], device="cpu")
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        fit(model, torch.rand(10, 3, 64, 64), torch.zeros(9, dtype=torch.long), progress=False)
