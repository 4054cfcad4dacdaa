"""Figures for the course, by topic: images (grids, PNG bytes), cues (the shape-bias plot of Geirhos et al.,
2019, score bars, cue decisions), training (learning curves), architecture (patches, filters, position
similarity), attacks (perturbations, spectra, accuracy against budget), attention (distance per head) and
robustness (accuracy curves, corruptions by family, block removal, an attack's loss step by step), dino
(self-distillation, training diagnostics, attention masks, patch features as colours), representations
(CKA between layers) and clip (the image-caption similarity matrix).

Figures are built with ``matplotlib.figure.Figure`` rather than ``pyplot``, so they work
under any backend (Agg included), are not kept alive by pyplot's registry, and show up
exactly once when a notebook cell returns them.
"""

from __future__ import annotations

from vitlessons.plot import architecture, attacks, attention, clip, dino, representations, robustness
from vitlessons.plot.cues import PUBLISHED_SHAPE_BIAS, cue_decisions, score_bars, shape_bias_plot
from vitlessons.plot.images import figure_png, image_grid
from vitlessons.plot.training import learning_curves


def _show_figures_in_notebooks() -> None:
    """Register the PNG formatter for Figure objects in a kernel, as importing pyplot would have done."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        set_matplotlib_formats("png")


_show_figures_in_notebooks()

__all__ = ["PUBLISHED_SHAPE_BIAS", "architecture", "attacks", "attention", "clip", "dino", "representations", "robustness", "cue_decisions", "figure_png", "image_grid", "learning_curves", "score_bars",
           "shape_bias_plot"]
