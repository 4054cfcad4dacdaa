"""A small, seeded training loop that every chapter reuses, with a progress bar."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from vitlessons.config import generator

LossFn = Callable[[nn.Module, Tensor, Tensor], tuple[Tensor, Tensor]]


def classification_loss(model: nn.Module, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Cross-entropy, and the logits so the loop can count correct answers."""
    logits = model(images)
    return F.cross_entropy(logits, labels), logits


@dataclass
class History:
    """Per-epoch mean loss and training accuracy, and the wall time, for plotting learning curves."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


def fit(model: nn.Module, images: Tensor, labels: Tensor, epochs: int = 5, batch_size: int = 64,
        lr: float = 2e-3, weight_decay: float = 0.05, seed: int = 0,
        loss_fn: LossFn = classification_loss, progress: bool = True) -> History:
    """Train with AdamW and a warm-up plus cosine schedule; the same seed gives the same model."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    device = next(model.parameters()).device
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True, generator=generator(seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(epochs * len(loader)))
    history, start = History(), time.perf_counter()
    bar = tqdm(total=epochs * len(loader), desc=f"training {getattr(model, 'name', type(model).__name__)}",
               disable=not progress, leave=False)
    model.train()
    for _ in range(epochs):
        total_loss, correct, seen = 0.0, 0, 0
        for batch_images, batch_labels in loader:
            batch_images, batch_labels = batch_images.to(device), batch_labels.to(device)
            loss, logits = loss_fn(model, batch_images, batch_labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(batch_labels)
            correct += (logits.argmax(-1) == batch_labels).sum().item()
            seen += len(batch_labels)
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        history.loss.append(total_loss / seen)
        history.accuracy.append(correct / seen)
    bar.close()
    model.eval()
    history.seconds = time.perf_counter() - start
    return history


def _warmup_cosine(total_steps: int, warmup_fraction: float = 0.1) -> Callable[[int], float]:
    """Linear warm-up then cosine decay, which lets a small ViT train stably in a few epochs."""
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor
