"""DINO: self-distillation with no labels (Caron et al., ICCV 2021).

A student network learns to give, for any view of an image, the output that a teacher gives for the two
large views of the same image. The teacher is not trained: its weights are an exponential moving average of the
student's. Two operations on the teacher's output keep the pair from *collapsing* onto a constant answer:

* **centring** subtracts a running mean of the teacher's outputs, so no dimension can win for every image
  (alone, it pushes towards the uniform output);
* **sharpening** divides by a low temperature, so each output stays peaked (alone, it lets one dimension win).

``Dino(centring=False)`` or ``Dino(sharpening=False)`` (teacher as soft as the student) show each collapse; the logs
``teacher entropy`` (of each output), ``batch entropy`` (of the batch's mean output) and ``KL`` (teacher to
student) tell the two apart: uniform collapse has entropy log K, one winning dimension has batch entropy near 0,
and both drive KL to 0.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitlessons.config import generator
from vitlessons.objectives.base import Objective, StepOutput
from vitlessons.perturb.crops import MultiCrop


class ProjectionHead(nn.Module):
    """DINO's head: an MLP to a small bottleneck, L2-normalised, then cosine similarity to K learned prototypes.

    The last layer is DINO's weight-normalised linear layer with its norm fixed to 1, so its outputs lie in [-1, 1].
    """

    def __init__(self, features: int, out_dim: int = 256, hidden: int = 256, bottleneck: int = 64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        self.prototypes = nn.Parameter(torch.randn(out_dim, bottleneck) / math.sqrt(bottleneck))

    def forward(self, features: Tensor, frozen_prototypes: bool = False) -> Tensor:
        prototypes = self.prototypes.detach() if frozen_prototypes else self.prototypes
        return F.normalize(self.mlp(features), dim=-1) @ F.normalize(prototypes, dim=-1).T


def cosine_rise(start: float, end: float, progress: float) -> float:
    """From ``start`` at progress 0 to ``end`` at 1 along half a cosine: DINO's schedule for the teacher's momentum."""
    return end - (end - start) * (math.cos(math.pi * min(1.0, progress)) + 1) / 2


def linear_warmup(start: float, end: float, progress: float, warmup: float) -> float:
    """From ``start`` to ``end`` linearly over the first ``warmup`` of training, then ``end``: the teacher temperature."""
    return end if warmup <= 0 or progress >= warmup else start + (end - start) * progress / warmup


def dino_loss(student: list[Tensor], teacher: list[Tensor], centre: Tensor, student_temperature: float,
              teacher_temperature: float) -> tuple[Tensor, Tensor]:
    """Cross-entropy from each teacher view's centred, sharpened softmax to every *other* view's student softmax.

    ``student`` holds the outputs for all views, ``teacher`` for the first (global) ones, in the same order, so
    teacher view i is never compared with student view i. Returns the mean loss and the teacher's probabilities.
    """
    targets = [F.softmax((t - centre) / teacher_temperature, dim=-1) for t in teacher]
    log_probs = [F.log_softmax(s / student_temperature, dim=-1) for s in student]
    terms = [-(target * log_probs[j]).sum(-1).mean() for i, target in enumerate(targets)
             for j in range(len(log_probs)) if j != i]
    return torch.stack(terms).mean(), torch.stack(targets)


def entropy(probabilities: Tensor) -> Tensor:
    """Entropy in nats along the last dimension."""
    return -(probabilities * probabilities.clamp_min(1e-12).log()).sum(-1)


class Dino(Objective):
    """DINO's loss on multi-crop views of (image, label) batches; the labels are never read.

    ``setup(model)`` gives the student (the model being trained, through its pooled features) a projection head
    and builds the teacher as a frozen copy of both. After each step the teacher moves towards the student with a
    momentum rising from ``momentum[0]`` to ``momentum[1]``; the teacher temperature warms up from
    ``teacher_temperature[0]`` to ``[1]`` over the first ``warmup`` of training; the head's prototypes stay fixed
    for the first ``freeze_prototypes`` of it (DINO freezes them for its first epoch, which keeps early training
    stable). Evaluate ``teacher``, as DINO does.
    """

    def __init__(self, views: MultiCrop = MultiCrop(), out_dim: int = 256, student_temperature: float = 0.1,
                 teacher_temperature: tuple[float, float] = (0.04, 0.07), warmup: float = 0.3,
                 centre_momentum: float = 0.9, momentum: tuple[float, float] = (0.996, 1.0),
                 centring: bool = True, sharpening: bool = True, freeze_prototypes: float = 1 / 3, seed: int = 0):
        super().__init__()
        if not 0 <= centre_momentum < 1 or not 0 <= momentum[0] <= momentum[1] <= 1:
            raise ValueError(f"momenta must lie in [0, 1], got centre {centre_momentum} and teacher {momentum}")
        self.views, self.out_dim, self.seed = views, out_dim, seed
        self.student_temperature, self.teacher_temperatures, self.warmup = student_temperature, teacher_temperature, warmup
        self.centre_momentum, self.momenta = centre_momentum, momentum
        self.centring, self.sharpening, self.freeze_prototypes = centring, sharpening, freeze_prototypes
        self.register_buffer("centre", torch.zeros(out_dim))
        self.register_buffer("done", torch.zeros(()))  # fraction of training done, saved with the teacher
        self._generator = generator(seed)

    def setup(self, model: nn.Module) -> None:
        if not (hasattr(model, "features") and hasattr(model, "trunk")):  # duck-typed: models import the training loop
            raise TypeError(f"DINO trains a course model (vitlessons.models.Model), got {type(model).__name__}")
        with torch.random.fork_rng(devices=[]):  # the head's initial weights depend on the seed only
            torch.manual_seed(self.seed)
            self.head = ProjectionHead(model.trunk.num_features, self.out_dim).to(next(model.parameters()).device)
        self.teacher = copy.deepcopy(model)
        self.teacher.name = f"{model.name} (DINO teacher)"
        self.teacher_head = copy.deepcopy(self.head)
        for parameter in (*self.teacher.parameters(), *self.teacher_head.parameters()):
            parameter.requires_grad_(False)
        self.centre.zero_()
        self.done.zero_()
        self._generator = generator(self.seed)

    @property
    def progress(self) -> float:
        """The fraction of training done: 0 before the first step, 1 after the last."""
        return float(self.done)

    @property
    def teacher_temperature(self) -> float:
        """The teacher's temperature now; without sharpening, the student's."""
        if not self.sharpening:
            return self.student_temperature
        return linear_warmup(*self.teacher_temperatures, self.progress, self.warmup)

    def step(self, model: nn.Module, batch: tuple[Tensor, ...]) -> StepOutput:
        # evaluation draws its own views, so that validating never changes the views training sees next
        views = self.views(batch[0], self._generator if self.training else generator(self.seed + 1))
        frozen = self.progress < self.freeze_prototypes
        student = [self.head(model.features(view), frozen) for view in views]
        with torch.no_grad():
            self.teacher.eval()
            teacher = [self.teacher_head(self.teacher.features(view)) for view in views[:2]]
        loss, targets = dino_loss(student, teacher, self.centre, self.student_temperature, self.teacher_temperature)
        if self.training and self.centring:
            self.update_centre(torch.cat(teacher))
        teacher_entropy = entropy(targets).mean()
        return StepOutput(loss, {"loss": loss.detach(), "teacher entropy": teacher_entropy,
                                 "batch entropy": entropy(targets.mean(dim=(0, 1))),
                                 "KL": loss.detach() - teacher_entropy})

    @torch.no_grad()
    def update_centre(self, teacher_outputs: Tensor) -> None:
        """c <- m c + (1 - m) * mean of this batch's teacher outputs (before centring)."""
        self.centre.mul_(self.centre_momentum).add_(teacher_outputs.mean(0), alpha=1 - self.centre_momentum)

    @torch.no_grad()
    def after_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        """Move the teacher towards the student: theta_t <- m theta_t + (1 - m) theta_s, for backbone and head."""
        self.done.fill_(step / total_steps)
        m = cosine_rise(*self.momenta, (step - 1) / total_steps)  # the momentum of the step just taken
        for teacher, student in ((self.teacher, model), (self.teacher_head, self.head)):
            for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
                t.mul_(m).add_(s.detach(), alpha=1 - m)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "views": self.views.config(), "out_dim": self.out_dim, "seed": self.seed,
                "student_temperature": self.student_temperature, "teacher_temperature": list(self.teacher_temperatures),
                "warmup": self.warmup, "centre_momentum": self.centre_momentum, "momentum": list(self.momenta),
                "centring": self.centring, "sharpening": self.sharpening, "freeze_prototypes": self.freeze_prototypes}
