"""Segmentation without labels: masks from a ViT's last-layer CLS attention, scored by the Jaccard index.

DINO's protocol (Caron et al., 2021, Sec. 4.2.1 and ``visualize_attention.py``): for each head, take the class
token's attention over the patches in the last block, keep the patches that together hold 60% of the mass
(sort, normalise, accumulate), upsample that mask to the image, and compare it with the true foreground by the
Jaccard index (intersection over union). A head that attends evenly covers 60% of the image whatever it shows.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from vitlessons.attention import record
from vitlessons.models.wrapper import Model
from vitlessons.tensors import check_images

MASS = 0.6


@torch.no_grad()
def cls_attention(model: Model, images: Tensor, batch_size: int = 8, token: int | None = None) -> Tensor:
    """(B, heads, rows, cols) attention of the class token to each patch in the last block, on the patch grid.

    ``token`` picks another prefix token's attention (1: chapter 6's shape token); by default it is the token the
    model classifies from, the class token unless the model reads one token of several (``models.tokens``). Small batches: the recorder holds every block's full map, 1.6 MB per image and block for a 224 px ViT-S/14.
    """
    check_images(images)
    trunk = model.trunk
    if getattr(trunk, "cls_token", None) is None:
        raise TypeError(f"{model.name} has no class token whose attention could segment")
    prefix, device = trunk.num_prefix_tokens, next(model.parameters()).device
    token = getattr(model.net, "token", 0) if token is None else token
    if not 0 <= token < prefix:
        raise ValueError(f"{model.name} has {prefix} prefix token(s); token {token} is not one of them")
    model.eval()
    parts = []
    with record(model) as maps:
        for start in range(0, len(images), batch_size):
            model.features(images[start:start + batch_size].to(device))
            parts.append(maps[-1][:, :, token, prefix:].float().cpu())
    attention = torch.cat(parts)
    rows, cols = _grid(model, images, attention.shape[-1])
    return attention.reshape(*attention.shape[:2], rows, cols)


def _grid(model: Model, images: Tensor, patches: int) -> tuple[int, int]:
    """The patch grid of these images: the model's own, or the image size over the patch size for a dynamic-size ViT."""
    embed = model.trunk.patch_embed
    rows, cols = tuple(embed.grid_size)
    if rows * cols != patches:
        rows, cols = images.shape[-2] // embed.patch_size[0], images.shape[-1] // embed.patch_size[1]
    return rows, cols


def mass_masks(attention: Tensor, mass: float = MASS) -> Tensor:
    """Boolean masks of the smallest set of patches holding ``mass`` of each map's attention (maps on the last two dims)."""
    if not 0 < mass <= 1:
        raise ValueError(f"mass must lie in (0, 1], got {mass}")
    flat = attention.flatten(-2)
    values, order = flat.sort(dim=-1, stable=True)  # ascending, as DINO's: keep where the cumulative share > 1 - mass
    share = values.cumsum(-1) / values.sum(-1, keepdim=True)
    kept = torch.zeros_like(flat, dtype=torch.bool).scatter_(-1, order, share > 1 - mass)
    return kept.reshape(attention.shape)


def upsample(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """Patch-grid masks (..., rows, cols) as pixel masks (..., H, W): each patch's decision over its pixels."""
    lead = masks.shape[:-2]
    pixels = F.interpolate(masks.reshape(-1, 1, *masks.shape[-2:]).float(), size=size, mode="nearest")
    return pixels.reshape(*lead, *size) > 0.5


def jaccard(predicted: Tensor, target: Tensor) -> Tensor:
    """Intersection over union of boolean masks over the last two dims (1 where both are empty)."""
    if predicted.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"masks of different sizes: {tuple(predicted.shape[-2:])} and {tuple(target.shape[-2:])}")
    predicted, target = predicted.bool(), target.bool()
    intersection = (predicted & target).sum(dim=(-2, -1)).float()
    union = (predicted | target).sum(dim=(-2, -1)).float()
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union))


def head_jaccard(model: Model, images: Tensor, masks: Tensor, mass: float = MASS) -> Tensor:
    """(heads,) mean Jaccard over the images of each head's ``mass`` mask against the true ``masks`` (B, H, W)."""
    predicted = upsample(mass_masks(cls_attention(model, images), mass), tuple(masks.shape[-2:]))
    return jaccard(predicted, masks[:, None].to(predicted.device)).mean(0)


def jaccard_table(models: Mapping[str, Model], images: Tensor, masks: Tensor, mass: float = MASS) -> pd.DataFrame:
    """Best head and mean over heads, per model: the shape of DINO's Table 6 (its numbers are the best head's)."""
    rows = {}
    for name, model in models.items():
        per_head = head_jaccard(model, images, masks, mass)
        rows[name] = {"best head": per_head.max().item(), "mean over heads": per_head.mean().item(),
                      "which head": int(per_head.argmax())}
    return pd.DataFrame(rows).T


@torch.no_grad()
def patch_pca(model: Model, images: Tensor, components: int = 3) -> Tensor:
    """(B, rows, cols, components) in [0, 1]: the last block's patch tokens projected on their top principal axes.

    The axes are fitted over the patches of all the images together, so one colour means the same direction
    in every image; each component is then scaled to [0, 1] over all patches (a picture, not a measurement).
    """
    device = next(model.parameters()).device
    model.eval()
    tokens = model.block_tokens(images.to(device))
    patches = tokens.patches[-1].float().cpu()  # (B, N, D)
    flat = patches.reshape(-1, patches.shape[-1])
    centred = flat - flat.mean(0)
    _, _, axes = torch.linalg.svd(centred, full_matrices=False)
    axes = axes[:components]
    axes = axes * axes.gather(1, axes.abs().argmax(1, keepdim=True)).sign()  # an axis's sign is arbitrary: fix it
    projected = centred @ axes.T
    low, high = projected.min(0).values, projected.max(0).values
    scaled = (projected - low) / (high - low).clamp_min(1e-12)
    return scaled.reshape(len(images), *tokens.grid, components)
