"""Looking at what a model sees: batches of images in a grid, and figures as PNG bytes for widgets."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import torch
from matplotlib.figure import Figure
from torch import Tensor

from vitlessons.tensors import check_images


def image_grid(
    images: Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    figsize: tuple[float, float] | None = None,
    title_size: float = 9,
) -> Figure:
    """Show a batch of images in a grid, each optionally titled, to look at what a model sees."""
    images = check_images(images, channels=(1, 3)).detach().to("cpu", torch.float32).clamp(0, 1)
    count = len(images)
    if count == 0:
        raise ValueError("expected at least one image, got an empty batch")
    if ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols}")
    if titles is not None and len(titles) != count:
        raise ValueError(f"got {len(titles)} titles for {count} images; pass one title per image")
    ncols = min(ncols, count)
    nrows = math.ceil(count / ncols)
    figure = Figure(figsize=figsize or (1.8 * ncols, 1.8 * nrows + (0.3 * nrows if titles else 0)))
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for index, ax in enumerate(axes):
        ax.set_axis_off()
        if index >= count:
            continue
        picture = images[index].permute(1, 2, 0).numpy()
        ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture,
                  cmap="gray" if picture.shape[-1] == 1 else None, vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(str(titles[index]), fontsize=title_size)
    figure.tight_layout()
    return figure


def figure_png(figure: Figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes, for an image widget or a static fallback."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
