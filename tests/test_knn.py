"""The weighted k-NN vote on features with known answers."""

import pytest
import torch
import torch.nn.functional as F

from vitlessons import knn
from vitlessons.data import cueworld
from vitlessons.models import load_model


def test_the_nearest_neighbours_vote() -> None:
    bank = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), dim=-1)
    labels = torch.tensor([0, 0, 1, 1])
    queries = F.normalize(torch.tensor([[1.0, 0.05], [0.05, 1.0]]), dim=-1)
    assert knn.knn_predict(bank, labels, queries, k=2).tolist() == [0, 1]
    assert knn.knn_predict(bank, labels, queries, k=4).tolist() == [0, 1]  # the far ones weigh less


def test_weights_outvote_numbers() -> None:
    # one very close neighbour of class 1 beats two farther ones of class 0 at a low temperature, not at a high one
    bank = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8]]), dim=-1)
    labels = torch.tensor([1, 0, 0])
    query = torch.tensor([[1.0, 0.0]])
    assert knn.knn_predict(bank, labels, query, k=3, temperature=0.07).item() == 1
    assert knn.knn_predict(bank, labels, query, k=3, temperature=100.0).item() == 0


def test_bad_arguments() -> None:
    bank, labels = torch.eye(3), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="k"):
        knn.knn_predict(bank, labels, bank, k=4)
    with pytest.raises(ValueError, match="label"):
        knn.knn_predict(bank, labels[:2], bank)


def test_knn_accuracy_on_separable_images() -> None:
    """Flat black and flat white images: any network's features tell them apart, so k-NN scores 1."""
    model = load_model("lab_vit", labels=cueworld.CLASS_NAMES, image_size=32, depth=1, embed_dim=32, num_heads=2)
    images = torch.cat([torch.zeros(6, 3, 32, 32), torch.ones(6, 3, 32, 32)])
    labels = torch.tensor([0] * 6 + [1] * 6)
    assert knn.knn_accuracy(model, (images[::2], labels[::2]), (images[1::2], labels[1::2]), k=3) == 1.0
    assert knn.features(model, images).norm(dim=-1).allclose(torch.ones(12))
