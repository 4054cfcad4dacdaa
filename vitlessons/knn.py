"""Weighted k-nearest-neighbour classification on frozen features: how DINO scores a network that never saw a label.

Each query takes the ``k`` training images whose L2-normalised features are most similar (cosine similarity),
and each neighbour votes for its label with weight exp(similarity / temperature). DINO's repository uses
k = 20 and temperature 0.07 (``eval_knn.py``), for any backbone and any label set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vitlessons.models.wrapper import Model
from vitlessons.tensors import check_images

K, TEMPERATURE = 20, 0.07


@torch.no_grad()
def features(model: Model, images: Tensor, batch_size: int = 128) -> Tensor:
    """(B, D) L2-normalised pooled features, in eval mode, computed in batches on the model's device."""
    check_images(images)
    model.eval()
    device = next(model.parameters()).device
    parts = [model.features(images[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)]
    return F.normalize(torch.cat(parts), dim=-1)


def knn_predict(bank: Tensor, bank_labels: Tensor, queries: Tensor, k: int = K, temperature: float = TEMPERATURE,
                num_classes: int | None = None) -> Tensor:
    """The class each query's weighted vote picks, from normalised (N, D) ``bank`` and (Q, D) ``queries`` features."""
    if len(bank) != len(bank_labels) or bank.shape[1:] != queries.shape[1:]:
        raise ValueError(f"need one label per bank feature and features of one width, got bank {tuple(bank.shape)}, "
                         f"{len(bank_labels)} labels and queries {tuple(queries.shape)}")
    if not 1 <= k <= len(bank) or temperature <= 0:
        raise ValueError(f"need 1 <= k <= {len(bank)} (the bank's size) and a positive temperature, got k={k}, "
                         f"temperature={temperature}")
    num_classes = num_classes or int(bank_labels.max()) + 1
    similarity, neighbours = (queries @ bank.T).topk(k, dim=-1)
    votes = torch.zeros(len(queries), num_classes, dtype=similarity.dtype, device=similarity.device)
    votes.scatter_add_(1, bank_labels.to(similarity.device).long()[neighbours], (similarity / temperature).exp())
    return votes.argmax(-1)


def knn_accuracy(model: Model, bank: tuple[Tensor, Tensor], queries: tuple[Tensor, Tensor], k: int = K,
                 temperature: float = TEMPERATURE) -> float:
    """Top-1 accuracy of the weighted k-NN vote on ``queries`` (images, labels), with ``bank`` as the training set."""
    predicted = knn_predict(features(model, bank[0]), bank[1], features(model, queries[0]), k, temperature,
                            num_classes=int(max(bank[1].max(), queries[1].max())) + 1)
    return (predicted == queries[1]).float().mean().item()
