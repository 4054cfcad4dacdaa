"""Which cue a model follows: the shape-bias plot of Geirhos et al. (2019), score bars and one image's decisions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from vitlessons.metrics import ShapeBias
from vitlessons.tensors import check_images

# Published shape bias (fraction of shape decisions among shape-or-texture decisions on the
# 1,280 cue-conflict images) used as reference lines.
# - ResNet-50 (torchvision, ImageNet-trained): 21.39%, README of rgeirhos/texture-vs-shape
#   ("Shape bias and IN accuracies of different SIN-trained models"), computed with the
#   mean-over-ImageNet-classes aggregation that model-vs-human uses.
# - humans: 95.8%, the mean over the ten subjects of each subject's shape bias, computed from the raw data of
#   the style-transfer experiment of Geirhos et al., ICLR 2019 (rgeirhos/texture-vs-shape,
#   raw-data/style-transfer-512-nomask-experiment; subjects range from 91.9% to 98.7%).
PUBLISHED_SHAPE_BIAS: dict[str, float] = {"humans": 0.958, "ResNet-50": 0.2139}

MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*", "h", "<", ">")
_REFERENCE_STYLES = {"humans": ("#c0392b", "--"), "ResNet-50": ("#7f7f7f", ":")}


def _plot_categories(results: Mapping[str, ShapeBias], categories: Sequence[str] | None) -> list[str]:
    """The rows to draw: the given categories, or the first result's, all present in every result."""
    if not results:
        raise ValueError("results must map at least one model name to its ShapeBias, got nothing")
    for name, result in results.items():
        if not isinstance(result, ShapeBias):
            raise TypeError(f"results[{name!r}] must be a ShapeBias, got {type(result).__name__}")
    rows = list(categories) if categories is not None else list(next(iter(results.values())).per_category)
    if not rows:
        raise ValueError("no categories to plot: pass categories or results with per_category values")
    for name, result in results.items():
        missing = [c for c in rows if c not in result.per_category]
        if missing:
            raise ValueError(
                f"results[{name!r}] has no per-category value for {missing}; "
                f"it has {list(result.per_category)}"
            )
    return rows


def _percent(value: float) -> str:
    """Legend text for a shape bias, which may be nan."""
    return "n/a" if math.isnan(value) else f"{value:.1%}"


def _draw_model(ax: Axes, name: str, result: ShapeBias, rows: list[str], style: tuple[str, str]) -> None:
    """One marker per category with a value, and the model's overall shape bias as a vertical line."""
    marker, colour = style
    points = [(result.per_category[c], y) for y, c in enumerate(rows)
              if not math.isnan(result.per_category[c])]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    ax.scatter(xs, ys, marker=marker, color=colour, s=70, edgecolors="0.3", linewidths=0.5,
               zorder=3, clip_on=False, label=f"{name} ({_percent(result.overall)})")
    if not math.isnan(result.overall):
        ax.axvline(result.overall, color=colour, linewidth=1.5, alpha=0.8, zorder=2)


def _draw_references(ax: Axes) -> None:
    """Published humans / ResNet-50 shape bias, so a student's numbers have a yardstick."""
    for name, value in PUBLISHED_SHAPE_BIAS.items():
        colour, linestyle = _REFERENCE_STYLES.get(name, ("black", "--"))
        ax.axvline(value, color=colour, linestyle=linestyle, linewidth=1.2, zorder=1,
                   label=f"{name}, published ({value:.1%})")


def _decorate_axes(ax: Axes, rows: list[str]) -> None:
    """Shape on the right, texture on the left, like Geirhos et al.'s figure (mirrored)."""
    ax.set_xlim(0, 1)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(range(len(rows)), rows)
    ax.grid(axis="y", linestyle=":", alpha=0.4)
    ax.set_xlabel("shape bias: fraction of 'shape' decisions")
    top = ax.secondary_xaxis("top", functions=(lambda x: 1 - x, lambda x: 1 - x))
    top.set_xlabel("fraction of 'texture' decisions")
    ax.text(0.0, -0.08, "texture", transform=ax.transAxes, ha="left", va="top", fontweight="bold")
    ax.text(1.0, -0.08, "shape", transform=ax.transAxes, ha="right", va="top", fontweight="bold")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=9)


