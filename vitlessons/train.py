"""One seeded training loop for every chapter: a model, an objective, a data source and a recipe.

The objective (``vitlessons.objectives``) turns a batch into a loss; the source (``vitlessons.data.sources``)
gives fixed tensors or fresh cue-world images each epoch; the recipe fixes the optimiser and schedule.
The same seed gives the same model on the same machine.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from vitlessons.objectives import Objective


class Source(Protocol):
    """What ``fit`` iterates over (``TensorSource``, ``CueWorldStream``)."""

    def __len__(self) -> int: ...
    def batches(self, epoch: int, batch_size: int, seed: int) -> Iterator[tuple[Tensor, ...]]: ...
    def config(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Recipe:
    """AdamW with a linear warm-up and a cosine decay: the settings that, with the data, decide the result."""

    epochs: int
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: float = 0.1  # fraction of the steps spent warming up

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or not 0 <= self.warmup < 1:
            raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0 and 0 <= warmup < 1, got {self}")

    def config(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class History:
    """Per-epoch means of every number the objective logs, and the training's wall time."""

    logs: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0

    def __getitem__(self, name: str) -> list[float]:
        if name not in self.logs:
            raise KeyError(f"nothing logged as {name!r}; logged: {', '.join(self.logs) or 'nothing'}")
        return self.logs[name]

    def log(self, values: dict[str, float]) -> None:
        """Append one epoch's values."""
        for name, value in values.items():
            self.logs.setdefault(name, []).append(value)

    def final(self, name: str) -> float:
        """The last epoch's mean of one log, for a summary line."""
        return self[name][-1]


def fit(model: nn.Module, objective: Objective, data: Source, recipe: Recipe, seed: int = 0,
        validation: Source | None = None, progress: bool = True) -> History:
    """Train ``model`` (and any head the objective owns) on ``data`` to minimise ``objective``.

    After each epoch the history records the images seen so far and, given ``validation`` data, the
    objective's logs on it ("validation accuracy", ...): a learning curve at no extra training cost.
    """
    device = next(model.parameters()).device
    objective.setup(model)
    objective.to(device)
    trained = [p for p in (*model.parameters(), *objective.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(len(data) / recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, recipe.warmup))
    history, start, step = History(), time.perf_counter(), 0
    bar = tqdm(total=total, desc=f"training {getattr(model, 'name', type(model).__name__)}", disable=not progress,
               leave=False)
    model.train()
    objective.train()
    for epoch in range(recipe.epochs):
        sums: dict[str, float] = defaultdict(float)
        seen = 0
        for batch in data.batches(epoch, recipe.batch_size, seed):
            batch = tuple(t.to(device) for t in batch)
            out = objective.step(model, batch)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            objective.after_step(model, step, total)
            for name, value in out.logs.items():
                sums[name] += value.item() * len(batch[0])
            seen += len(batch[0])
            bar.update()
            bar.set_postfix(loss=f"{out.loss.item():.3f}", refresh=False)  # a refresh per step slows notebooks
        history.log({name: value / seen for name, value in sums.items()})
        history.log({"images seen": float((epoch + 1) * len(data))})
        if validation is not None:
            history.log({f"validation {name}": value for name, value in evaluate(model, objective, validation).items()})
            model.train()
            objective.train()
    bar.close()
    model.eval()
    objective.eval()
    history.seconds, history.steps = time.perf_counter() - start, step
    return history


@torch.no_grad()
def evaluate(model: nn.Module, objective: Objective, data: Source, batch_size: int = 256) -> dict[str, float]:
    """The objective's logs averaged over ``data``, in eval mode and without training anything."""
    model.eval()
    objective.eval()
    device = next(model.parameters()).device
    sums: dict[str, float] = defaultdict(float)
    for batch in data.batches(0, batch_size, seed=0):
        batch = tuple(t.to(device) for t in batch)
        for name, value in objective.step(model, batch).logs.items():
            sums[name] += value.item() * len(batch[0])
    return {name: value / len(data) for name, value in sums.items()}


def warmup_cosine(total_steps: int, warmup_fraction: float = 0.1) -> Callable[[int], float]:
    """Linear warm-up then cosine decay, which lets a small ViT train stably in a few epochs."""
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor
