"""Rotation prediction as a pretext task and as an auxiliary loss (Gidaris et al., 2018; Hendrycks et al., 2019)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vitlessons.data import cueworld
from vitlessons.data.sources import TensorSource
from vitlessons.models import load_model
from vitlessons.models.wrapper import Classifier, Preprocessing
from vitlessons.objectives import Rotation
from vitlessons.objectives.rotation import quarter_turns
from vitlessons.train import Recipe, fit

LABELS = list(cueworld.CLASS_NAMES)


class MeanColour(nn.Module):
    """A network that sees only each channel's mean: blind to orientation by construction."""

    def __init__(self) -> None:
        super().__init__()
        self.num_features = 3
        self.fc = nn.Linear(3, len(LABELS))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def test_quarter_turns_turn_the_whole_batch_four_times() -> None:
    images = torch.rand(2, 3, 8, 8)
    turned, turns = quarter_turns(images)
    assert turned.shape == (8, 3, 8, 8) and turns.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(turned[2], torch.rot90(images[0], 1, dims=(-2, -1)))
    assert torch.equal(turned[7], torch.rot90(images[1], 3, dims=(-2, -1)))


def test_a_head_on_a_model_blind_to_orientation_stays_at_chance() -> None:
    model = Classifier("mean colour", MeanColour(), Preprocessing(32, (0.5,) * 3, (0.5,) * 3, resize=False), LABELS)
    data = TensorSource(cueworld.make_split("aligned", 64, size=32, seed=0).images, torch.zeros(64, dtype=torch.long))
    history = fit(model, Rotation(), data, Recipe(epochs=20, batch_size=16, lr=1e-2), progress=False)
    assert history["rotation accuracy"][-1] == pytest.approx(0.25, abs=0.05)


def test_the_rotation_loss_trains_the_network_end_to_end() -> None:
    """A small CNN fits the turns of 256 images: gradients reach the trunk and the head (not generalisation)."""
    model = load_model("lab_cnn", labels=LABELS, image_size=32)
    split = cueworld.make_split("aligned", 256, size=32, seed=1)
    history = fit(model, Rotation(), TensorSource(split.images, split.labels), Recipe(epochs=8, batch_size=32, lr=2e-3),
                  progress=False)
    assert history["rotation accuracy"][-1] > 0.5


def test_the_auxiliary_loss_adds_the_weighted_rotation_loss_to_the_labels() -> None:
    model = load_model("lab_vit", labels=LABELS, image_size=16, patch_size=4, depth=1, embed_dim=32, num_heads=2)
    images, labels = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    pretext, auxiliary = Rotation(), Rotation(weight=0.5)
    pretext.setup(model)
    auxiliary.setup(model)
    assert torch.equal(pretext.head.weight, auxiliary.head.weight)  # the head's start depends on the seed alone
    model.eval()
    alone, both = pretext.step(model, (images, labels)), auxiliary.step(model, (images, labels))
    turned, turns = quarter_turns(images)
    rotation = F.cross_entropy(pretext.head(model._features(turned)), turns)
    assert torch.allclose(alone.loss, rotation, atol=1e-6)
    assert torch.allclose(both.loss, F.cross_entropy(model(images), labels) + 0.5 * rotation, atol=1e-5)
    assert "accuracy" in both.logs and "accuracy" not in alone.logs
    assert Rotation(weight=0.5).config() != Rotation().config()
    with pytest.raises(ValueError):
        Rotation(weight=0)
