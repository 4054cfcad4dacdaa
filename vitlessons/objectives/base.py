"""What the training loop asks of an objective, so each chapter adds its own without touching the loop.

An objective is an ``nn.Module``: heads it owns (a rotation head, a projection head) are trained with the
model, and state it keeps (an EMA teacher) moves to the model's device with it. Parameters that must not
be trained (a teacher's) are marked ``requires_grad=False``; the loop leaves them to ``after_step``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn


@dataclass
class StepOutput:
    """One batch's loss to minimise, and scalar tensors to average over the epoch (accuracy, agreement, ...)."""

    loss: Tensor
    logs: dict[str, Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    """A batch in, a loss and its logs out; hooks for state that changes between steps."""

    def setup(self, model: nn.Module) -> None:
        """Called before training or restoring: state that mirrors the model (a teacher copy) is built here."""

    def step(self, model: nn.Module, batch: tuple[Tensor, ...]) -> StepOutput:
        """The loss of ``model`` on one batch of tensors, already on the model's device."""
        raise NotImplementedError(f"{type(self).__name__} must define step(model, batch)")

    def after_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        """Called after each optimiser step (an EMA teacher follows its student here); nothing by default."""

    def config(self) -> dict[str, Any]:
        """Everything that changes what training produces, for the trained-model cache's key."""
        return {"objective": type(self).__name__}
