"""mCE on hand-worked numbers, and the corruption sweep: its seeding, its resume after a crash, its distributed run
(two gloo processes give the single process's counts) and its command."""

import os
import socket
import zlib
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from vitlessons import robustness
from vitlessons.data import cueworld
from vitlessons.metrics import ALEXNET_ERRORS, corruption_errors, mce, relative_mce
from vitlessons.models.wrapper import Classifier, Preprocessing
from vitlessons.perturb import IMAGENET_C, SEVERITIES, corrupt
from vitlessons.robustness import SweepResult, corruption_sweep

CORRUPTIONS = ("gaussian_noise", "contrast")
CHOSEN_SEVERITIES = (2, 5)
CONDITIONS = 1 + len(CORRUPTIONS) * len(CHOSEN_SEVERITIES)  # the clean images count as one condition


# ----- mCE -------------------------------------------------------------------------------------

def test_alexnet_table_is_imagenet_c_in_order():
    assert tuple(ALEXNET_ERRORS) == IMAGENET_C
    assert mce({c: [e] * 5 for c, e in ALEXNET_ERRORS.items()}) == pytest.approx(100.0)


def test_one_corruption_error_by_hand_from_the_alexnet_table():
    errors = {c: [0.5] * 5 for c in IMAGENET_C} | {"gaussian_noise": [0.5, 0.6, 0.7, 0.8, 0.9]}
    # mean error 0.7 over AlexNet's 0.886428: 0.7 / 0.886428 = 0.789686...
    assert corruption_errors(errors)["gaussian_noise"] == pytest.approx(78.9686, abs=1e-4)
    # brightness: 0.5 / 0.564592 = 0.885595...
    assert corruption_errors(errors)["brightness"] == pytest.approx(88.5595, abs=1e-4)


def test_mce_against_a_per_severity_baseline_ignores_extra_corruptions():
    baseline = {"fog": [0.2, 0.3, 0.4, 0.5, 0.6], "snow": 0.5}  # a measured lab model beside a published mean
    errors = {"fog": [0.1, 0.2, 0.2, 0.3, 0.2], "snow": [0.75] * 5, "spatter": [1.0] * 5}
    assert corruption_errors(errors, baseline) == pytest.approx({"fog": 50.0, "snow": 150.0})
    assert mce(errors, baseline) == pytest.approx(100.0)


def test_relative_mce_by_hand():
    baseline = {"fog": 0.5, "snow": [0.4, 0.5, 0.5, 0.5, 0.6]}
    errors = {"fog": [0.3] * 5, "snow": [0.2, 0.3, 0.4, 0.5, 0.6]}
    # fog: (0.3 - 0.1) / (0.5 - 0.3) = 1.0; snow: (0.4 - 0.1) / (0.5 - 0.3) = 1.5
    assert relative_mce(errors, 0.1, baseline, baseline_clean=0.3) == pytest.approx(125.0)


@pytest.mark.parametrize("errors, baseline, message", [
    ({"fog": [0.1] * 5}, {"fog": 0.5, "snow": 0.5}, "lack 1 of the baseline's corruptions: snow"),
    ({"fog": [10.0] * 5}, {"fog": 0.5}, r"error rate in \[0, 1\], got 10.0"),
    ({"fog": [0.1] * 4}, {"fog": 0.5}, "must be 5 per-severity errors"),
    ({"fog": [0.1] * 5}, {"fog": [0.5] * 3}, "must be 5 per-severity errors"),
    ({"fog": [0.1] * 5}, {"fog": 0.0}, "must be positive"),
    ({"fog": [float("nan")] * 5}, {"fog": 0.5}, "got nan"),
])
def test_mce_refuses_what_it_cannot_score(errors, baseline, message):
    with pytest.raises(ValueError, match=message):
        mce(errors, baseline)


def test_relative_mce_refuses_a_baseline_no_worse_than_clean():
    with pytest.raises(ValueError, match="must be positive"):
        relative_mce({"fog": [0.5] * 5}, 0.2, {"fog": 0.4}, baseline_clean=0.4)


# ----- the sweep -------------------------------------------------------------------------------

class Counting(nn.Module):
    """A network that counts its calls and can fail on one, like a process whose machine is lost."""

    def __init__(self, net: nn.Module, fail_at: int | None = None):
        super().__init__()
        self.net, self.calls, self.fail_at = net, 0, fail_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("machine lost")
        return self.net(x)


def tiny_model(name: str, fail_at: int | None = None) -> Classifier:
    """A random two-layer conv net, the same in every process, whose decisions move with the pixels."""
    torch.manual_seed(zlib.crc32(name.encode()))
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2),
                        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, len(cueworld.CLASS_NAMES)))
    return Classifier(name, Counting(net, fail_at), Preprocessing(32, (0.5,) * 3, (0.1,) * 3, resize=False),
                      list(cueworld.CLASS_NAMES))


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    split = cueworld.make_split("aligned", 36, seed=1, size=32)  # 5 batches of 8, the last of 4
    return split.images, split.labels


