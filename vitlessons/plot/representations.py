"""Chapter 6's figures: CKA between every pair of layers, as heatmaps (the layout of Raghu et al., 2021, Fig. 1)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure


def cka_heatmaps(matrices: Mapping[str, pd.DataFrame], title: str = "") -> Figure:
    """One heatmap per table of CKA values (rows: one network's layers, columns: another's), on one 0-1 colour scale."""
    figure = Figure(figsize=(3.3 * len(matrices) + 0.6, 3.3))
    axes = figure.subplots(1, len(matrices), squeeze=False)[0]
    image = None
    for ax, (name, table) in zip(axes, matrices.items()):
        image = ax.imshow(table.to_numpy(), vmin=0, vmax=1, cmap="magma", origin="lower")
        ax.set_xticks(range(len(table.columns)), [str(c) for c in table.columns], rotation=60, fontsize=7)
        ax.set_yticks(range(len(table.index)), [str(i) for i in table.index], fontsize=7)
        ax.set_xlabel(table.columns.name or "", fontsize=8)
        ax.set_ylabel(table.index.name or "", fontsize=8)
        ax.set_title(name, fontsize=9)
    if image is not None:
        figure.colorbar(image, ax=list(axes), shrink=0.8, label="linear CKA")
    figure.suptitle(title, fontsize=9)
    return figure
