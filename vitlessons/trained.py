"""Lab models trained once: the first chapter that asks for a model trains and caches it, every later ask loads it.

A trained lab model is determined by its architecture (name and options), objective, recipe, training
data, seed and the training code itself. All of that is the cache key; the weights go under
``VITLESSONS_CACHE/trained/``. A file that fails to load, holds another key or fails its checksum is
reported, retrained and replaced, never used. ``retrain=True`` (or ``VITLESSONS_RETRAIN=1``) trains anew.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vitlessons.config import cache_dir
from vitlessons.models import Classifier, load_model
from vitlessons.objectives import Objective
from vitlessons.storage import CacheDamaged, load_checked, save_checked
from vitlessons.train import History, Recipe, Source, fit

FORMAT = 2  # 2: weights stored through storage.save_checked
PACKAGE = Path(__file__).resolve().parent
# The code that decides what training produces: a change to any of it retrains every cached model.
TRAINING_CODE = ("train.py", "objectives", "models/lab.py", "models/text.py", "models/wrapper.py", "data/cueworld.py",
                 "data/sources.py", "perturb/crops.py")


@dataclass
class TrainedModel:
    """A lab model ready to evaluate, with how it was trained and whether this call trained it."""

    model: Classifier
    history: History
    seconds: float  # training time, on the machine that trained it
    trained_on: str  # device and date
    loaded: bool
    path: Path

    def summary(self) -> str:
        """One line a notebook prints: what happened just now."""
        if self.loaded:
            return f"{self.model.name}: loaded from the cache (trained in {self.seconds:.0f} s on {self.trained_on})"
        return f"{self.model.name}: trained in {self.seconds:.0f} s"


def code_version() -> str:
    """A digest of the training code's source, so an edit to the loop, a model or the data invalidates the cache."""
    digest = hashlib.sha256()
    for entry in TRAINING_CODE:
        for file in sorted((PACKAGE / entry).rglob("*.py")) if (PACKAGE / entry).is_dir() else [PACKAGE / entry]:
            digest.update(file.relative_to(PACKAGE).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def training_key(name: str, options: dict[str, Any], objective: Objective, data: Source, recipe: Recipe,
                 seed: int, validation: Source | None = None) -> dict[str, Any]:
    """Everything that determines the trained weights (and the validation data of the learning curve), as JSON."""
    return json.loads(json.dumps({
        "format": FORMAT, "model": name, "options": options, "objective": objective.config(),
        "data": data.config(), "recipe": recipe.config(), "seed": seed, "code": code_version(),
        "validation": validation.config() if validation is not None else None,
    }, sort_keys=True))


def cache_path(key: dict[str, Any]) -> Path:
    """Where the model with this key lives."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(cache_dir()) / "trained" / f"{key['model']}-{digest}.pt"


def train_or_load(name: str, objective: Objective, data: Source, recipe: Recipe, seed: int = 0,
                  device: torch.device | str | None = None, validation: Source | None = None, retrain: bool = False,
                  progress: bool = True, **options: Any) -> TrainedModel:
    """The lab model ``name`` (built with ``options``) trained on ``data``: from the cache, or trained and cached now."""
    model = load_model(name, device=device, seed=seed, **options)
    key = training_key(name, options, objective, data, recipe, seed, validation)
    path = cache_path(key)
    if path.exists() and not (retrain or os.environ.get("VITLESSONS_RETRAIN") == "1"):
        try:
            return _restore(model, objective, key, path)
        except CacheDamaged as error:
            warnings.warn(f"{path} cannot be used ({error}); training {name} again", stacklevel=2)
            model = load_model(name, device=device, seed=seed, **options)  # a failed load may have copied some weights
    history = fit(model, objective, data, recipe, seed=seed, validation=validation, progress=progress)
    trained_on = f"{next(model.parameters()).device.type}, {datetime.date.today().isoformat()}"
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    heads = {k: v.detach().cpu() for k, v in objective.state_dict().items()}
    save_checked(path, key, {"model": state, "objective": heads}, history=asdict(history), trained_on=trained_on)
    return TrainedModel(model, history, history.seconds, trained_on, loaded=False, path=path)


def _restore(model: Classifier, objective: Objective, key: dict[str, Any], path: Path) -> TrainedModel:
    """Load a cached model into ``model`` and ``objective``, or raise ``CacheDamaged`` saying why not."""
    stored = load_checked(path, key, "it holds a model trained with other settings")
    try:
        objective.setup(model)
        model.load_state_dict(stored["states"]["model"])
        objective.load_state_dict(stored["states"]["objective"])
        history = History(**stored["history"])
    except Exception as error:  # weights that no longer fit the architecture: never used, always retrained
        raise CacheDamaged(f"{type(error).__name__}: {error}") from error
    model.eval()
    objective.to(next(model.parameters()).device).eval()
    return TrainedModel(model, history, history.seconds, stored["trained_on"], loaded=True, path=path)

