"""Anomaly scores for out-of-distribution detection: the maximum softmax baseline and ss-ood's rotation score."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vitlessons.data import cueworld
from vitlessons.models import load_model
from vitlessons.models.wrapper import Classifier, Preprocessing
from vitlessons.objectives import Rotation
from vitlessons.objectives.rotation import quarter_turns
from vitlessons.ood import max_softmax_anomaly, rotation_anomaly

LABELS = list(cueworld.CLASS_NAMES)


def test_max_softmax_anomaly_is_high_where_the_model_is_unsure() -> None:
    class Fixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(1.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # confident on bright images, unsure on dark ones
            return self.scale * x.mean((1, 2, 3))[:, None] * 10 * F.one_hot(torch.zeros(len(x), dtype=torch.long), 6)

    model = Classifier("fixed", Fixed(), Preprocessing(8, (0.0,) * 3, (1.0,) * 3, resize=False), LABELS)
    scores = max_softmax_anomaly(model, torch.cat([torch.ones(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)]))
    assert scores[0] < scores[1] and scores[1] == pytest.approx(-1 / 6)


def test_rotation_anomaly_is_the_turn_loss_minus_the_uniform_kl() -> None:
    model = load_model("lab_vit", labels=LABELS, image_size=16, patch_size=4, depth=1, embed_dim=32, num_heads=2).eval()
    rotation = Rotation(weight=0.5)
    with pytest.raises(ValueError, match="no head"):
        rotation_anomaly(model, rotation, torch.rand(2, 3, 16, 16))
    rotation.setup(model)
    images = torch.rand(3, 3, 16, 16)
    scores = rotation_anomaly(model, rotation, images, batch_size=2)
    with torch.no_grad():
        turned, turns = quarter_turns(images)
        turn_loss = F.cross_entropy(rotation.head(model._features(turned)), turns, reduction="none").reshape(4, 3).sum(0)
        probabilities = model(images).softmax(-1)
        kl = (torch.full_like(probabilities, 1 / 6) * (math.log(1 / 6) - probabilities.log())).sum(-1)
    assert torch.allclose(scores, turn_loss - kl, atol=1e-5)
