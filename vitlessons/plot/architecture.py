"""What a trained network's first layers learned: a photo cut into patches, embedding filters, position similarity.

The ViT paper (Dosovitskiy et al., ICLR 2021, Fig. 7) shows the principal components of the patch-embedding
filters, which look like the basis functions of a small image patch, and the cosine similarity between
position embeddings, where nearby patches come out alike: the 2-D grid is learned, not given.
"""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure
from torch import Tensor

from vitlessons.tensors import check_images


def patch_grid(image: Tensor, patch_size: int, title: str = "") -> Figure:
    """One image with the boundaries of the patches a ViT cuts it into."""
    picture = check_images(image)[0].detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
    height, width = picture.shape[:2]
    figure = Figure(figsize=(3.2, 3.2))
    ax = figure.add_subplot()
    ax.imshow(picture)
    for edge in range(patch_size, max(height, width), patch_size):
        if edge < width:
            ax.axvline(edge - 0.5, color="white", linewidth=0.6)
        if edge < height:
            ax.axhline(edge - 0.5, color="white", linewidth=0.6)
    ax.set_title(title or f"{height // patch_size} x {width // patch_size} patches of {patch_size} px", fontsize=9)
    ax.set_axis_off()
    return figure


def filter_components(weight: Tensor, count: int) -> Tensor:
    """The first ``count`` principal components of (out, 3, k, k) filters, as (count, 3, k, k) images in [0, 1]."""
    flat = weight.detach().cpu().double().flatten(1)
    _, _, components = torch.linalg.svd(flat - flat.mean(0), full_matrices=False)
    return _each_to_unit_range(components[:count].reshape(-1, *weight.shape[1:]).float())


def _each_to_unit_range(filters: Tensor) -> Tensor:
    """Stretch every filter to [0, 1] on its own, so that its pattern, not its scale, shows."""
    low = filters.amin(dim=(1, 2, 3), keepdim=True)
    high = filters.amax(dim=(1, 2, 3), keepdim=True)
    return (filters - low) / (high - low).clamp_min(1e-12)


def filters(weight: Tensor, title: str, count: int = 28, ncols: int = 7, principal: bool = False) -> Figure:
    """First-layer filters (out, 3, k, k) as small RGB images, or their principal components."""
    shown = filter_components(weight, count) if principal else _each_to_unit_range(weight.detach().cpu()[:count].float())
    nrows = math.ceil(len(shown) / ncols)
    figure = Figure(figsize=(0.5 * ncols + 0.4, 0.5 * nrows + 0.5))
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, picture in zip(axes, [*shown, *[None] * (len(axes) - len(shown))]):
        ax.set_axis_off()
        if picture is not None:
            ax.imshow(picture.permute(1, 2, 0).numpy(), interpolation="nearest")
    figure.suptitle(title, fontsize=9)
    return figure


def position_similarity(position_embedding: Tensor, grid: tuple[int, int], title: str = "") -> Figure:
    """For each patch position, the cosine similarity of its embedding to every other position's, on the grid.

    Each small map has its own colour scale: the learned embeddings share a large common part, which on one
    scale would wash out where each map peaks.
    """
    rows, cols = grid
    embeddings = torch.nn.functional.normalize(position_embedding.detach().cpu().float().reshape(rows * cols, -1), dim=-1)
    similarity = (embeddings @ embeddings.T).reshape(rows, cols, rows, cols)
    figure = Figure(figsize=(4.2, 4.2 * rows / cols + 0.3))
    axes = figure.subplots(rows, cols, squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.05})
    for r in range(rows):
        for c in range(cols):
            axes[r, c].imshow(similarity[r, c].numpy(), cmap="viridis")  # each map on its own scale
            axes[r, c].set_axis_off()
    figure.suptitle(title or "position embedding similarity", fontsize=9)
    return figure
