"""CLIP's contrastive loss (Radford et al., 2021), checked by hand-worked cases and against open_clip's ClipLoss."""

import math

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from vitlessons.objectives.contrastive import MAX_LOGIT_SCALE, LogitScale, contrastive_loss, similarity_logits


def test_a_perfect_alignment_gives_the_minimum_and_swapping_captions_raises_it() -> None:
    embeddings = torch.eye(4, 8)  # four orthogonal directions: each image's caption points exactly its way
    aligned = contrastive_loss(embeddings, embeddings.clone(), 100.0)
    assert aligned.item() == pytest.approx(3 * math.exp(-100), abs=1e-30)  # the floor: log(1 + 3 e^-100)
    swapped = contrastive_loss(embeddings, embeddings[[1, 0, 2, 3]], 100.0)
    assert swapped.item() > 40  # two images now sit 100 logits closer to another image's caption
    shuffled = contrastive_loss(embeddings, embeddings[torch.randperm(4, generator=torch.Generator().manual_seed(1))], 10.0)
    assert shuffled > contrastive_loss(embeddings, embeddings, 10.0)


def test_unrelated_embeddings_score_chance() -> None:
    same = torch.ones(5, 3)  # every caption equally close to every image: the loss is log N
    assert contrastive_loss(same, same, 7.0).item() == pytest.approx(math.log(5), abs=1e-6)


def test_the_loss_is_symmetric_and_agrees_with_open_clip() -> None:
    g = torch.Generator().manual_seed(0)
    images, texts = torch.randn(16, 32, generator=g), torch.randn(16, 32, generator=g)
    ours = contrastive_loss(images, texts, 14.3)
    reference = ClipLoss()(F.normalize(images, dim=-1), F.normalize(texts, dim=-1), torch.tensor(14.3))
    assert ours.item() == pytest.approx(reference.item(), rel=1e-6)
    assert ours.item() == pytest.approx(contrastive_loss(texts, images, 14.3).item(), rel=1e-6)
    assert similarity_logits(images, texts, 1.0).abs().max() <= 1 + 1e-6  # cosine similarities before scaling


def test_one_caption_per_image_is_required() -> None:
    with pytest.raises(ValueError, match="one caption per image"):
        contrastive_loss(torch.randn(4, 8), torch.randn(3, 8), 1.0)


def test_the_learned_temperature_starts_at_clip_s_and_is_clipped() -> None:
    scale = LogitScale()
    assert scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        scale.log_scale.fill_(10.0)
    assert scale().item() == pytest.approx(MAX_LOGIT_SCALE, rel=1e-5)
    loss = contrastive_loss(torch.randn(4, 8), torch.randn(4, 8), LogitScale()())
    loss.backward()  # the temperature is learnt with the encoders
    with pytest.raises(ValueError, match="positive"):
        LogitScale(0.0)
