"""CLIP's contrastive loss (Radford et al., 2021), checked by hand-worked cases and against open_clip's ClipLoss."""

import math

import open_clip
import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from torch import nn

from vitlessons.data.sources import TensorSource
from vitlessons.models import load_model
from vitlessons.objectives.contrastive import (MAX_LOGIT_SCALE, Contrastive, LogitScale, contrastive_loss,
                                               similarity_logits)
from vitlessons.train import Recipe, fit


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


class BagOfWords(nn.Module):
    """The simplest text tower: the mean embedding of a caption's tokens (padding id 0 ignored)."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.embedding = nn.EmbeddingBag(49408, dim, mode="mean", padding_idx=0)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embedding(tokens)


def _caption_accuracy(captions: list[str]) -> list[float]:
    """A CNN and a bag of words trained contrastively on solid red, green and blue images under ``captions``."""
    colours = torch.eye(3)[[0, 1, 2, 0]]
    images = colours[:, :, None, None].expand(-1, -1, 32, 32).repeat(8, 1, 1, 1)
    tokens = open_clip.get_tokenizer("ViT-B-32")(captions, context_length=8)
    model = load_model("lab_cnn", labels=["unused"], seed=0, image_size=32)
    history = fit(model, Contrastive(BagOfWords(), embed_dim=16), TensorSource(images, tokens),
                  Recipe(epochs=15, batch_size=8, lr=3e-3), seed=0, progress=False)
    assert history["loss"][-1] < history["loss"][0]
    return history["caption accuracy"]


def test_the_objective_learns_to_match_images_with_their_captions() -> None:
    captions = ["a red square", "a green square", "a blue square", "a red square"] * 8  # repeats count as hits
    assert sum(_caption_accuracy(captions)[-3:]) / 3 > 0.9
    shuffled = [captions[i] for i in torch.randperm(32, generator=torch.Generator().manual_seed(0))]
    assert sum(_caption_accuracy(shuffled)[-3:]) / 3 < 0.75  # captions unrelated to the images cannot be matched


def test_the_objective_owns_and_caches_the_text_tower() -> None:
    objective = Contrastive(BagOfWords(), embed_dim=16)
    objective.setup(load_model("lab_cnn", labels=["unused"], seed=0))
    assert set(objective.state_dict()) >= {"text.embedding.weight", "image_projection.weight", "logit_scale.log_scale"}
    with pytest.raises(TypeError, match="course model"):
        objective.setup(nn.Linear(2, 2))
