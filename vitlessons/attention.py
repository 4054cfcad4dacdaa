"""Attention weights from timm ViTs, and how far each head looks (mean attention distance).

timm computes attention with a fused kernel that never forms the (tokens x tokens) weight matrix, so a
hook on ``attn_drop`` records nothing (jacobgil/vit-explain#23). ``record`` hooks the queries and keys
instead, as each block's ``q_norm`` and ``k_norm`` hand them on, and recomputes the softmax beside the
fused kernel: the model's own computation, and so its outputs, are untouched. A mask that reaches the layer
as its ``attn_mask`` (``models.surgery.local_attention`` hands one on) is applied as timm applies it.

Mean attention distance follows the ViT paper (Dosovitskiy et al., ICLR 2021, App. D.7): for each head,
the distance in pixels from a query patch to every other patch, weighted by the attention weight, averaged
over queries and images. As in probing-vits, rows and columns of the class token are left out and the rest
is not renormalised; a patch's position is its centre, so two patches lie patch size x grid distance apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from timm.models.vision_transformer import Attention
from torch import Tensor, nn

from vitlessons.models.wrapper import Model
from vitlessons.tensors import check_images


def _trunk(model: nn.Module) -> nn.Module:
    """The timm network inside a course model, or the network itself."""
    return model.trunk if isinstance(model, Model) else model


def attention_layers(model: nn.Module) -> list[Attention]:
    """The self-attention layers of a timm ViT, in block order; a clear error for anything else."""
    layers = [m for m in _trunk(model).modules() if isinstance(m, Attention)]
    if not layers:
        raise TypeError(f"{getattr(model, 'name', type(model).__name__)} has no timm ViT attention layers to record")
    return layers


@contextmanager
def record(model: nn.Module) -> Iterator[list[Tensor]]:
    """Inside the block, each forward pass fills the list with one (B, heads, tokens, tokens) map per block."""
    maps: list[Tensor] = []
    handles = []
    for index, layer in enumerate(attention_layers(model)):
        queries: list[Tensor] = []
        masks: list[Tensor | None] = []

        def keep_mask(_module: nn.Module, _args: tuple, kwargs: dict, store: list = masks) -> None:
            store.append(kwargs.get("attn_mask"))

        def keep_queries(_module: nn.Module, _inputs: tuple, q: Tensor, store: list = queries, first: bool = index == 0):
            if first:  # a new forward pass replaces the maps of the last one
                maps.clear()
            store.append(q)

        def add_map(_module: nn.Module, _inputs: tuple, k: Tensor, store: list = queries, kept: list = masks,
                    scale: float = layer.scale):
            maps.append(_softmax(store.pop(), k, scale, kept.pop()))
        handles += [layer.register_forward_pre_hook(keep_mask, with_kwargs=True),
                    layer.q_norm.register_forward_hook(keep_queries), layer.k_norm.register_forward_hook(add_map)]
    try:
        yield maps
    finally:
        for handle in handles:
            handle.remove()


def _softmax(queries: Tensor, keys: Tensor, scale: float, mask: Tensor | None = None) -> Tensor:
    """The attention weights that the fused kernel applies; a boolean mask says where to attend, any other adds."""
    scores = (queries * scale) @ keys.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    return scores.softmax(dim=-1).detach()


def patch_distances(grid: tuple[int, int], patch_size: int) -> Tensor:
    """(patches, patches) distances in pixels between patch centres, patches in row-major order."""
    rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
    centres = torch.stack([rows.flatten(), cols.flatten()], dim=1).float() * patch_size
    return torch.cdist(centres, centres)


def mean_distance(maps: Sequence[Tensor], grid: tuple[int, int], patch_size: int, prefix_tokens: int = 1) -> Tensor:
    """(blocks, heads) mean attention distance in pixels over the queries and images of recorded maps."""
    patches = grid[0] * grid[1]
    distances = patch_distances(grid, patch_size)
    rows = []
    for attention in maps:
        if attention.shape[-1] != prefix_tokens + patches:
            raise ValueError(f"a map over {attention.shape[-1]} tokens does not fit {prefix_tokens} prefix tokens "
                             f"and a {grid[0]}x{grid[1]} patch grid")
        among_patches = attention[..., prefix_tokens:, prefix_tokens:]
        rows.append((among_patches * distances.to(attention)).sum(-1).mean(dim=(0, 2)))
    return torch.stack(rows)


@torch.no_grad()
def attention_distance(model: Model, images: Tensor, batch_size: int = 16) -> Tensor:
    """(blocks, heads) mean attention distance of a course ViT over a set of images, in pixels of its input.

    Maps are reduced batch by batch: the maps of a 224 px ViT-S take 19 MB per image.
    """
    check_images(images)
    trunk = _trunk(model)
    device = next(model.parameters()).device
    grid, patch_size = tuple(trunk.patch_embed.grid_size), trunk.patch_embed.patch_size[0]
    total = torch.zeros(())
    model.eval()
    with record(model) as maps:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].to(device)
            model.features(batch)
            total = total + mean_distance(maps, grid, patch_size, trunk.num_prefix_tokens).cpu() * len(batch)
    return total / len(images)


def uniform_distance(model: Model) -> float:
    """The mean attention distance of a head that attends evenly to every patch: the yardstick for 'global'."""
    trunk = _trunk(model)
    return patch_distances(tuple(trunk.patch_embed.grid_size), trunk.patch_embed.patch_size[0]).mean().item()
