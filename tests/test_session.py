"""`auto` picks a scale this machine can run: paper when cached, or reachable with a GPU; else lab, saying the cost."""

import time
from pathlib import Path

import open_clip
import pytest
import torch
from paper_fakes import fake_clip_head, hub_snapshot

import vitlessons
from vitlessons import session
from vitlessons.data.categories import CATEGORIES, SIXTEEN_CLASS_INDICES
from vitlessons.models.registry import get_spec

CHAPTER_1 = session.PaperScale(models=("resnet50", "vit_b16", "deit_s", "clip_b32", "efficientnet_lite0"),
                               stimuli=True, images=1280, imagenet_classes=SIXTEEN_CLASS_INDICES)
CPU, GPU = torch.device("cpu"), torch.device("cuda")


@pytest.fixture
def steady_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A device speed of 100 GFLOP/s, so estimates are the same on every machine (and no GPU is touched)."""
    monkeypatch.setattr(session, "device_flops", lambda on: 100e9)


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub and GitHub answer (simulated: nothing is downloaded by these tests)."""
    monkeypatch.setattr(session, "hub_reachable", lambda: True)
    monkeypatch.setattr(session, "reachable", lambda url: True)


def cache_everything(monkeypatch: pytest.MonkeyPatch, hub: Path) -> None:
    """Lay out the weights in the Hugging Face cache, the stimuli as present, and CLIP's head for the 207 classes."""
    for name in ("resnet50", "vit_b16", "deit_s", "clip_b32"):
        repo, filenames = get_spec(name).hub_files
        (hub_snapshot(hub, repo) / filenames[0]).write_bytes(b"weights")
    monkeypatch.setattr("vitlessons.data.stimuli.stimuli_available", lambda: True)
    fake_clip_head("clip_b32", SIXTEEN_CLASS_INDICES)


def test_offline_without_the_weights_is_lab_with_the_reason(monkeypatch, capsys, steady_speed) -> None:
    monkeypatch.setenv("VITLESSONS_SCALE", "auto")
    start = time.perf_counter()
    assert session.choose_scale(CHAPTER_1, CPU) == "lab"
    assert time.perf_counter() - start < 10
    notice = capsys.readouterr().out
    assert "vit_b16" in notice and "cue-conflict stimuli" in notice and "neither cached nor reachable" in notice
    assert notice.count("\n") == 1


def test_a_cpu_with_internet_gets_lab_and_the_cost_of_paper(monkeypatch, capsys, steady_speed, online) -> None:
    """The user studying alone on a laptop: no hour-long surprise, but the price and how to pay it."""
    monkeypatch.setenv("VITLESSONS_SCALE", "auto")
    assert session.choose_scale(CHAPTER_1, CPU) == "lab"
    notice = capsys.readouterr().out
    assert notice.count("\n") == 1
    assert "download 1.3 GB" in notice and "clip_b32 605 MB" in notice and "cue-conflict stimuli 136 MB" in notice
    assert "on this cpu" in notice and "VITLESSONS_SCALE=paper" in notice
    expected = (1280 * (8.2 + 35.1 + 9.2 + 5.9 + 0.77) + 207 * 80 * 5.8) / 100 / 60  # minutes at 100 GFLOP/s
    assert f"about {round(expected)} min" in notice


def test_a_gpu_with_internet_gets_paper(monkeypatch, capsys, steady_speed, online) -> None:
    monkeypatch.setenv("VITLESSONS_SCALE", "auto")
    assert session.choose_scale(CHAPTER_1, GPU) == "paper"
    notice = capsys.readouterr().out
    assert "a GPU is here" in notice and "download 1.3 GB" in notice and "on this cuda" in notice


