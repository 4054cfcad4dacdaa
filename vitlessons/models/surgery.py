"""Surgery on a timm ViT for chapter 5: remove blocks or their branches, or make self-attention local.

Each operation is a context manager that changes the model in place inside the ``with`` only, and puts back
the very modules it took out when the ``with`` ends, also on an exception: outputs afterwards are
bit-identical. Each takes a course ``Model`` or a raw timm ``VisionTransformer``, with or without a class
token or register tokens (``num_prefix_tokens`` counts them).

The claims tested: Bhojanapalli et al. (ICCV 2021), any block but the first can go without a large loss,
and removing attention hurts more than removing an MLP; Paul & Chen (AAAI 2022), restricting attention to
a local window costs little accuracy.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from timm.models.vision_transformer import Block, VisionTransformer
from torch import Tensor, nn

from vitlessons.attention import attention_layers
from vitlessons.models.wrapper import Model

PARTS = ("block", "attention", "mlp")
BRANCHES = {"attention": "attn", "mlp": "mlp"}  # the attribute of a timm Block that holds each branch


class Skip(nn.Module):
    """Stands in for a removed block: the tokens pass on unchanged, whatever mask the caller hands along."""

    def forward(self, x: Tensor, *_args, **_kwargs) -> Tensor:
        return x


class Zero(nn.Module):
    """Stands in for a removed branch: it adds nothing to the residual stream, so the block computes x + 0."""

    def forward(self, x: Tensor, *_args, **_kwargs) -> Tensor:
        return torch.zeros_like(x)


def _vit(model: nn.Module) -> VisionTransformer:
    """The timm ViT inside a course model, or the network itself; a clear error for anything else."""
    trunk = model.trunk if isinstance(model, Model) else model
    if not isinstance(trunk, VisionTransformer):
        raise TypeError(f"{_name(model)} is not a timm VisionTransformer (its network is {type(trunk).__name__})")
    return trunk


def depth(model: nn.Module) -> int:
    """How many transformer blocks the ViT has (removed ones included): the range of block indices."""
    return len(_vit(model).blocks)


@contextmanager
def removed(model: nn.Module, block: int | Sequence[int], part: str = "block") -> Iterator[None]:
    """Inside the ``with``, the given blocks, or only their attention or MLP branch, are skipped.

    Indices count like Python's: -1 is the last block. ``attention.record`` hooks the attention layers present
    when it starts, so enter it inside this ``with``: it then records the blocks that still attend.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    trunk = _vit(model)
    indices = _block_indices(model, block)
    if part == "block":
        swaps = [(trunk.blocks, str(index), Skip()) for index in indices]
    else:
        swaps = [(_timm_block(model, index), BRANCHES[part], Zero()) for index in indices]
    originals = [(parent, name, getattr(parent, name)) for parent, name, _ in swaps]
    try:
        for parent, name, stand_in in swaps:
            setattr(parent, name, stand_in)
        yield
    finally:
        for parent, name, original in originals:
            setattr(parent, name, original)


def _block_indices(model: nn.Module, block: int | Sequence[int]) -> list[int]:
    """The blocks asked for, as non-negative indices without repeats, checked against the model's depth."""
    count = depth(model)
    requested = [block] if isinstance(block, int) else list(block)
    for index in requested:
        if not isinstance(index, int):
            raise TypeError(f"block indices must be ints, got {index!r}")
        if not -count <= index < count:
            raise ValueError(f"{_name(model)} has {count} blocks, 0 to {count - 1} (or -{count} to -1); "
                             f"there is no block {index}")
    return sorted({index % count for index in requested})


def _timm_block(model: nn.Module, index: int) -> Block:
    """A block whose branches can be removed: only a pre-norm timm Block adds each branch straight to x."""
    found = _vit(model).blocks[index]
    if not isinstance(found, Block):
        raise TypeError(f"block {index} of {_name(model)} is a {type(found).__name__}, not a timm Block; "
                        f"only a Block's attention or MLP branch can be removed")
    return found


def window_mask(grid: tuple[int, int], window: int, prefix_tokens: int) -> Tensor:
    """(tokens, tokens) booleans, True where a query may attend to a key, tokens in timm's order (prefix first).

    A patch sees the patches within Chebyshev distance ``window`` on the grid (0: itself only) and every
    prefix token; a prefix token (class or register token) sees everything, as in Paul & Chen's local ViT.
    """
    if window < 0 or prefix_tokens < 0 or min(grid) < 1:
        raise ValueError(f"expected a grid of at least 1x1, window >= 0 and prefix_tokens >= 0, "
                         f"got grid {grid}, window {window}, prefix_tokens {prefix_tokens}")
    rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
    cells = torch.stack([rows.flatten(), cols.flatten()], dim=1).float()
    tokens = prefix_tokens + grid[0] * grid[1]
    mask = torch.ones(tokens, tokens, dtype=torch.bool)
    mask[prefix_tokens:, prefix_tokens:] = torch.cdist(cells, cells, p=float("inf")) <= window
    return mask


def max_window(grid: tuple[int, int]) -> int:
    """The smallest window in which every patch sees every other: local attention that is global."""
    return max(grid) - 1


@contextmanager
def local_attention(model: nn.Module, window: int) -> Iterator[Tensor]:
    """Inside the ``with``, every attention layer attends within ``window`` (see ``window_mask``, which it yields).

    A forward pre-hook hands each timm ``Attention`` the mask as its ``attn_mask``, so the model-level forwards
    (``forward``, ``forward_features``, ``forward_intermediates``) need not pass it, and ``attention.record``
    sees it too. The mask is additive (0 or -inf): older timm adds a boolean mask to the scores on its unfused path.
    """
    trunk = _vit(model)
    allowed = window_mask(tuple(trunk.patch_embed.grid_size), window, trunk.num_prefix_tokens)
    layers = attention_layers(model)
    if "attn_mask" not in inspect.signature(layers[0].forward).parameters:
        raise RuntimeError("local_attention needs a timm whose Attention takes attn_mask; upgrade timm")
    bias = torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))

    def hand_mask(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        tokens = args[0].shape[1]
        if tokens != len(bias):
            raise ValueError(f"local_attention made a mask for {len(bias)} tokens ({trunk.num_prefix_tokens} prefix "
                             f"and a {trunk.patch_embed.grid_size} grid), but the input has {tokens}")
        if kwargs.get("attn_mask") is not None:
            raise ValueError("local_attention sets the attention mask itself; this call passed one already")
        return args, {**kwargs, "attn_mask": bias.to(args[0])}

    # prepend: the mask is in place before any other pre-hook (attention.record's) reads the call
    handles = [layer.register_forward_pre_hook(hand_mask, with_kwargs=True, prepend=True) for layer in layers]
    try:
        yield allowed
    finally:
        for handle in handles:
            handle.remove()


def _name(model: nn.Module) -> str:
    """How errors refer to a model: its course name, else its class."""
    return getattr(model, "name", type(model).__name__)
