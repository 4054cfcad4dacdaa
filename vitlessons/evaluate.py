"""Measure which cue a classifier uses: accuracy on the cue world's splits and shape bias on conflicts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from vitlessons.data.categories import CATEGORIES, imagenet_to_16
from vitlessons.data.cueworld import CLASS_NAMES, CueBatch
from vitlessons.data.stimuli import CueConflictStimuli, SketchStimuli
from vitlessons.metrics import ShapeBias, accuracy, shape_bias
from vitlessons.models.wrapper import Classifier
from vitlessons.perturb import shuffle_patches


def decisions(model: Classifier, images: Tensor, to_classes: Callable[[Tensor], Tensor] | None = None,
              progress: str | None = None) -> Tensor:
    """The class each image is assigned, after an optional mapping of the model's probabilities."""
    probabilities = model.predict(images, progress=progress)
    return (to_classes(probabilities) if to_classes else probabilities).argmax(-1)


def cue_world_shape_bias(model: Classifier, conflict: CueBatch) -> ShapeBias:
    """Shape bias of a lab model on the cue world's conflict split."""
    if conflict.split != "conflict":
        raise ValueError(f"shape bias needs the 'conflict' split, got {conflict.split!r}")
    return shape_bias(decisions(model, conflict.images), conflict.shapes, conflict.textures, CLASS_NAMES)


def stimuli_shape_bias(model: Classifier, stimuli: CueConflictStimuli) -> ShapeBias:
    """Shape bias of an ImageNet model on the Geirhos stimuli, through the 16-category decision.

    The stimuli are 224 px, so models of that input size see them uncropped (model-vs-human's protocol).
    """
    if model.imagenet_classes is None:
        raise ValueError(f"{model.name} has no ImageNet outputs; the stimuli are scored through ImageNet's classes")
    chosen = decisions(model, stimuli.images, to_classes=lambda p: imagenet_to_16(p, model.imagenet_classes),
                       progress=f"{model.name}: {len(stimuli.images)} stimuli")
    return shape_bias(chosen, stimuli.shape_labels, stimuli.texture_labels, CATEGORIES)


def sketch_accuracy(model: Classifier, sketches: SketchStimuli) -> float:
    """16-category accuracy of an ImageNet model on Geirhos's edges or silhouettes: the shape is all there is."""
    if model.imagenet_classes is None:
        raise ValueError(f"{model.name} has no ImageNet outputs; the sketches are scored through ImageNet's classes")
    chosen = decisions(model, sketches.images, to_classes=lambda p: imagenet_to_16(p, model.imagenet_classes),
                       progress=f"{model.name}: {len(sketches)} {sketches.kind}")
    return accuracy(chosen, sketches.labels)


def cue_world_report(model: Classifier, tests: Mapping[str, CueBatch],
                     splits: Sequence[str] = ("aligned", "silhouette", "edges", "texture")) -> dict[str, float]:
    """Accuracy on each cue-only split and shape bias on the conflict split: one row of a results table."""
    row = {split: accuracy(decisions(model, tests[split].images), tests[split].labels) for split in splits}
    row["shape bias"] = cue_world_shape_bias(model, tests["conflict"]).overall
    return row


def cues_under_shuffle(model: Classifier, conflict: CueBatch, grids: Sequence[int] = (1, 2, 4, 8),
                       seed: int = 0) -> dict[str, float]:
    """How often the model names the shape and how often the texture, on conflict images whose tiles are shuffled.

    Shuffling keeps local texture and destroys the outline, so it separates a model that reads the shape from
    one that reads local cues (texture, or local pieces of the outline such as corners).
    """
    if conflict.split != "conflict":
        raise ValueError(f"needs the 'conflict' split, got {conflict.split!r}")
    row = {}
    for grid in grids:
        shuffled = shuffle_patches(conflict.images, grid, torch.Generator().manual_seed(seed))
        chosen = decisions(model, shuffled)
        row[f"shape, {grid}x{grid}"] = (chosen == conflict.shapes).float().mean().item()
        row[f"texture, {grid}x{grid}"] = (chosen == conflict.textures).float().mean().item()
    return row
