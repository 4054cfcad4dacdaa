"""The paper-scale measurement end to end: real model, stimuli folder in the published layout, shape bias."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vitlessons.data import cueworld, photos
from vitlessons.data.categories import CATEGORIES, SIXTEEN_CLASS_INDICES
from vitlessons.data.stimuli import load_cue_conflict
from vitlessons.evaluate import cues_under_shuffle, stimuli_shape_bias
from vitlessons.models import load_model


def save(image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


def test_efficientnet_shape_bias_on_a_tiny_stimulus_set(tmp_path: Path) -> None:
    cat = photos.photos(("chelsea",), size=256)
    save(cat, tmp_path / "cat" / "cat1-elephant1.png")  # the cat is the shape: a shape decision
    save(cat, tmp_path / "clock" / "clock1-cat2.png")  # the cat is the texture: a texture decision
    save(cat, tmp_path / "cat" / "cat2-cat1.png")  # same cue twice: left out
    brick = photos.texture("brick", size=64)
    for category in set(CATEGORIES) - {"cat", "clock"}:  # the layout has all 16 folders; same-cue fillers
        save(brick, tmp_path / category / f"{category}1-{category}1.png")
    stimuli = load_cue_conflict(tmp_path, size=224, expected=17)
    result = stimuli_shape_bias(load_model("efficientnet_lite0", device="cpu"), stimuli)
    assert (result.shape_decisions, result.texture_decisions, result.n_conflict) == (1, 1, 2)
    assert result.overall == 0.5
    assert result.per_category["cat"] == 1.0 and result.per_category["clock"] == 0.0
    subset = load_model("efficientnet_lite0", device="cpu", imagenet_classes=SIXTEEN_CLASS_INDICES[::-1])
    assert stimuli_shape_bias(subset, stimuli) == result  # the 207 classes decide as the 1000 do
    with pytest.raises(ValueError, match="no ImageNet outputs"):
        stimuli_shape_bias(load_model("lab_cnn", labels=CATEGORIES, image_size=224, device="cpu"), stimuli)


def test_cues_under_shuffle_counts_shape_and_texture_decisions() -> None:
    conflict = cueworld.make_split("conflict", 24, seed=5)

    class Oracle(torch.nn.Module):
        """Names the true shape of unshuffled images, so shuffling is the only thing that can change it."""

        labels = list(cueworld.CLASS_NAMES)

        def predict(self, images: torch.Tensor, progress: str | None = None) -> torch.Tensor:
            same = (images == conflict.images).flatten(1).all(1)
            answer = torch.where(same, conflict.shapes, conflict.textures)
            return torch.nn.functional.one_hot(answer, len(self.labels)).float()

    row = cues_under_shuffle(Oracle(), conflict, grids=(1, 4))
    assert row == {"shape, 1x1": 1.0, "texture, 1x1": 0.0, "shape, 4x4": 0.0, "texture, 4x4": 1.0}
    with pytest.raises(ValueError, match="conflict"):
        cues_under_shuffle(Oracle(), cueworld.make_split("aligned", 4))
