"""Explorers redraw when a control moves, and carry a static PNG for readers without a widget front end."""

import base64
from pathlib import Path

import ipywidgets
import nbformat
import pytest
import torch
from matplotlib.figure import Figure

from vitlessons.data import cueworld
from vitlessons.models import load_model
from vitlessons.student import chapter_notebooks
from vitlessons.widgets import Explorer, attack_explorer, corruption_explorer, cue_conflict_explorer, patch_drop_explorer, rotation_explorer

PNG = b"\x89PNG\r\n\x1a\n"
CHAPTERS = chapter_notebooks(Path(__file__).resolve().parents[1] / "notebooks")


def _line(slope: float) -> Figure:
    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([0, 1], [0, slope])
    return figure


def test_explorer_draws_defaults_and_redraws_on_change() -> None:
    calls = []

    def draw(slope: float) -> Figure:
        calls.append(slope)
        return _line(slope)

    explorer = Explorer(draw, {"slope": ipywidgets.FloatSlider(value=1.0, min=0, max=2)})
    assert calls == [1.0] and bytes(explorer.image.value).startswith(PNG), "the default figure is drawn at once"
    before = bytes(explorer.image.value)
    explorer.controls["slope"].value = 2.0
    assert calls == [1.0, 2.0] and bytes(explorer.image.value) != before


def test_explorer_shows_a_static_figure_without_a_front_end() -> None:
    explorer = Explorer(_line, {"slope": ipywidgets.FloatSlider(value=0.5)})
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle, "front ends with widgets get the live explorer"
    assert base64.b64decode(bundle["image/png"]) == bytes(explorer.image.value), "all others get the PNG"
    assert "static figure" in bundle["text/plain"]


def test_cue_conflict_explorer_follows_its_controls() -> None:
    torch.manual_seed(0)
    model = load_model("lab_cnn", labels=list(cueworld.CLASS_NAMES))
    explorer = cue_conflict_explorer({"a": model, "b": model}, seed=1)
    assert set(explorer.values) == {"shape", "texture", "grid"} and explorer.values["grid"] == 1
    seen = {bytes(explorer.image.value)}
    for control, value in (("grid", 4), ("shape", "star"), ("texture", "dots")):
        explorer.controls[control].value = value
        seen.add(bytes(explorer.image.value))
    assert len(seen) == 4, "each control changes the figure"
    with pytest.raises(ValueError, match="unknown shape"):
        cueworld.compose("hexagon", "dots")


def test_attack_explorer_redraws_for_each_budget() -> None:
    model = load_model("lab_cnn", labels=list(cueworld.CLASS_NAMES), seed=2)
    image = cueworld.make_split("aligned", 1, seed=3).images
    explorer = attack_explorer({"a": model, "b": model}, image, label=0, budgets=(0, 4, 16))
    assert explorer.values == {"budget": 16}
    seen = {bytes(explorer.image.value)}
    for budget in (0, 4):
        explorer.controls["budget"].value = budget
        seen.add(bytes(explorer.image.value))
    assert len(seen) == 3, "each budget draws another figure"


def test_corruption_explorer_redraws_for_each_corruption_and_severity() -> None:
    model = load_model("lab_cnn", labels=list(cueworld.CLASS_NAMES), seed=2)
    image = cueworld.make_split("aligned", 1, seed=3).images
    explorer = corruption_explorer({"a": model, "b": model}, image, label=0)
    assert explorer.values == {"corruption": "gaussian_noise", "severity": 3}
    seen = [bytes(explorer.image.value)]
    for control, value in (("severity", 5), ("corruption", "fog"), ("severity", 0)):
        explorer.controls[control].value = value
        seen.append(bytes(explorer.image.value))
    assert len(set(seen)) == 4, "each corruption and severity draws another figure"
    explorer.controls["corruption"].value = "gaussian_noise"
    assert bytes(explorer.image.value) == seen[-1], "at severity 0 every corruption shows the same clean image"


def test_patch_drop_explorer_redraws_for_each_share_and_mode() -> None:
    model = load_model("lab_cnn", labels=list(cueworld.CLASS_NAMES), seed=2)
    scene = cueworld.make_split("aligned", 1, seed=3)
    explorer = patch_drop_explorer({"a": model}, scene.images, label=int(scene.labels[0]), saliency=scene.masks.float())
    assert explorer.values == {"fraction": 0.5, "mode": "random"}
    seen = [bytes(explorer.image.value)]
    for control, value in (("mode", "salient"), ("mode", "non_salient"), ("fraction", 0.0)):
        explorer.controls[control].value = value
        seen.append(bytes(explorer.image.value))
    assert len(set(seen)) == 4, "each share and mode draws another figure"


def test_rotation_explorer_shows_four_turns_and_each_heads_guess() -> None:
    from vitlessons.objectives import Rotation

    model = load_model("lab_cnn", labels=list(cueworld.CLASS_NAMES), seed=2)
    rotation = Rotation()
    rotation.setup(model)
    explorer = rotation_explorer({"a": (model, rotation)})
    assert explorer.values == {"shape": "triangle", "texture": "none (silhouette)"}
    seen = [bytes(explorer.image.value)]
    for control, value in (("shape", "circle"), ("texture", "stripes")):
        explorer.controls[control].value = value
        seen.append(bytes(explorer.image.value))
    assert len(set(seen)) == 3, "each shape and texture draws another figure"


def test_caption_explorer_retrieves_what_the_caption_names() -> None:
    from test_lab_clip import WordSpotter

    from vitlessons.widgets import caption_explorer

    spotter = WordSpotter()
    images = torch.zeros(6, 3, 8, 8)
    for index in range(6):
        images[index, index % 3] = 1.0  # red, green, blue, red, green, blue: circle, square, star to the spotter
    drawn = []
    explorer = caption_explorer(spotter, spotter.tokenizer, images, lambda x: x, ["a circle", "a square", "a star"],
                                caption="a star", shown=2)
    original = explorer.draw
    explorer.draw = lambda **values: drawn.append(values) or original(**values)
    explorer.controls["caption"].value = "a square"
    explorer.controls["image"].value = 5
    assert drawn == [{"caption": "a square", "image": 0}, {"caption": "a square", "image": 5}]
    figure = original(caption="a star", image=2)
    titles = sorted(ax.get_title() for ax in figure.axes[:2])
    assert titles == ["#2: 1.00", "#5: 1.00"], "the two blue images are the stars"
    assert figure.axes[-1].patches[2].get_facecolor()[:3] != figure.axes[-1].patches[0].get_facecolor()[:3]


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_stored_explorers_carry_their_static_figure(path: Path) -> None:
    """Where a chapter keeps outputs, each explorer's output holds both the widget and the PNG fallback."""
    outputs = [o for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" for o in c.get("outputs", [])]
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
               and "Explorer of" in o["data"].get("text/plain", "")]
    for output in widgets:
        assert base64.b64decode(output["data"]["image/png"]).startswith(PNG)
    if outputs:
        assert widgets, f"{path.name} keeps outputs but no explorer output"
