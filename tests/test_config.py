import time

import pytest
import torch

import vitlessons
from vitlessons import config


def test_scale_setting_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITLESSONS_SCALE", "Paper")
    assert config.scale_setting() == "paper"
    monkeypatch.setenv("VITLESSONS_SCALE", "huge")
    with pytest.raises(ValueError, match="lab.*paper.*auto"):
        config.scale_setting()


def test_auto_falls_back_to_lab_with_the_reason(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VITLESSONS_SCALE", "auto")
    start = time.perf_counter()
    assert config.choose_scale(models=("vit_b16",), stimuli=True) == "lab"
    assert time.perf_counter() - start < 5
    notice = capsys.readouterr().out
    assert "vit_b16" in notice and "cue-conflict stimuli" in notice and notice.count("\n") == 1
    assert config.choose_scale(models=("efficientnet_lite0",)) == "paper"  # ships with a package


def test_forced_scale_is_obeyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITLESSONS_SCALE", "lab")
    assert config.choose_scale(models=("efficientnet_lite0",)) == "lab"


def test_folders_follow_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("VITLESSONS_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("VITLESSONS_DATA", raising=False)
    assert config.data_dir() == tmp_path / "c" / "data"
    monkeypatch.setenv("VITLESSONS_DATA", str(tmp_path / "d"))
    assert config.data_dir() == tmp_path / "d"
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert config.hub_cache_dir() == tmp_path / "hf" / "hub"


def test_device_override_and_generators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITLESSONS_DEVICE", "cpu")
    assert config.device() == torch.device("cpu")
    a, b = config.generator(3), config.generator(3)
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))


def test_setup_prints_scale_device_seed_and_versions(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VITLESSONS_SCALE", "lab")
    chosen = vitlessons.setup(seed=7)
    out = capsys.readouterr().out
    assert chosen.scale == "lab" and chosen.seed == 7
    assert "scale=lab" in out and "seed=7" in out and f"torch {torch.__version__}" in out and "timm" in out