def test_everything_cached_is_paper_even_on_a_cpu(monkeypatch, capsys, tmp_path, steady_speed) -> None:
    """A classroom that prefetched (weights, stimuli, CLIP's head) runs paper scale on its CPUs, offline."""
    monkeypatch.setenv("VITLESSONS_SCALE", "auto")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cache_everything(monkeypatch, tmp_path / "hub")
    assert session.paper_cost(CHAPTER_1, CPU).downloads == {}
    assert session.choose_scale(CHAPTER_1, CPU) == "paper"
    notice = capsys.readouterr().out
    assert "everything it needs is cached" in notice
    expected = 1280 * (8.2 + 35.1 + 9.2 + 5.9 + 0.77) / 100 / 60  # the head is cached: only the stimuli remain
    assert f"about {round(expected)} min" in notice


def test_a_preview_costs_its_images_and_is_shown(monkeypatch, capsys, tmp_path, steady_speed) -> None:
    monkeypatch.setenv("VITLESSONS_PAPER_IMAGES", "64")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cache_everything(monkeypatch, tmp_path / "hub")
    assert session.paper_cost(CHAPTER_1, CPU).seconds == pytest.approx(64 * (8.2 + 35.1 + 9.2 + 5.9 + 0.77) / 100)
    monkeypatch.setenv("VITLESSONS_SCALE", "paper")
    chosen = vitlessons.setup(paper=CHAPTER_1)
    assert chosen.paper_images == 64 and "preview=64 images per evaluation" in capsys.readouterr().out
    monkeypatch.setenv("VITLESSONS_SCALE", "lab")
    assert vitlessons.setup(paper=CHAPTER_1).paper_images is None  # a preview of paper scale only


def test_clip_head_costs_what_is_not_cached(steady_speed) -> None:
    """The 16-category decision needs 207 classes, a fifth of ImageNet's prompts; cached classes cost nothing."""
    clip = session.PaperScale(models=("clip_b32",))
    subset = session.PaperScale(models=("clip_b32",), imagenet_classes=SIXTEEN_CLASS_INDICES)
    per_class = 80 * 5.8 / 100  # seconds: 80 prompts of 5.8 GFLOPs at 100 GFLOP/s
    distinct = len(set(open_clip.IMAGENET_CLASSNAMES))  # two ImageNet classes share a name, and so a prompt
    assert session.paper_cost(clip, CPU).seconds == pytest.approx(distinct * per_class)
    assert session.paper_cost(subset, CPU).seconds == pytest.approx(207 * per_class)
    fake_clip_head("clip_b32", SIXTEEN_CLASS_INDICES[:100])
    assert session.paper_cost(subset, CPU).seconds == pytest.approx(107 * per_class)


def test_asking_is_obeyed_and_paper_says_what_it_costs(monkeypatch, capsys, steady_speed) -> None:
    monkeypatch.setenv("VITLESSONS_SCALE", "lab")
    assert session.choose_scale(CHAPTER_1, GPU) == "lab"
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("VITLESSONS_SCALE", "paper")
    assert session.choose_scale(CHAPTER_1, CPU) == "paper"
    assert "Scale: paper, as asked; it will download 1.3 GB" in capsys.readouterr().out


def test_package_models_need_nothing(monkeypatch, steady_speed) -> None:
    monkeypatch.setenv("VITLESSONS_SCALE", "auto")
    assert session.choose_scale(session.PaperScale(models=("efficientnet_lite0",), images=8), CPU) == "paper"


def test_device_speed_is_measured() -> None:
    assert 1e8 < session.device_flops(CPU) < 1e15


def test_setup_prints_scale_device_seed_and_versions(monkeypatch, capsys) -> None:
    monkeypatch.setenv("VITLESSONS_SCALE", "lab")
    chosen = vitlessons.setup(seed=7)
    out = capsys.readouterr().out
    assert chosen.scale == "lab" and chosen.seed == 7
    assert "scale=lab" in out and "seed=7" in out and f"torch {torch.__version__}" in out and "timm" in out