def sweep(models, data, **options) -> SweepResult:
    return corruption_sweep(models, data, corruptions=CORRUPTIONS, severities=CHOSEN_SEVERITIES, batch_size=8,
                            progress=False, **options)


def test_sweep_counts_what_each_batch_gives_under_its_own_noise(images):
    model = tiny_model("a")
    result = sweep({"a": model}, images)
    assert result.total == 36
    with torch.no_grad():
        assert result.correct[("a", "clean", 0)] == (model(images[0]).argmax(-1) == images[1]).sum()
        noisy = torch.cat([corrupt(images[0][b * 8:(b + 1) * 8], "gaussian_noise", 5,
                                   robustness._generator(0, "gaussian_noise", 5, b, torch.device("cpu")))
                           for b in range(5)])
        assert result.correct[("a", "gaussian_noise", 5)] == (model(noisy).argmax(-1) == images[1]).sum()
    assert result.accuracy("a", "gaussian_noise") == pytest.approx(
        sum(result.correct[("a", "gaussian_noise", s)] for s in CHOSEN_SEVERITIES) / 72)
    assert result.errors("a")["contrast"] == [1 - result.accuracy("a", "contrast", s) for s in CHOSEN_SEVERITIES]
    assert SweepResult.from_json(result.to_json()) == result
    assert list(result.table().columns) == ["clean", *CORRUPTIONS]


def test_a_dataset_and_a_tensor_pair_give_the_same_counts_and_the_seed_matters(images):
    models = {"a": tiny_model("a"), "b": tiny_model("b")}
    pairs = list(zip(*images))
    assert sweep(models, pairs) == sweep(models, images)
    others = [sweep(models, images, seed=s).correct[("a", "gaussian_noise", 5)] for s in range(1, 4)]
    assert len(set(others)) > 1  # the noise, and so the counts, follow the seed


def test_to_classes_maps_probabilities_before_the_decision(images):
    model = tiny_model("a")
    result = sweep({"a": model}, images, to_classes={"a": lambda p: p.flip(-1)})  # class k read as class 5 - k
    with torch.no_grad():
        flipped = len(cueworld.CLASS_NAMES) - 1 - model(images[0]).argmax(-1)
    assert result.correct[("a", "clean", 0)] == (flipped == images[1]).sum()

def test_a_crashed_sweep_resumes_with_only_the_remaining_batches(images, tmp_path):
    expected = sweep({"a": tiny_model("a")}, images)
    crashing = tiny_model("a", fail_at=2 * CONDITIONS + 3)  # in batch 2, after batches 0 and 1 were saved
    with pytest.raises(RuntimeError, match="machine lost"):
        sweep({"a": crashing}, images, cache=tmp_path)
    resumed = tiny_model("a")
    assert sweep({"a": resumed}, images, cache=tmp_path) == expected
    assert resumed.net.calls == 3 * CONDITIONS
    finished = tiny_model("a")
    assert sweep({"a": finished}, images, cache=tmp_path) == expected
    assert finished.net.calls == 0


def test_a_damaged_partial_file_is_ignored_with_a_warning(images, tmp_path):
    expected = sweep({"a": tiny_model("a")}, images, cache=tmp_path)
    (partial,) = tmp_path.glob("sweep-*.pt")
    stored = torch.load(partial, weights_only=True)
    stored["counts"][-1] += 1  # an image more than its finished batches hold
    torch.save(stored, partial)
    with pytest.warns(UserWarning, match="counts do not fit"):
        assert sweep({"a": tiny_model("a")}, images, cache=tmp_path) == expected
    partial.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="ignoring the partial sweep"):
        assert sweep({"a": tiny_model("a")}, images, cache=tmp_path) == expected


def test_the_sweep_refuses_bad_settings(images):
    with pytest.raises(KeyError, match="unknown corruption 'fgo'"):
        corruption_sweep({"a": tiny_model("a")}, images, corruptions=["fgo"])
    with pytest.raises(ValueError, match="severities must be ints from 1 to 5"):
        corruption_sweep({"a": tiny_model("a")}, images, severities=[0, 1])
    with pytest.raises(ValueError, match="to_classes names"):
        corruption_sweep({"a": tiny_model("a")}, images, to_classes={"b": lambda p: p})


# ----- the command, on one process and on two ------------------------------------------------------

ARGS = ["--models", "a", "b", "--data", "cueworld:aligned:40", "--corruptions", ",".join(CORRUPTIONS),
        "--severities", "2,5", "--batch-size", "8", "--quiet"]


def fake_load_model(name, imagenet_classes, device, verbose) -> Classifier:
    """The command's model loading, without training the lab models."""
    return tiny_model(name)


