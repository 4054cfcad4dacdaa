"""How far each attention head looks: one dot per head, blocks along the x-axis (ViT paper, Fig. 7 right)."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure
from torch import Tensor


def attention_distance(distances: Mapping[str, Tensor], uniform: Mapping[str, float] | None = None) -> Figure:
    """One panel per model: each head's mean attention distance (pixels) against its block.

    ``uniform`` gives, per model, the distance of a head that spreads its attention evenly over all patches:
    a head far below it looks locally, a head near it looks everywhere.
    """
    figure = Figure(figsize=(3.4 * len(distances), 3.0))
    axes = figure.subplots(1, len(distances), squeeze=False)[0]
    for ax, (name, distance) in zip(axes, distances.items()):
        blocks, heads = distance.shape
        for block in range(blocks):
            ax.scatter([block + 1] * heads, distance[block].tolist(), s=14, color=[f"C{h % 10}" for h in range(heads)])
        if uniform and name in uniform:
            ax.axhline(uniform[name], color="0.5", linestyle="--", linewidth=1, label="uniform attention")
            ax.legend(frameon=False, fontsize=7, loc="lower right")
        ax.set_xticks(range(1, blocks + 1, max(1, blocks // 6)))
        ax.set_xlabel("block")
        ax.set_ylabel("mean attention distance (px)")
        ax.set_title(name, fontsize=9)
        ax.set_ylim(bottom=0)
    figure.tight_layout()
    return figure
