"""Every test runs offline and leaves the user's caches alone."""

import os

import matplotlib
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # an offline pretrained=True would otherwise hang ~47 s
os.environ["VITLESSONS_OFFLINE"] = "1"  # and no server is even asked (GitHub, for the stimuli)
matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def private_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point our cache and the Hugging Face cache at empty folders, so no test sees real downloads."""
    root = tmp_path_factory.mktemp("caches")
    monkeypatch.setenv("VITLESSONS_CACHE", str(root / "vitlessons"))
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hf"))