def run_rank(rank: int, world: int, port: int, folder: Path) -> None:
    """One torchrun-like process: its environment, the command, and the result this rank returned."""
    torch.set_num_threads(1)  # two processes share the test machine's cores
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    sweep_once = robustness.corruption_sweep

    def recorded(*args, **kwargs):
        result = sweep_once(*args, **kwargs)
        (folder / f"rank{rank}.json").write_text(result.to_json())
        return result
    robustness._load_model, robustness.corruption_sweep = fake_load_model, recorded
    robustness.main([*ARGS, "--device", "cpu", "--out", str(folder / "out.json")])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_give_the_single_process_counts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(robustness, "_load_model", fake_load_model)
    assert robustness.main([*ARGS, "--device", "cpu", "--out", str(tmp_path / "single.json")]) == 0
    printed = capsys.readouterr().out
    assert "accuracy on 40 images" in printed and "gaussian_noise" in printed and "mCE" not in printed
    single = SweepResult.from_json((tmp_path / "single.json").read_text())

    # forked, not spawned: the children start with the test's imports instead of spending seconds on their own
    mp.start_processes(run_rank, args=(2, free_port(), tmp_path), nprocs=2, start_method="fork")  # 5 batches: 3 + 2
    ranks = [SweepResult.from_json((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1] == single
    assert SweepResult.from_json((tmp_path / "out.json").read_text()) == single
    assert single.total == 40 and len({n for key, n in single.correct.items() if key[0] == "a"}) > 1


def test_the_command_refuses_unknown_data_and_prints_mce_for_all_of_imagenet_c(capsys):
    with pytest.raises(SystemExit):
        robustness.main(["--models", "lab_cnn", "--data", "cueworld:nowhere"])
    assert "expected cueworld[:SPLIT[:N]]" in capsys.readouterr().err
    total = 10_000  # AlexNet's own errors, as counts
    correct = {("alexnet", c, s): round((1 - e) * total) for c, e in ALEXNET_ERRORS.items() for s in SEVERITIES}
    robustness._report(SweepResult(("alexnet",), IMAGENET_C, SEVERITIES, correct | {("alexnet", "clean", 0): 5655},
                                   total), None)
    assert "alexnet: mCE 100.0%, relative mCE 100.0%" in capsys.readouterr().out



# ----- chapter 5's views of a sweep ---------------------------------------------------------------

def test_by_family_averages_each_familys_corruptions_with_clean_as_severity_0():
    corruptions = ("gaussian_noise", "shot_noise", "fog")  # two noises and one weather corruption
    total = 10
    correct = {("a", "clean", 0): 9, ("b", "clean", 0): 7}
    for index, corruption in enumerate(corruptions):
        for s in SEVERITIES:
            correct[("a", corruption, s)] = max(0, 9 - s - index)  # falls with severity, differs by corruption
            correct[("b", corruption, s)] = 7 - (s + index) % 3
    result = SweepResult(("a", "b"), corruptions, SEVERITIES, correct, total)
    families = result.by_family()
    assert list(families) == ["noise", "weather"]
    for table in families.values():
        assert list(table.index) == [0, 1, 2, 3, 4, 5] and table.index.name == "severity"
        assert list(table.columns) == ["a", "b"]
        assert table.loc[0].tolist() == [0.9, 0.7]  # row 0: clean accuracy
    noise = families["noise"]
    assert noise.loc[3, "a"] == pytest.approx(((9 - 3) + (9 - 3 - 1)) / 2 / total)
    assert noise.loc[5, "b"] == pytest.approx(((7 - 5 % 3) + (7 - 6 % 3)) / 2 / total)
    assert families["weather"]["a"].tolist() == pytest.approx([0.9] + [max(0, 9 - s - 2) / total for s in SEVERITIES])


def test_by_family_follows_the_severities_that_were_run():
    correct = {("a", "clean", 0): 4, ("a", "contrast", 2): 3, ("a", "contrast", 5): 1}
    (table,) = SweepResult(("a",), ("contrast",), (2, 5), correct, 4).by_family().values()
    assert table["a"].to_dict() == {0: 1.0, 2: 0.75, 5: 0.25}


def test_tensors_stacks_the_first_items_of_a_dataset():
    images = torch.rand(5, 3, 8, 8)
    data = [(images[i], i % 3) for i in range(5)]
    stacked, labels = robustness.tensors(data, 3)
    assert stacked.shape == (3, 3, 8, 8) and torch.equal(stacked, images[:3])
    assert labels.tolist() == [0, 1, 2] and labels.dtype == torch.int64
    everything, all_labels = robustness.tensors(data)
    assert torch.equal(everything, images) and all_labels.tolist() == [0, 1, 2, 0, 1]
    assert len(robustness.tensors(data, 50)[0]) == 5  # a limit beyond the data takes it all
