"""Adversarial perturbations side by side, their spectra, and accuracy as the budget grows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure
from torch import Tensor

from vitlessons.plot import robustness
from vitlessons.spectrum import power_spectrum


def amplify(delta: Tensor, eps: float) -> Tensor:
    """A perturbation in [-eps, eps] stretched to [0, 1] (grey is zero), so that a few 255ths become visible."""
    return (delta / (2 * eps) + 0.5).clamp(0, 1)


def perturbations(clean: Tensor, deltas: Mapping[str, Tensor], eps: float, captions: Sequence[str] | None = None) -> Figure:
    """One row per image: the clean image, then each model's perturbation amplified to the full range."""
    count = len(clean)
    figure = Figure(figsize=(1.9 * (1 + len(deltas)), 1.9 * count + 0.4))
    axes = figure.subplots(count, 1 + len(deltas), squeeze=False)
    for row in range(count):
        panels = [("image" if captions is None else captions[row], clean[row])]
        panels += [(f"{name}: delta x {0.5 / eps:.0f}", amplify(delta[row], eps)) for name, delta in deltas.items()]
        for ax, (title, picture) in zip(axes[row], panels):
            ax.imshow(picture.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
    figure.tight_layout()
    return figure


def spectra(deltas: Mapping[str, Tensor], title: str = "") -> Figure:
    """Log power spectrum of each model's perturbations (zero frequency centred), averaged over images."""
    figure = Figure(figsize=(2.6 * len(deltas), 2.8))
    axes = figure.subplots(1, len(deltas), squeeze=False)[0]
    for ax, (name, delta) in zip(axes, deltas.items()):
        ax.imshow(power_spectrum(delta).clamp_min(1e-12).log10().numpy(), cmap="magma")
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    figure.suptitle(title or "log power spectrum of the perturbations", fontsize=9)
    figure.tight_layout()
    return figure


def accuracy_against_budget(curves: Mapping[str, Mapping[float, float]], title: str = "") -> Figure:
    """One line per model: accuracy under attack against the L-infinity budget, in 255ths."""
    table = pd.DataFrame(curves).sort_index()
    return robustness.curves(table.set_axis(table.index * 255), "budget eps (in 255ths of the pixel range)", title,
                             "accuracy under attack")
