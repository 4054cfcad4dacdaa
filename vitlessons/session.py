"""The scale a chapter runs at, and the setup line every chapter prints.

``VITLESSONS_SCALE=auto`` (the default) picks paper scale only where it is practical: everything the
chapter's paper-scale sections need is cached, or it can be downloaded and a GPU will do the work.
Otherwise it picks lab scale, and says what paper scale would cost here and how to ask for it anyway.
"""

from __future__ import annotations

import functools
import platform
import time
from dataclasses import dataclass, field

import torch

from vitlessons.config import device as default_device
from vitlessons.config import has_gpu, hub_reachable, paper_images, reachable, scale_setting

STIMULI = "cue-conflict stimuli"
SKETCH_DOWNLOADS = {"edges": "edge stimuli", "silhouettes": "silhouette stimuli"}  # Geirhos's sketches (chapter 4)
IMAGENETTE = "Imagenette"
ASK_FOR_PAPER = "set VITLESSONS_SCALE=paper before setup() (in a notebook: os.environ['VITLESSONS_SCALE'] = 'paper')"


@dataclass(frozen=True)
class PaperScale:
    """What a chapter's paper-scale sections need, so that ``auto`` can judge whether they are practical here."""

    models: tuple[str, ...] = ()
    stimuli: bool = False  # the 1,280 cue-conflict stimuli
    sketches: bool = False  # the 160 edge and 160 silhouette stimuli
    images: int = 0  # how many images each model classifies
    imagenet_classes: tuple[int, ...] | None = None  # the ImageNet classes scored (CLIP's head is built for these)
    labelled_images: bool = False  # ImageNet's validation set where the user has it, else Imagenette


@dataclass(frozen=True)
class PaperCost:
    """What paper scale would take on this machine: downloads (MB) of what is missing, and estimated compute."""

    downloads: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    device: torch.device = torch.device("cpu")

    def __str__(self) -> str:
        parts = []
        if self.downloads:
            listed = ", ".join(f"{name} {mb:.0f} MB" for name, mb in self.downloads.items())
            parts.append(f"download {_megabytes(sum(self.downloads.values()))} ({listed})")
        parts.append(f"compute for about {_duration(self.seconds)} on this {self.device.type} (estimated)")
        return " and ".join(parts)


def paper_cost(needs: PaperScale, on: torch.device | None = None) -> PaperCost:
    """Downloads and compute that ``needs`` costs here, from the registry's sizes and this device's speed."""
    from vitlessons.data import download, imagenet
    from vitlessons.data.stimuli import stimuli_available, stimuli_dir
    from vitlessons.models.registry import cached_weights, get_spec

    on = on or default_device()
    specs = [get_spec(name) for name in needs.models]
    downloads = {s.name: s.download_mb for s in specs if s.hub_files is not None and cached_weights(s.name) is None}
    if needs.stimuli and not stimuli_available():
        downloads[STIMULI] = download.SETS["cue-conflict"].megabytes
    for kind, what in SKETCH_DOWNLOADS.items():
        if needs.sketches and not stimuli_available(stimuli_dir(kind), expected=download.SETS[kind].files):
            downloads[what] = download.SETS[kind].megabytes
    if needs.labelled_images and not imagenet.paper_images_available():
        downloads[IMAGENETTE] = imagenet.DOWNLOAD_MB["imagenette"]
    images = min(needs.images, paper_images() or needs.images)
    gflops = images * sum(s.gflops for s in specs)
    gflops += sum(_prompts_to_encode(s, needs.imagenet_classes) * s.text_gflops for s in specs if s.text_gflops)
    return PaperCost(downloads, gflops * 1e9 / device_flops(on), on)


