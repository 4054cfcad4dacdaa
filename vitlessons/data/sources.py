"""What the training loop iterates over: fixed tensors, or a cue-world stream that draws fresh images every epoch.

A source also describes itself (``config``), so a trained model can be cached under the data it saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from vitlessons.config import generator
from vitlessons.data import cueworld
from vitlessons.tensors import tensor_bytes

DRAW = 512  # images a stream renders at once


class TensorSource:
    """Batches of equal-length tensors (images, labels, ...), reshuffled every epoch by a seeded generator."""

    def __init__(self, *tensors: Tensor):
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError(f"need tensors of equal length, got lengths {[len(t) for t in tensors]}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def batches(self, epoch: int, batch_size: int, seed: int) -> Iterator[tuple[Tensor, ...]]:
        """One epoch in an order fixed by ``seed`` and ``epoch``."""
        loader = DataLoader(TensorDataset(*self.tensors), batch_size=batch_size, shuffle=True,
                            generator=generator(_derive(seed, "shuffle", epoch)))
        return iter(loader)

    def config(self) -> dict[str, Any]:
        """The tensors' shapes and a digest of their bytes: the same data gives the same key."""
        digest = hashlib.sha256()
        for tensor in self.tensors:
            digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
            digest.update(tensor_bytes(tensor))
        return {"source": "tensors", "size": len(self), "sha256": digest.hexdigest()}


@dataclass(frozen=True)
class CueWorldStream:
    """``images`` fresh images of a cue-world split every epoch, so a model never sees the same image twice.

    Epoch ``e`` is drawn from a seed derived from (``seed``, ``e``), never equal to a test split's seed.
    """

    split: str
    images: int
    seed: int = 0
    size: int = 64

    def __post_init__(self) -> None:
        if self.split not in cueworld.SPLITS:
            raise ValueError(f"unknown cue-world split {self.split!r}; choose one of {cueworld.SPLITS}")
        if self.images < 1:
            raise ValueError(f"images per epoch must be at least 1, got {self.images}")

    def __len__(self) -> int:
        return self.images

    def batches(self, epoch: int, batch_size: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield this epoch's (image, label) batches."""
        for drawn in self.draws(epoch, batch_size):
            yield drawn.images, drawn.labels

    def draws(self, epoch: int, batch_size: int) -> Iterator[cueworld.CueBatch]:
        """This epoch's images as batches with all their labels, drawn a few batches at a time (memory stays small)."""
        per_draw = batch_size * max(1, DRAW // batch_size)
        for index, start in enumerate(range(0, self.images, per_draw)):
            drawn = cueworld.make_split(self.split, min(per_draw, self.images - start), size=self.size,
                                        seed=_derive(self.seed, f"{self.split}:{index}", epoch))
            for first in range(0, len(drawn), batch_size):
                yield drawn[first:first + batch_size]

    def config(self) -> dict[str, Any]:
        return {"source": "cueworld-stream", "split": self.split, "images": self.images, "seed": self.seed, "size": self.size}


@dataclass(frozen=True)
class CaptionedStream:
    """A cue-world stream whose images come with captions (token ids) instead of labels: CLIP's training data.

    Each image's caption is written from one of ``templates`` (``cueworld.caption``), picked at random per image
    and epoch; ``tokenizer`` turns the captions into a (B, context) tensor of token ids. Its repr is part of the
    cache key, so it must name the tokenizer the same way in every process (``models.text.Tokenizer`` does).
    """

    images: CueWorldStream
    tokenizer: Callable[[Sequence[str]], Tensor]
    templates: tuple[str, ...] = cueworld.CAPTION_TEMPLATES

    def __post_init__(self) -> None:
        if " at 0x" in repr(self.tokenizer):
            raise ValueError(f"the tokenizer's repr {self.tokenizer!r} holds a memory address, so the cache key would "
                             "change in every process; wrap it as models.text.Tokenizer does")
        if self.images.split not in ("aligned", "conflict", "randomised"):
            raise ValueError(f"captions name a shape and a texture; split {self.images.split!r} lacks one of them")
        if not self.templates:
            raise ValueError("need at least one caption template")

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, epoch: int, batch_size: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield this epoch's (image, caption tokens) batches; the templates are picked from the stream's seed."""
        for index, drawn in enumerate(self.images.draws(epoch, batch_size)):
            picks = torch.randint(len(self.templates), (len(drawn),),
                                  generator=generator(_derive(self.images.seed, f"captions:{index}", epoch)))
            captions = [cueworld.caption(self.templates[t], s, x)
                        for t, s, x in zip(picks.tolist(), drawn.shapes.tolist(), drawn.textures.tolist())]
            yield drawn.images, self.tokenizer(captions)

    def config(self) -> dict[str, Any]:
        return {**self.images.config(), "source": "cueworld-captions", "templates": list(self.templates),
                "tokenizer": repr(self.tokenizer)}


def _derive(seed: int, purpose: str, epoch: int) -> int:
    """A stable 63-bit seed for one epoch (Python's ``hash`` of a string changes between processes)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}:{epoch}".encode()).digest()[:8], "little") >> 1
