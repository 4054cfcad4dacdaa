"""Accuracy as one thing is varied: a perturbation of the input, a change to the model itself, or the block read.

Chapters 5 and 6 ask the same question many times: how fast does accuracy fall as the images are filtered,
turned, shifted or occluded, as blocks are removed, or as attention is confined to a window? Each function here
answers it for one kind of variation and returns a table (one row per value, one column per model), ready
to print and to plot. Chapter 6 also reads what each block knows: its class token through the shared head, or a
linear probe trained on its frozen features.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from vitlessons import knn
from vitlessons.evaluate import decisions
from vitlessons.layers import layer_representations
from vitlessons.metrics import accuracy
from vitlessons.models.surgery import PARTS, depth, local_attention, max_window, removed
from vitlessons.models.wrapper import Classifier, Model, SelectClasses
from vitlessons.ood import turn_scores
from vitlessons.objectives.rotation import TURNS, Rotation
from vitlessons.perturb import patch_drop


@torch.no_grad()
def block_features(model: Model, images: Tensor, batch_size: int = 64) -> Tensor:
    """(blocks, B, D): a ViT's class token after every block, before the final norm, on the CPU."""
    if getattr(model.trunk, "cls_token", None) is None:
        raise TypeError(f"{model.name} has no class token to read after each block")
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model.block_tokens(images[start:start + batch_size].to(device)).cls.cpu()
                      for start in range(0, len(images), batch_size)], dim=1)


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
    device = next(model.parameters()).device
    cls = block_features(model, images, batch_size).to(device)
    logits = torch.stack([trunk.forward_head(trunk.norm(block[:, None])) for block in cls])
    if isinstance(model.net, SelectClasses):
        logits = logits.index_select(-1, model.net.classes)
    return logits.cpu()


def linear_probe(train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], steps: int = 300, lr: float = 0.05,
                 weight_decay: float = 1e-4, seed: int = 0) -> float:
    """Test accuracy of a linear classifier trained on frozen (N, D) features: what a representation makes readable.

    Features are standardised with the training set's statistics; the classifier is trained full-batch with AdamW
    from seeded initial weights, so the same features always give the same accuracy.
    """
    (x, y), (x_test, y_test) = train, test
    if x.ndim != 2 or x_test.shape[1:] != x.shape[1:] or len(x) != len(y) or len(x_test) != len(y_test):
        raise ValueError(f"need (N, D) features with one label each, got {tuple(x.shape)} with {len(y)} labels "
                         f"and {tuple(x_test.shape)} with {len(y_test)}")
    mean, std = x.float().mean(0), x.float().std(0).clamp_min(1e-6)
    x, x_test = (x.float() - mean) / std, (x_test.float() - mean) / std
    classes = int(max(y.max(), y_test.max())) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(x.shape[1], classes)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad()
            nn.functional.cross_entropy(head(x), y).backward()
            optimizer.step()
    with torch.no_grad():
        return accuracy(head(x_test).argmax(-1), y_test)


def block_probes(model: Model, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
                 ensemble: Sequence[int] = ()) -> pd.Series:
    """Linear-probe accuracy on each layer's pooled features and, given layer positions, on them concatenated.

    A ViT's layers are its blocks' class tokens, a CNN's its stem and stages averaged over space
    (``layers.layer_representations``). Concatenating the class tokens of the last blocks is Naseer et al.'s
    off-the-shelf feature ensemble.
    """
    return layer_probes(model, train[0], test[0], {model.name: (train[1], test[1])}, ensemble)[model.name]


def layer_probes(model: Model, train: Tensor, test: Tensor, labels: Mapping[str, tuple[Tensor, Tensor]],
                 ensemble: Sequence[int] = ()) -> pd.DataFrame:
    """Linear-probe accuracy per layer (rows) for each task's (train, test) labels (columns), features read once.

    ``ensemble`` (layer positions) adds a row for those layers' features concatenated, Naseer et al.'s ensemble.
    """
    features = layer_representations(model, train, pooled=True)
    test_features = layer_representations(model, test, pooled=True)
    if ensemble:
        picked = [list(features)[i] for i in ensemble]
        for f in (features, test_features):
            f[" + ".join(picked)] = torch.cat([f[name] for name in picked], dim=-1)
    return pd.DataFrame({task: {name: linear_probe((features[name], y), (test_features[name], y_test))
                                for name in features} for task, (y, y_test) in labels.items()}).rename_axis("layer")


def turn_accuracy(model: Classifier, rotation: Rotation, images: Tensor, batch_size: int = 64) -> Tensor:
    """(B,) the share of each image's four quarter turns that the rotation head names correctly, in eval mode."""
    return turn_scores(model, rotation, images, lambda logits, turns, _: (logits.argmax(-1) == turns).float()
                       .reshape(TURNS, -1).mean(0), batch_size)


def turned_features(model: Model, images: Tensor, batch_size: int = 16) -> tuple[Tensor, Tensor]:
    """Frozen pooled features of every image in its four quarter turns, and each copy's turn: a rotation probe's data.

    Row ``k * len(images) + i`` is image ``i`` turned ``k`` times, as ``objectives.rotation.quarter_turns`` orders them;
    one turn is made at a time and read in small batches, so 224 px photos stay within a Binder session's memory.
    """
    features = torch.cat([knn.features(model, torch.rot90(images, k, dims=(-2, -1)), batch_size) for k in range(TURNS)])
    return features, torch.arange(TURNS).repeat_interleave(len(images))


def rotation_probe(model: Model, train: Tensor, test: Tensor) -> float:
    """Test accuracy of a linear probe naming each image's quarter turn from the model's frozen pooled features.

    Chance is 0.25; a model whose features say which way is up scores far above it.
    """
    return linear_probe(turned_features(model, train), turned_features(model, test))


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


def patch_drop_curves(models: Mapping[str, Classifier], images: Tensor, labels: Tensor, fractions: Sequence[float],
                      patch_size: int, saliency: Mapping[str, Tensor] | None = None, seed: int = 0) -> pd.DataFrame:
    """Accuracy against the fraction of patches blacked out (Naseer et al.'s PatchDrop), columns (drop, model).

    "random" drops patches at random (the same draw for every model); each named ``saliency`` map (B, H, W) or
    (B, rows, cols) adds "salient" (its highest patches dropped first: the object) and "non-salient" (its lowest
    first: the background). Patches are blacked out before each model's normalisation, as in the paper.
    """
    def random(x: Tensor, fraction: float) -> Tensor:
        return patch_drop(x, fraction, patch_size, "random", generator=torch.Generator(x.device).manual_seed(seed))

    drops: dict[str, Callable[[Tensor, float], Tensor]] = {"random": random}
    for source, maps in (saliency or {}).items():
        for mode in ("salient", "non_salient"):
            drops[f"{mode.replace('_', '-')} ({source})"] = \
                lambda x, fraction, mode=mode, maps=maps: patch_drop(x, fraction, patch_size, mode, saliency=maps)
    return pd.concat({name: accuracy_curve(models, images, labels, drop, fractions) for name, drop in drops.items()},
                     axis=1).rename_axis("fraction dropped")


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
