"""The course's trained lab models: chapter 1 trains them on the cue world, later chapters load the same ones.

``cue_world_model("lab_vit", "randomised")`` is the ViT trained on texture-randomised images with the
recipe in ``models.lab.RECIPES``, on fresh images every epoch. The first call trains it (and records a
learning curve on a validation split); every later call, in any chapter, loads it from the cache.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from vitlessons.data import cueworld
from vitlessons.data.sources import CueWorldStream, TensorSource
from vitlessons.models.lab import IMAGES_PER_EPOCH, RECIPES
from vitlessons.objectives import Classification
from vitlessons.trained import TrainedModel, train_or_load

LAB_MODELS = ("lab_cnn", "lab_vit")
TRAINING_SPLITS = ("aligned", "randomised")
VALIDATION_IMAGES = 600
# Variants that later chapters train beside chapter 1's models, as (name, split, options of cue_world_model).
VARIANTS = (
    ("lab_vit", "aligned", {"patch_size": 16}),  # chapter 5: patch size
    ("lab_cnn", "aligned", {"epochs": 3}),  # chapter 5: stopped near the lab ViT's clean accuracy
)


def cue_world_model(name: str, split: str, seed: int = 0, device: torch.device | str | None = None,
                    progress: bool = True, epochs: int | None = None, **architecture: Any) -> TrainedModel:
    """A lab classifier of the cue world's six classes, trained on fresh images of ``split``.

    ``epochs`` shortens or lengthens the recipe (chapter 5 stops a CNN early to match the ViT's accuracy), and
    ``architecture`` changes the network (``patch_size=16``); each variant is trained once and cached under its own key.
    """
    if name not in LAB_MODELS or split not in TRAINING_SPLITS:
        raise ValueError(f"the course trains {LAB_MODELS} on {TRAINING_SPLITS}, not {name!r} on {split!r}")
    validation = cueworld.make_split(split, VALIDATION_IMAGES, seed=seed + 1)
    recipe = RECIPES[name] if epochs is None else replace(RECIPES[name], epochs=epochs)
    return train_or_load(name, Classification(), CueWorldStream(split, images=IMAGES_PER_EPOCH[name], seed=seed),
                         recipe, seed=seed, device=device, progress=progress,
                         validation=TensorSource(validation.images, validation.labels), labels=cueworld.CLASS_NAMES,
                         **architecture)
