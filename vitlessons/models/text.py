"""The lab text encoder: a small transformer over CLIP's own tokenizer, trained with the lab ViT in chapter 4.

The tokenizer is open_clip's byte-pair encoding for ViT-B-32 (bundled with the package, so it works offline); the
encoder is open_clip's ``TextTransformer``, causal like CLIP's, whose output is read at the end-of-text token. Only
its size is the lab's: one block 64 wide over 16 tokens instead of twelve blocks 512 wide over 77.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import torch
from torch import Tensor, nn

CONTEXT_LENGTH = 16  # tokens; the longest cue-world caption ("a picture of a zigzag triangle") takes 9 with start and end
VOCABULARY = 49408  # CLIP's byte-pair vocabulary


@dataclass(frozen=True)
class Tokenizer:
    """Captions to a (B, context_length) tensor of token ids; its repr names it, so a trained model's cache key can."""

    model: str = "ViT-B-32"
    context_length: int = CONTEXT_LENGTH

    def __call__(self, texts: str | Sequence[str]) -> Tensor:
        return _open_clip_tokenizer(self.model)(texts, context_length=self.context_length)


@cache
def _open_clip_tokenizer(model: str) -> Callable[..., Tensor]:
    """open_clip's tokenizer for ``model``, built once per process (reading its vocabulary takes a fraction of a second)."""
    import open_clip

    return open_clip.get_tokenizer(model)


def lab_text(embed_dim: int = 128, width: int = 64, layers: int = 1, heads: int = 4,
             context_length: int = CONTEXT_LENGTH, seed: int = 0) -> nn.Module:
    """A small CLIP text tower from token ids to ``embed_dim`` features, with initial weights fixed by ``seed``."""
    from open_clip.transformer import TextTransformer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TextTransformer(context_length=context_length, vocab_size=VOCABULARY, width=width, heads=heads,
                               layers=layers, output_dim=embed_dim)
