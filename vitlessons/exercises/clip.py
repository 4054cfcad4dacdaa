"""Chapter 4's checkers: CLIP's symmetric contrastive loss, and zero-shot class weights from prompt embeddings."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from vitlessons.exercises.common import ExerciseFailed, passed, run
from vitlessons.objectives.contrastive import contrastive_loss

# Exercise 4.1: the symmetric contrastive loss ------------------------------------------------


def check_clip_loss(clip_loss: Callable[[Tensor, Tensor, float], Tensor]) -> None:
    """Exercise 4.1: the mean of the image-to-caption and caption-to-image cross-entropies over scaled cosine similarities."""
    generator = torch.Generator().manual_seed(4)
    for trial, scale in enumerate((1.0, 14.3, 100.0)):
        images, texts = torch.randn(6, 5, generator=generator) * 3, torch.randn(6, 5, generator=generator) * 3
        texts[trial] = images[trial] * 2  # one matched pair points the same way
        answer, expected = run(clip_loss, images.clone(), texts.clone(), scale), contrastive_loss(images, texts, scale)
        if not isinstance(answer, Tensor) or answer.ndim != 0:
            raise ExerciseFailed(f"return one number (a 0-d tensor), got {getattr(answer, 'shape', type(answer).__name__)}")
        if torch.isclose(answer, expected, atol=1e-5):
            continue
        raw = scale * images @ texts.T
        cosine = scale * F.normalize(images, dim=-1) @ F.normalize(texts, dim=-1).T
        matches = torch.arange(6)
        if torch.isclose(answer, (F.cross_entropy(raw, matches) + F.cross_entropy(raw.T, matches)) / 2, atol=1e-5):
            raise ExerciseFailed("normalise both sets of embeddings to unit length first: CLIP compares directions")
        one_way = [F.cross_entropy(cosine, matches), F.cross_entropy(cosine.T, matches)]
        if any(torch.isclose(answer, half, atol=1e-5) for half in one_way):
            raise ExerciseFailed("that is one direction only: average the image-to-caption (rows) and caption-to-image "
                                 "(columns) cross-entropies")
        if torch.isclose(answer, (F.cross_entropy(cosine / scale, matches) + F.cross_entropy(cosine.T / scale, matches)) / 2,
                         atol=1e-5) and scale != 1.0:
            raise ExerciseFailed("multiply the cosine similarities by logit_scale before the cross-entropy")
        raise ExerciseFailed(f"on random embeddings with logit_scale {scale}: expected {expected:.4f}, got {float(answer):.4f}")
    passed("the symmetric contrastive loss agrees with CLIP's on three scales")


# Exercise 4.2: zero-shot weights from prompt embeddings --------------------------------------


def check_zero_shot_weights(zero_shot_weights: Callable[[Tensor], Tensor]) -> None:
    """Exercise 4.2: (classes, templates, D) prompt embeddings to (D, classes) unit columns, the mean of unit prompts."""
    embeddings = torch.randn(4, 3, 8, generator=torch.Generator().manual_seed(5))
    embeddings[:, 0] *= 50  # one template with long embeddings: averaging before normalising lets it dominate
    answer = run(zero_shot_weights, embeddings.clone())
    expected = F.normalize(F.normalize(embeddings, dim=-1).mean(1), dim=-1).T
    if not isinstance(answer, Tensor) or answer.shape != (8, 4):
        shape = tuple(getattr(answer, "shape", ()))
        hint = ": transpose, one column per class" if shape == (4, 8) else ""
        raise ExerciseFailed(f"return a (D, classes) = (8, 4) tensor, got {shape}{hint}")
    if torch.allclose(answer, expected, atol=1e-5):
        passed("each class is the renormalised mean of its prompts' unit embeddings")
        return
    if torch.allclose(answer, F.normalize(embeddings.mean(1), dim=-1).T, atol=1e-5):
        raise ExerciseFailed("normalise each prompt's embedding before averaging, or long embeddings outvote the others")
    if torch.allclose(answer.norm(dim=0), torch.ones(4), atol=1e-4):
        raise ExerciseFailed("the columns are unit vectors but point elsewhere: average over the templates (dimension 1)")
    raise ExerciseFailed("normalise the mean again, so every class weight has length 1 and no class wins by length")
