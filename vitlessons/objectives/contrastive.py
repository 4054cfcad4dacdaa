"""Contrastive image-text training (CLIP; Radford et al., ICML 2021): pick each image's own caption out of the batch.

N images and their N captions give an N x N matrix of cosine similarities between image and text embeddings,
multiplied by a learned scale (one over a temperature). Each row asks "which caption is this image's?", each column
"which image is this caption's?"; the loss is the mean of the two cross-entropies, the diagonal being the answers.
Nothing in it names a class: whatever the captions say is what the two encoders learn to agree on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

INITIAL_TEMPERATURE = 0.07  # CLIP's initial temperature: a logit scale of 1 / 0.07
MAX_LOGIT_SCALE = 100.0  # CLIP clips the scale here, so that training cannot sharpen the logits without limit


def similarity_logits(image_embeddings: Tensor, text_embeddings: Tensor, logit_scale: Tensor | float) -> Tensor:
    """(N_images, N_texts) scaled cosine similarities: row i scores every caption for image i."""
    return logit_scale * F.normalize(image_embeddings, dim=-1) @ F.normalize(text_embeddings, dim=-1).T


def contrastive_loss(image_embeddings: Tensor, text_embeddings: Tensor, logit_scale: Tensor | float) -> Tensor:
    """CLIP's symmetric cross-entropy for N matched (image, text) pairs, pair i being image i with text i."""
    logits = similarity_logits(image_embeddings, text_embeddings, logit_scale)
    if logits.shape[0] != logits.shape[1]:
        raise ValueError(f"need one caption per image, got {logits.shape[0]} images and {logits.shape[1]} captions")
    matches = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, matches) + F.cross_entropy(logits.T, matches)) / 2


class LogitScale(nn.Module):
    """CLIP's learned temperature, kept as a log so it stays positive, and clipped at ``MAX_LOGIT_SCALE``."""

    def __init__(self, temperature: float = INITIAL_TEMPERATURE):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def forward(self) -> Tensor:
        return self.log_scale.clamp(max=math.log(MAX_LOGIT_SCALE)).exp()
