"""Figures for chapter 4: the image-caption similarity matrix that CLIP trains on."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from torch import Tensor


def similarity_matrix(images: Tensor, captions: Sequence[str], similarity: Tensor, title: str = "") -> Figure:
    """Cosine similarity of every image (rows, shown at the left) to every caption (columns); CLIP's targets are the diagonal."""
    count = len(images)
    if similarity.shape != (count, len(captions)):
        raise ValueError(f"need a ({count}, {len(captions)}) similarity matrix, got {tuple(similarity.shape)}")
    figure = Figure(figsize=(1.2 + 0.75 * len(captions), 0.75 * count + 1.6))
    grid = figure.add_gridspec(count, 2, width_ratios=(1, len(captions)), wspace=0.05, hspace=0.05)
    for row, image in enumerate(images):
        ax = figure.add_subplot(grid[row, 0])
        ax.imshow(image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_axis_off()
    heat = figure.add_subplot(grid[:, 1])
    values = similarity.detach().cpu().numpy()
    heat.imshow(values, cmap="viridis", aspect="auto")
    for row in range(count):
        for col in range(len(captions)):
            weight = "bold" if col == values[row].argmax() else "normal"  # the caption this image would pick
            heat.text(col, row, f"{values[row, col]:.2f}", ha="center", va="center", fontsize=7, color="white",
                      fontweight=weight)
    heat.set_xticks(range(len(captions)), captions, rotation=45, ha="left", fontsize=8)
    heat.xaxis.tick_top()
    heat.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=10, y=0.02, va="bottom")
    return figure

