"""Accuracy as one thing is varied: a perturbation of the input, a change to the model itself, or the block read.

Chapter 5 asks the same question many times: how fast does accuracy fall as the images are filtered,
turned or shifted, as blocks are removed, or as attention is confined to a window? Each function here
answers it for one kind of variation and returns a table (one row per value, one column per model), ready
to print and to plot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from vitlessons.evaluate import decisions
from vitlessons.metrics import accuracy
from vitlessons.models.surgery import PARTS, depth, local_attention, max_window, removed
from vitlessons.models.wrapper import Classifier, SelectClasses


@torch.no_grad()
def block_logits(model: Classifier, images: Tensor, batch_size: int = 64) -> Tensor:
    """(blocks, B, classes): each block's class token through the final norm and the one shared head.

    Naseer et al. (2021) read a ViT's class token after every block this way, retraining nothing; after the last
    block it is the model's own output. Only ViTs that classify from the class token qualify.
    """
    trunk = model.trunk
    if getattr(trunk, "global_pool", None) != "token":
        raise TypeError(f"{model.name} does not classify from its class token (global_pool "
                        f"{getattr(trunk, 'global_pool', None)!r}); per-block class tokens mean nothing for its head")
    model.eval()
    device = next(model.parameters()).device
    parts = []
    for start in range(0, len(images), batch_size):
        cls = model.block_tokens(images[start:start + batch_size].to(device)).cls  # (blocks, b, D), before the norm
        logits = torch.stack([trunk.forward_head(trunk.norm(block[:, None])) for block in cls])
        if isinstance(model.net, SelectClasses):
            logits = logits.index_select(-1, model.net.classes)
        parts.append(logits.cpu())
    return torch.cat(parts, dim=1)


def block_accuracy(model: Classifier, images: Tensor, labels: Tensor) -> pd.Series:
    """Accuracy of each block's class token through the shared head, indexed by block."""
    predicted = block_logits(model, images).argmax(-1)
    return pd.Series([accuracy(p, labels) for p in predicted], name=model.name, dtype=float).rename_axis("block")


def scored(model: Classifier, images: Tensor, labels: Tensor) -> float:
    """The model's accuracy on a batch, in eval mode and in memory-bounded pieces."""
    return accuracy(decisions(model, images), labels)


def accuracy_curve(models: Mapping[str, Classifier], images: Tensor, labels: Tensor,
                   perturb: Callable[[Tensor, Any], Tensor], values: Sequence[Any]) -> pd.DataFrame:
    """Accuracy of each model on ``perturb(images, value)`` for every value; each perturbed batch is made once."""
    rows = {}
    for value in values:
        perturbed = perturb(images, value)
        rows[value] = {name: scored(model, perturbed, labels) for name, model in models.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def under(model: Classifier, images: Tensor, labels: Tensor,
          changes: Mapping[Any, Callable[[], AbstractContextManager]]) -> pd.Series:
    """Accuracy of one model inside each context that changes it (``removed``, ``local_attention``)."""
    results = {}
    for value, change in changes.items():
        with change():
            results[value] = scored(model, images, labels)
    return pd.Series(results, name=model.name)


def block_removal(model: Classifier, images: Tensor, labels: Tensor, parts: Sequence[str] = PARTS) -> pd.DataFrame:
    """Accuracy with each block removed in turn, whole or only its attention or its MLP (Bhojanapalli et al.)."""
    blocks = range(depth(model))
    return pd.DataFrame({part: under(model, images, labels, {b: _remover(model, b, part) for b in blocks})
                         for part in parts}).rename_axis("block removed")


def window_curve(model: Classifier, images: Tensor, labels: Tensor, windows: Sequence[int] | None = None) -> pd.Series:
    """Accuracy as each patch may attend only to patches within ``window`` grid cells (the largest is global)."""
    grid = tuple(model.trunk.patch_embed.grid_size)
    windows = range(max_window(grid), -1, -1) if windows is None else windows
    curve = under(model, images, labels, {w: (lambda w=w: local_attention(model, w)) for w in windows})
    return curve.rename_axis("window (patches)")


def _remover(model: Classifier, block: int, part: str) -> Callable[[], AbstractContextManager]:
    """A deferred ``removed(model, block, part)``, so each context is entered only when it is measured."""
    return lambda: removed(model, block, part)
