"""Where things live, which device runs them, what can be reached, and seeding (``session`` picks the scale).

Every setting comes from an environment variable so that a classroom can set it once:

- ``VITLESSONS_SCALE``: ``lab``, ``paper`` or ``auto`` (default ``auto``).
- ``VITLESSONS_CACHE``: our cache (default ``~/.cache/vitlessons``).
- ``VITLESSONS_DATA``: downloaded datasets (default ``$VITLESSONS_CACHE/data``).
- ``VITLESSONS_DEVICE``: force a device (``cpu``, ``cuda``, ``mps``); otherwise cuda, then mps, then cpu.
- ``VITLESSONS_OFFLINE=1``: treat every server as unreachable without asking (the tests set it).
- ``VITLESSONS_PAPER_IMAGES=N``: a paper-scale *preview*, each evaluation on at most N of its images
  (a check on a CPU that the paper-scale sections run; its numbers are not the paper's).

Hub weights stay in the libraries' own caches (``HF_HOME`` for timm and open_clip), so a model
fetched once by any tool is found by all of them.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

SCALES = ("lab", "paper", "auto")
HUB_ENDPOINT = "https://huggingface.co"


def scale_setting() -> str:
    """The scale asked for in ``VITLESSONS_SCALE``, validated so a typo fails loudly."""
    value = os.environ.get("VITLESSONS_SCALE", "auto").strip().lower()
    if value not in SCALES:
        raise ValueError(f"VITLESSONS_SCALE must be one of {SCALES}, got {value!r}")
    return value


def paper_images() -> int | None:
    """The preview limit in ``VITLESSONS_PAPER_IMAGES`` (images per paper-scale evaluation), or None for all."""
    value = os.environ.get("VITLESSONS_PAPER_IMAGES", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"VITLESSONS_PAPER_IMAGES must be a positive whole number of images, got {value!r}")
    return int(value)


def cache_dir() -> Path:
    """Root of our own cache (zero-shot heads, small derived files)."""
    default = Path.home() / ".cache" / "vitlessons"
    return Path(os.environ.get("VITLESSONS_CACHE", default)).expanduser()


def data_dir() -> Path:
    """Where downloaded datasets such as the cue-conflict stimuli are kept."""
    return Path(os.environ.get("VITLESSONS_DATA", cache_dir() / "data")).expanduser()


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment when asked (HF_HUB_CACHE, then HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface")
    return Path(home).expanduser() / "hub"


def device() -> torch.device:
    """The fastest available device: cuda, then mps, then cpu (``VITLESSONS_DEVICE`` overrides)."""
    forced = os.environ.get("VITLESSONS_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A seeded generator, so randomness is passed around explicitly instead of read from globals."""
    return torch.Generator(device=device).manual_seed(int(seed))


@functools.lru_cache(maxsize=None)
def reachable(url: str, timeout: float = 2.0) -> bool:
    """Whether the server of ``url`` accepts a connection within ``timeout`` seconds (asked once per session)."""
    if _flag("VITLESSONS_OFFLINE"):
        return False
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable() -> bool:
    """Whether the model hub answers (False at once if HF_HUB_OFFLINE is set, as the libraries then won't ask)."""
    if _flag("HF_HUB_OFFLINE"):
        return False
    return reachable(os.environ.get("HF_ENDPOINT", HUB_ENDPOINT))


def _flag(name: str) -> bool:
    """An environment variable read as a boolean switch."""
    return os.environ.get(name, "0").strip().lower() in ("1", "true", "yes", "on")


def has_gpu(chosen: torch.device | None = None) -> bool:
    """Whether the device work runs on is an accelerator (cuda or mps), where paper scale takes minutes."""
    return (chosen or device()).type in ("cuda", "mps")
