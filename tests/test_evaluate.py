"""The paper-scale measurement end to end: real model, stimuli folder in the published layout, shape bias."""

from pathlib import Path

import numpy as np
from PIL import Image

from vitlessons.data import photos
from vitlessons.data.categories import CATEGORIES
from vitlessons.data.stimuli import load_cue_conflict
from vitlessons.evaluate import stimuli_shape_bias
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
