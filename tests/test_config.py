import pytest
import torch

from vitlessons import config


def test_scale_setting_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITLESSONS_SCALE", "Paper")
    assert config.scale_setting() == "paper"
    monkeypatch.setenv("VITLESSONS_SCALE", "huge")
    with pytest.raises(ValueError, match="lab.*paper.*auto"):
        config.scale_setting()


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


def test_paper_preview_limit_is_a_positive_whole_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VITLESSONS_PAPER_IMAGES", raising=False)
    assert config.paper_images() is None
    monkeypatch.setenv("VITLESSONS_PAPER_IMAGES", " 32 ")
    assert config.paper_images() == 32
    for bad in ("0", "-4", "lots", "2.5"):
        monkeypatch.setenv("VITLESSONS_PAPER_IMAGES", bad)
        with pytest.raises(ValueError, match="positive whole number"):
            config.paper_images()
