"""Chapter 5's figures: accuracy curves, corruption severity by family, error against clean error, block
removal, and the loss along an attack's steps."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor


def curves(table: pd.DataFrame, xlabel: str, title: str = "", ylabel: str = "accuracy", ax=None) -> Figure:
    """One line per column of ``table`` against its index: the shape of every 'accuracy as X grows' result."""
    figure = ax.figure if ax is not None else Figure(figsize=(4.6, 3.0))
    ax = ax if ax is not None else figure.add_subplot()
    for index, column in enumerate(table.columns):
        ax.plot(table.index, table[column], marker="o", markersize=3, label=str(column), color=f"C{index % 10}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylabel.startswith("accuracy"):
        ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False, fontsize=7)
    figure.tight_layout()
    return figure


def panels(tables: Mapping[str, pd.DataFrame], xlabel: str, title: str = "") -> Figure:
    """A panel of ``curves`` per table, side by side on one y scale: one experiment under several conditions."""
    figure = Figure(figsize=(3.0 * len(tables), 2.9))
    axes = figure.subplots(1, len(tables), squeeze=False)[0]
    for ax, (name, table) in zip(axes, tables.items()):
        curves(table, xlabel, name, ax=ax)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def severity_by_family(families: Mapping[str, pd.DataFrame], title: str = "") -> Figure:
    """A panel per corruption family: mean accuracy over its corruptions against severity (0 is clean)."""
    return panels(families, "severity", title)


def error_against_clean(points: pd.DataFrame, title: str = "") -> Figure:
    """One point per model (rows): mean corruption error against clean error, with the line where they are equal."""
    figure = Figure(figsize=(4.2, 3.6))
    ax = figure.add_subplot()
    clean, corrupted = points["clean error"], points["corruption error"]
    ax.scatter(clean, corrupted, color="C0")
    for name in points.index:
        ax.annotate(str(name), (clean[name], corrupted[name]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    top = max(1e-3, float(clean.max()), float(corrupted.max())) * 1.1
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=0.8, label="corruption error = clean error")
    ax.set_xlabel("clean error")
    ax.set_ylabel("mean error under corruptions")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False, fontsize=7)
    figure.tight_layout()
    return figure


def block_removal(table: pd.DataFrame, clean: float, title: str = "") -> Figure:
    """Grouped bars: accuracy with each block (or only its attention, or its MLP) removed; the dashed line is intact."""
    figure = Figure(figsize=(max(4.0, 0.55 * len(table) * len(table.columns)), 3.0))
    ax = figure.add_subplot()
    width = 0.8 / len(table.columns)
    for index, part in enumerate(table.columns):
        positions = [block + (index - (len(table.columns) - 1) / 2) * width for block in range(len(table))]
        ax.bar(positions, table[part], width=width, label=f"{part} removed", color=f"C{index}")
    ax.axhline(clean, color="grey", linestyle="--", linewidth=0.8, label="nothing removed")
    ax.set_xticks(range(len(table)), [str(b) for b in table.index])
    ax.set_xlabel("block removed")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False, fontsize=7)
    figure.tight_layout()
    return figure


def loss_progression(losses: Mapping[str, Tensor], title: str = "") -> Figure:
    """The attack's loss at every step, one line per model: the median over images and the 25-75% band."""
    figure = Figure(figsize=(4.6, 3.0))
    ax = figure.add_subplot()
    for index, (name, loss) in enumerate(losses.items()):
        loss = loss.detach().double().cpu()
        low, middle, high = torch.quantile(loss, torch.tensor([0.25, 0.5, 0.75], dtype=loss.dtype), dim=1)
        steps = range(len(loss))
        ax.plot(steps, middle, marker="o", markersize=3, label=name, color=f"C{index % 10}")
        ax.fill_between(steps, low, high, alpha=0.2, color=f"C{index % 10}")
    ax.set_xlabel("attack step (0 is the clean image)")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False, fontsize=7)
    figure.tight_layout()
    return figure
