"""Where things live, which device runs them, which scale a notebook runs at, and seeding.

Every setting comes from an environment variable so that a classroom can set it once:

- ``VITLESSONS_SCALE``: ``lab``, ``paper`` or ``auto`` (default ``auto``).
- ``VITLESSONS_CACHE``: our cache (default ``~/.cache/vitlessons``).
- ``VITLESSONS_DATA``: downloaded datasets (default ``$VITLESSONS_CACHE/data``).
- ``VITLESSONS_DEVICE``: force a device (``cpu``, ``cuda``, ``mps``); otherwise cuda, then mps, then cpu.

Hub weights stay in the libraries' own caches (``HF_HOME`` for timm and open_clip), so a model
fetched once by any tool is found by all of them.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
from dataclasses import dataclass
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


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the model hub answers within ``timeout`` seconds (False at once if HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", HUB_ENDPOINT))
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def choose_scale(models: tuple[str, ...] = (), stimuli: bool = False) -> str:
    """Resolve ``auto`` to ``paper`` when what a notebook needs is at hand, else ``lab`` with the reason."""
    asked = scale_setting()
    if asked != "auto":
        return asked
    from vitlessons.data.stimuli import stimuli_available
    from vitlessons.models.registry import weights_available

    missing = [name for name in models if not weights_available(name)]
    if stimuli and not stimuli_available():
        missing.append("cue-conflict stimuli")
    if not missing:
        return "paper"
    print(f"Scale: lab (paper scale needs {', '.join(missing)}, neither cached nor reachable).")
    return "lab"


@dataclass(frozen=True)
class Setup:
    """What ``setup()`` decided, so a notebook can use it and print it."""

    scale: str
    device: torch.device
    seed: int

    def __str__(self) -> str:
        return f"scale={self.scale} device={self.device} seed={self.seed}"


def versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour the numbers depend on."""
    import numpy
    import open_clip
    import timm

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "open_clip": open_clip.__version__,
        "numpy": numpy.__version__,
    }


def setup(seed: int = 0, models: tuple[str, ...] = (), stimuli: bool = False) -> Setup:
    """Seed, pick the device and the scale, and print them with library versions."""
    torch.manual_seed(seed)  # model initialisation draws from the global generator
    chosen = Setup(scale=choose_scale(models, stimuli), device=device(), seed=seed)
    print(chosen)
    print("  ".join(f"{name} {version}" for name, version in versions().items()))
    return chosen