def shape_bias_plot(
    results: Mapping[str, ShapeBias],
    categories: Sequence[str] | None = None,
    reference: bool = True,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Per-category shape bias of several models side by side, in the style of Geirhos et al. (2019).

    One row per (shape) category, shape bias on the x axis from 0 (texture) to 1 (shape), one
    marker style and colour per model, each model's overall shape bias as a vertical line and,
    with ``reference=True``, the published humans and ResNet-50 values as dashed lines.
    Categories without any shape or texture decision (nan) get no marker.
    """
    rows = _plot_categories(results, categories)
    if ax is None:
        figure = Figure(figsize=figsize or (8.5, 0.4 * len(rows) + 2.2))
        ax = figure.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(results))]
    for index, (name, result) in enumerate(results.items()):
        _draw_model(ax, name, result, rows, (MARKERS[index % len(MARKERS)], colours[index]))
    if reference:
        _draw_references(ax)
    _decorate_axes(ax, rows)
    ax.figure.tight_layout()
    return ax.figure


def score_bars(scores: Mapping[str, Mapping[str, float]], title: str = "", figsize: tuple[float, float] | None = None) -> Figure:
    """Grouped bars, one group per measure and one bar per model, with values printed on the bars."""
    if not scores:
        raise ValueError("scores must map at least one model name to its {measure: value} row, got nothing")
    measures = list(next(iter(scores.values())))
    figure = Figure(figsize=figsize or (1.6 * len(measures) + 2.5, 3.2))
    ax = figure.add_subplot()
    width = 0.8 / len(scores)
    for index, (name, row) in enumerate(scores.items()):
        positions = [m + (index - (len(scores) - 1) / 2) * width for m in range(len(measures))]
        bars = ax.bar(positions, [row[m] for m in measures], width=width, label=name, color=f"C{index % 10}")
        ax.bar_label(bars, labels=[f"{row[m]:.0%}" for m in measures], fontsize=7, padding=1)
    ax.set_xticks(range(len(measures)), measures)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("fraction")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    figure.tight_layout()
    return figure


def cue_decisions(probabilities: Mapping[str, Tensor], image: Tensor, shape: int, texture: int,
                  labels: Sequence[str], title: str = "") -> Figure:
    """An image beside each model's probability for its shape class and its texture class.

    ``probabilities`` maps a model name to its softmax output (n_classes,) for ``image``; the bars show which
    cue each model followed, and the label of its top class.
    """
    image = check_images(image, "image").detach().cpu()
    figure = Figure(figsize=(7.5, 2.6))
    picture, bars = figure.subplots(1, 2, width_ratios=(1, 2.2))
    picture.imshow(image[0].permute(1, 2, 0).clamp(0, 1).numpy())
    picture.set_axis_off()
    picture.set_title(title, fontsize=9)
    names = list(probabilities)
    cues = ((shape, -0.18, "C0", f"shape cue ({labels[shape]})"), (texture, 0.18, "C1", f"texture cue ({labels[texture]})"))
    for row, name in enumerate(names):
        p = probabilities[name].detach().cpu().reshape(-1)
        for index, offset, colour, label in cues:
            bars.barh(row + offset, p[index].item(), height=0.34, color=colour, label=label if row == 0 else None)
        bars.text(1.02, row, f"says: {labels[int(p.argmax())]}", va="center", fontsize=8)
    bars.set_yticks(range(len(names)), names)
    bars.set_ylim(len(names) - 0.5, -0.5)
    bars.set_xlim(0, 1)
    bars.set_xlabel("probability of the class each cue points to")
    bars.legend(loc="lower right", fontsize=7, frameon=False)
    figure.tight_layout()
    return figure
