"""Chapter 3's figures: self-distillation as a picture, DINO's training diagnostics, attention maps and their masks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import Tensor

from vitlessons.train import History

DIAGNOSTICS = ("loss", "teacher entropy", "batch entropy", "KL")


def self_distillation() -> Figure:
    """Two networks, one loss: the student learns from every view, the teacher (an EMA of it) sees the global views."""
    figure = Figure(figsize=(8, 3.1))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4)
    ax.set_axis_off()

    def box(x: float, y: float, text: str, colour: str, width: float = 1.9) -> None:
        ax.add_patch(FancyBboxPatch((x - width / 2, y - 0.32), width, 0.64, boxstyle="round,pad=0.05", fc=colour, ec="0.3"))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)

    def arrow(start: tuple[float, float], end: tuple[float, float], text: str = "", dashed: bool = False,
              shift: tuple[float, float] = (0.0, 0.15)) -> None:
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, color="0.25",
                                     linestyle="--" if dashed else "-"))
        if text:
            ax.text((start[0] + end[0]) / 2 + shift[0], (start[1] + end[1]) / 2 + shift[1], text, ha="center",
                    fontsize=7.5, color="0.25")

    box(0.9, 2.0, "image", "0.92", 1.2)
    box(3.0, 3.2, "all views\n(2 global + local)", "#dbe9f6", 2.1)
    box(3.0, 0.8, "2 global views", "#fde2c8", 2.1)
    box(5.5, 3.2, "student ViT + head", "#9ecae1", 2.2)
    box(5.5, 0.8, "teacher ViT + head", "#fdae6b", 2.2)
    box(7.85, 3.2, "softmax(s / 0.1)", "#dbe9f6", 1.5)
    box(7.85, 0.8, "softmax((t - c) / 0.04)", "#fde2c8", 1.7)
    box(9.2, 2.0, "cross-\nentropy", "0.92", 1.1)
    arrow((1.5, 2.2), (1.95, 3.0))
    arrow((1.5, 1.8), (1.95, 1.0))
    arrow((4.05, 3.2), (4.4, 3.2))
    arrow((4.05, 0.8), (4.4, 0.8))
    arrow((6.6, 3.2), (7.05, 3.2))
    arrow((6.6, 0.8), (6.95, 0.8))
    arrow((8.6, 3.0), (9.0, 2.35))
    arrow((8.7, 1.0), (9.0, 1.65), "no gradient\nto the teacher", shift=(-0.75, 0.0))
    arrow((5.5, 2.85), (5.5, 1.15), "EMA of the weights", dashed=True, shift=(0.75, 0.0))
    ax.text(7.4, 0.2, "c: running mean of the teacher's outputs (centring); 0.04 < 0.1 (sharpening)",
            ha="center", fontsize=7.5, color="0.3")
    return figure


def diagnostics(histories: Mapping[str, History], out_dim: int | None = None) -> Figure:
    """Loss, the teacher's entropy per output and of the batch's mean output, and KL, against images seen."""
    figure = Figure(figsize=(11, 2.8))
    axes = figure.subplots(1, len(DIAGNOSTICS))
    for index, (name, history) in enumerate(histories.items()):
        for ax, measure in zip(axes, DIAGNOSTICS):
            ax.plot(history["images seen"], history[measure], marker="o", markersize=3, label=name, color=f"C{index % 10}")
    for ax, measure in zip(axes, DIAGNOSTICS):
        if out_dim is not None and "entropy" in measure:
            ax.axhline(math.log(out_dim), color="0.6", linestyle=":", label=f"uniform (log {out_dim})")
        ax.set_title(measure, fontsize=9)
        ax.set_xlabel("training images seen", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)
    figure.tight_layout()
    return figure


def attention_masks(images: Tensor, attention: Tensor, masks: Tensor, truth: Tensor | None = None,
                    heads: Sequence[int] | None = None, title: str = "") -> Figure:
    """Per image a row: the image (true outline if given), then each head's CLS attention with its mask's outline."""
    heads = list(range(attention.shape[1])) if heads is None else list(heads)
    rows, cols = len(images), 1 + len(heads)
    figure = Figure(figsize=(1.6 * cols, 1.6 * rows + 0.4))
    axes = figure.subplots(rows, cols, squeeze=False)
    size = images.shape[-2:]
    upsampled = torch.nn.functional.interpolate(attention[:, heads].float(), size=size, mode="nearest")
    pixel_masks = torch.nn.functional.interpolate(masks[:, heads].float(), size=size, mode="nearest")
    for row in range(rows):
        axes[row, 0].imshow(images[row].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
        if truth is not None:
            axes[row, 0].contour(truth[row].float().cpu().numpy(), levels=[0.5], colors="white", linewidths=0.8)
        for col, head in enumerate(heads, start=1):
            axes[row, col].imshow(upsampled[row, col - 1].cpu().numpy(), cmap="inferno")
            axes[row, col].contour(pixel_masks[row, col - 1].cpu().numpy(), levels=[0.5], colors="cyan", linewidths=0.8)
            if row == 0:
                axes[row, col].set_title(f"head {head}", fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def pca_colours(images: Tensor, colours: Tensor, title: str = "") -> Figure:
    """Each image above its patch tokens' first three principal components shown as red, green and blue."""
    count = len(images)
    figure = Figure(figsize=(1.6 * count, 3.4))
    axes = figure.subplots(2, count, squeeze=False)
    for index in range(count):
        axes[0, index].imshow(images[index].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
        axes[1, index].imshow(colours[index].cpu().numpy(), interpolation="nearest")
    for ax in axes.ravel():
        ax.set_axis_off()
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure
