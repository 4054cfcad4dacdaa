"""CLIP as an image classifier: zero-shot weights from class-name prompts (Radford et al., 2021)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import open_clip
import torch
from torch import Tensor, nn

from vitlessons.config import cache_dir


class ZeroShotClassifier(nn.Module):
    """Image embeddings scored against one averaged text embedding per class, as in the CLIP paper."""

    def __init__(self, clip: nn.Module, class_weights: Tensor):
        super().__init__()
        self.clip = clip
        self.register_buffer("class_weights", class_weights)  # (embed_dim, num_classes), unit columns
        self.logit_scale = float(clip.logit_scale.exp().item())

    def forward(self, images: Tensor) -> Tensor:
        features = self.clip.encode_image(images, normalize=True)
        return self.logit_scale * features @ self.class_weights


def class_weights(clip: nn.Module, model_name: str, classnames: Sequence[str], templates: Sequence, weights_tag: str) -> Tensor:
    """Text embeddings of every class averaged over prompt templates, cached on disk because they are slow on a CPU."""
    key = hashlib.sha256(repr((model_name, weights_tag, list(classnames), [_text(t) for t in templates])).encode()).hexdigest()[:16]
    path = Path(cache_dir()) / "zeroshot" / f"{model_name}-{key}.pt"
    if path.exists():
        return torch.load(path, map_location="cpu")
    tokenizer = open_clip.get_tokenizer(model_name)
    device = next(clip.parameters()).device
    weights = open_clip.build_zero_shot_classifier(
        clip, tokenizer=tokenizer, classnames=classnames, templates=templates, device=device, use_tqdm=True,
    ).cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(weights, temporary)
    temporary.replace(path)  # atomic: a half-written cache is never read
    return weights


def _text(template) -> str:
    """A template as text, whether it is a format string or a function of the class name."""
    return template if isinstance(template, str) else template("{}")
