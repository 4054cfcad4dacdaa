"""Every test runs offline and leaves the user's caches alone.

Unit tests each get private, empty caches. Notebook runs (nbval, the student versions, the browser test)
share one cache for the whole test run instead, so the lab models that the first run of a chapter trains
are loaded, not retrained, by the others: the trained-model cache at work, and what keeps the suite's time
within CI's limit as chapters are added.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # an offline pretrained=True would otherwise hang ~47 s
os.environ["VITLESSONS_OFFLINE"] = "1"  # and no server is even asked (GitHub, for the stimuli)
matplotlib.use("Agg")

SHARED = Path(tempfile.mkdtemp(prefix="vitlessons-tests-"))
atexit.register(shutil.rmtree, SHARED, ignore_errors=True)
SHARED_CACHES = {"VITLESSONS_CACHE": str(SHARED / "vitlessons"), "HF_HUB_CACHE": str(SHARED / "hf")}
os.environ.update(SHARED_CACHES)  # what nbval's kernels inherit


@pytest.fixture(autouse=True)
def private_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point our cache and the Hugging Face cache at empty folders, so no test sees real downloads."""
    root = tmp_path_factory.mktemp("caches")
    monkeypatch.setenv("VITLESSONS_CACHE", str(root / "vitlessons"))
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hf"))


@pytest.fixture
def notebook_caches(private_caches: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The test run's shared caches, for a test that executes a chapter as a whole."""
    for name, value in SHARED_CACHES.items():
        monkeypatch.setenv(name, value)
    return SHARED_CACHES