def _prompts_to_encode(spec, imagenet_classes: tuple[int, ...] | None) -> int:
    """Prompts CLIP's zero-shot head still has to encode for these classes (the cache holds the rest)."""
    import open_clip

    from vitlessons.models.clip import missing_classes
    from vitlessons.models.hub import imagenet_class_indices, imagenet_classnames

    templates = open_clip.OPENAI_IMAGENET_TEMPLATES
    names = imagenet_classnames(imagenet_class_indices(imagenet_classes))
    return len(missing_classes(spec.builder.identifier, spec.builder.pretrained, names, templates)) * len(templates)


@functools.lru_cache(maxsize=None)
def device_flops(on: torch.device) -> float:
    """Floating-point operations per second of a float32 matrix product here: the scale for time estimates.

    On two CPU cores, transformer inference and CLIP's text encoder run at about this rate, CNNs somewhat
    slower; a tenth of a second of measurement gives estimates good to tens of percent, enough to choose.
    """
    n = 1024 if on.type == "cpu" else 4096
    a = b = torch.full((n, n), 0.5, device=on)  # constants: no draw from the global generator the lab models use
    _synchronise(a @ b)
    repeats, start = 3, time.perf_counter()
    for _ in range(repeats):
        product = a @ b
    _synchronise(product)
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def _synchronise(result: torch.Tensor) -> None:
    """Wait for an accelerator to finish, so that timing measures the work."""
    result.sum().item()


def _unreachable(downloads: dict[str, float]) -> list[str]:
    """The missing things whose server does not answer: the hub for weights, GitHub for the stimuli, S3 for Imagenette."""
    from vitlessons.data.download import API_BASE
    from vitlessons.data.imagenet import ARCHIVES

    servers = {STIMULI: API_BASE, **{what: API_BASE for what in SKETCH_DOWNLOADS.values()}, IMAGENETTE: ARCHIVES["imagenette"].url}
    return [name for name in downloads if not (reachable(servers[name]) if name in servers else hub_reachable())]


def choose_scale(needs: PaperScale | None = None, on: torch.device | None = None) -> str:
    """Resolve ``auto``: paper scale when it is cached, or reachable and a GPU is here; else lab, saying why."""
    asked = scale_setting()
    if asked == "lab":
        return "lab"
    needs = needs or PaperScale()
    cost = paper_cost(needs, on)
    if asked == "paper":
        print(f"Scale: paper, as asked; it will {cost}.")
        return "paper"
    unreachable = _unreachable(cost.downloads)
    if unreachable:
        print(f"Scale: lab (paper scale needs {', '.join(unreachable)}, neither cached nor reachable).")
        return "lab"
    if not cost.downloads or has_gpu(cost.device):
        print(f"Scale: paper ({'everything it needs is cached' if not cost.downloads else 'a GPU is here'}; it will {cost}).")
        return "paper"
    print(f"Scale: lab (paper scale here would {cost}; to run it anyway, {ASK_FOR_PAPER}).")
    return "lab"


@dataclass(frozen=True)
class Setup:
    """What ``setup()`` decided, so a notebook can use it and print it."""

    scale: str
    device: torch.device
    seed: int
    paper_images: int | None = None  # a paper-scale preview: at most this many images per evaluation

    def __str__(self) -> str:
        preview = f" preview={self.paper_images} images per evaluation" if self.paper_images else ""
        return f"scale={self.scale} device={self.device} seed={self.seed}{preview}"


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


def setup(seed: int = 0, paper: PaperScale | None = None) -> Setup:
    """Seed, pick the device and the scale (for what the chapter's paper-scale sections need), and print them."""
    torch.manual_seed(seed)  # model initialisation draws from the global generator
    on = default_device()
    scale = choose_scale(paper, on)
    chosen = Setup(scale=scale, device=on, seed=seed, paper_images=paper_images() if scale == "paper" else None)
    print(chosen)
    print("  ".join(f"{name} {version}" for name, version in versions().items()))
    return chosen


def _megabytes(mb: float) -> str:
    """A download size as a person reads it."""
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB"


def _duration(seconds: float) -> str:
    """A rough duration: seconds, minutes or hours."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
