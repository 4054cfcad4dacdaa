"""How training went: accuracy against the number of training images, the data hunger of a model at a glance."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure

from vitlessons.train import History


def learning_curves(histories: Mapping[str, History], measure: str = "validation accuracy", title: str = "",
                    chance: float | None = None) -> Figure:
    """One line per model: ``measure`` after each epoch against the training images seen so far."""
    if not histories:
        raise ValueError("histories must map at least one model name to its training History, got nothing")
    figure = Figure(figsize=(5.5, 3.2))
    ax = figure.add_subplot()
    for index, (name, history) in enumerate(histories.items()):
        ax.plot(history["images seen"], history[measure], marker="o", markersize=3, label=name, color=f"C{index % 10}")
    if chance is not None:
        ax.axhline(chance, color="0.6", linestyle=":", label="chance")
    ax.set_xlabel("training images seen")
    ax.set_ylabel(measure)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    figure.tight_layout()
    return figure
