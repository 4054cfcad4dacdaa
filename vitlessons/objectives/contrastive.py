"""Contrastive image-text training (CLIP; Radford et al., ICML 2021): pick each image's own caption out of the batch.

N images and their N captions give an N x N matrix of cosine similarities between image and text embeddings,
multiplied by a learned scale (one over a temperature). Each row asks "which caption is this image's?", each column
"which image is this caption's?"; the loss is the mean of the two cross-entropies, the diagonal being the answers.
Nothing in it names a class: whatever the captions say is what the two encoders learn to agree on.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitlessons.objectives.base import Objective, StepOutput

INITIAL_TEMPERATURE = 0.07  # CLIP's initial temperature: a logit scale of 1 / 0.07
MAX_LOGIT_SCALE = 100.0  # CLIP clips the scale here, so that training cannot sharpen the logits without limit


def similarity_logits(image_embeddings: Tensor, text_embeddings: Tensor, logit_scale: Tensor | float) -> Tensor:
    """(N_images, N_texts) scaled cosine similarities: row i scores every caption for image i."""
    return logit_scale * F.normalize(image_embeddings, dim=-1) @ F.normalize(text_embeddings, dim=-1).T


def contrastive_loss(image_embeddings: Tensor, text_embeddings: Tensor, logit_scale: Tensor | float) -> Tensor:
    """CLIP's symmetric cross-entropy for N matched (image, text) pairs, pair i being image i with text i."""
    return symmetric_cross_entropy(similarity_logits(image_embeddings, text_embeddings, logit_scale))


def symmetric_cross_entropy(logits: Tensor) -> Tensor:
    """The mean of the row-wise (image to caption) and column-wise (caption to image) cross-entropies, diagonal right."""
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


class Contrastive(Objective):
    """CLIP's objective for a course image model: a text tower trained beside it, both projected into one space.

    A batch is (images, token ids of their captions). The objective owns the text tower (any module from token ids
    to features, such as open_clip's ``TextTransformer``), the image projection and the temperature, so they are
    trained with the image model and cached beside it, as a rotation head is.
    """

    def __init__(self, text: nn.Module, embed_dim: int, seed: int = 0):
        super().__init__()
        self.text, self.embed_dim, self.seed = text, embed_dim, seed
        self.image_projection: nn.Linear | None = None
        self.logit_scale = LogitScale()

    def setup(self, model: nn.Module) -> None:
        if not hasattr(model, "trunk"):  # duck-typed: models import the training loop
            raise TypeError(f"contrastive training takes a course model (vitlessons.models.Model), got {type(model).__name__}")
        with torch.random.fork_rng(devices=[]):  # the projection's initial weights depend on the seed only
            torch.manual_seed(self.seed)
            self.image_projection = nn.Linear(model.trunk.num_features, self.embed_dim, bias=False)
        self.to(next(model.parameters()).device)

    def encode_image(self, model: nn.Module, images: Tensor) -> Tensor:
        """(B, embed_dim) image embeddings in the shared space (not yet normalised)."""
        return self.image_projection(model._features(images))

    def encode_text(self, tokens: Tensor) -> Tensor:
        """(B, embed_dim) caption embeddings in the shared space (not yet normalised)."""
        return self.text(tokens)

    def step(self, model: nn.Module, batch: tuple[Tensor, ...]) -> StepOutput:
        images, tokens = batch
        scale = self.logit_scale()
        logits = similarity_logits(self.encode_image(model, images), self.encode_text(tokens), scale)
        loss = symmetric_cross_entropy(logits)
        # a caption may repeat within a batch ("a striped star"): any image with the same caption counts as a match
        same_caption = (tokens[:, None] == tokens[None]).all(-1)
        hits = same_caption.gather(1, logits.detach().argmax(-1, keepdim=True)).float().mean()
        return StepOutput(loss, {"loss": loss.detach(), "caption accuracy": hits, "logit scale": scale.detach()})

    def config(self) -> dict[str, Any]:
        return {**super().config(), "embed_dim": self.embed_dim, "seed": self.seed, "text": repr(self.text)}