def test_choosing_the_scale_leaves_the_global_generator_alone(monkeypatch) -> None:
    """Lab models draw dropout from the global generator after setup(): the choice must not move it."""
    monkeypatch.setenv("VITLESSONS_SCALE", "auto")
    session.device_flops.cache_clear()
    state = torch.get_rng_state()
    session.choose_scale(CHAPTER_1, CPU)
    assert torch.equal(state, torch.get_rng_state())


# ----- chapter 5: labelled images (ImageNet val where the user has it, else Imagenette) -----------

LABELLED = session.PaperScale(labelled_images=True)


@pytest.fixture
def no_labelled_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither ImageNet val named nor Imagenette fetched: datasets in the test's private cache."""
    monkeypatch.delenv("VITLESSONS_IMAGENET_VAL", raising=False)
    monkeypatch.delenv("VITLESSONS_DATA", raising=False)


def test_labelled_images_cost_the_imagenette_download_when_missing(no_labelled_images, steady_speed) -> None:
    from vitlessons.data import imagenet

    assert not imagenet.paper_images_available()
    assert session.paper_cost(LABELLED, CPU).downloads == {"Imagenette": imagenet.DOWNLOAD_MB["imagenette"]}
    assert imagenet.DOWNLOAD_MB["imagenette"] == pytest.approx(341.7)
    assert "Imagenette 342 MB" in str(session.paper_cost(LABELLED, CPU))
    assert session.paper_cost(session.PaperScale(), CPU).downloads == {}  # only a chapter that asks pays


def test_imagenet_val_named_needs_no_imagenette(no_labelled_images, monkeypatch, tmp_path, steady_speed) -> None:
    monkeypatch.setenv("VITLESSONS_IMAGENET_VAL", str(tmp_path))
    assert session.paper_cost(LABELLED, CPU).downloads == {}
    monkeypatch.setenv("VITLESSONS_IMAGENET_VAL", "  ")  # blank is unset
    assert "Imagenette" in session.paper_cost(LABELLED, CPU).downloads


def test_a_fetched_imagenette_needs_no_download(no_labelled_images, monkeypatch, capsys, steady_speed) -> None:
    from paper_fakes import fake_imagenette

    from vitlessons import config
    from vitlessons.data import imagenet

    root = imagenet.dataset_dir("imagenette")
    assert root.is_relative_to(config.cache_dir())  # the test's private cache, not the user's data
    fake_imagenette(root, per_class=1)
    assert imagenet.paper_images_available()
    assert session.paper_cost(LABELLED, CPU).downloads == {}
    monkeypatch.setenv("VITLESSONS_SCALE", "auto")
    assert session.choose_scale(LABELLED, CPU) == "paper"
    assert "everything it needs is cached" in capsys.readouterr().out


def test_offline_without_imagenette_is_lab_naming_it(no_labelled_images, monkeypatch, capsys, steady_speed) -> None:
    monkeypatch.setenv("VITLESSONS_SCALE", "auto")
    monkeypatch.setenv("VITLESSONS_OFFLINE", "1")
    assert session.choose_scale(LABELLED, GPU) == "lab"  # a GPU does not help with what cannot be fetched
    notice = capsys.readouterr().out
    assert notice == "Scale: lab (paper scale needs Imagenette, neither cached nor reachable).\n"


def test_sketches_cost_their_download_until_fetched(monkeypatch, tmp_path, steady_speed) -> None:
    """Chapter 4's edges and silhouettes are a download of their own, and no longer one once in the data directory."""
    monkeypatch.setenv("VITLESSONS_DATA", str(tmp_path))
    needs = session.PaperScale(sketches=True)
    assert set(session.paper_cost(needs, CPU).downloads) == {"edge stimuli", "silhouette stimuli"}
    for kind in ("edges", "silhouettes"):
        for index, category in enumerate(CATEGORIES):
            (tmp_path / kind / category).mkdir(parents=True)
            for n in range(1, 11):
                (tmp_path / kind / category / f"{category}{n}.png").write_bytes(b"png")
    assert session.paper_cost(needs, CPU).downloads == {}
    assert session.paper_cost(session.PaperScale(), CPU).downloads == {}
