"""Chapter 3's checkers: the 60%-mass attention mask, and DINO's loss with centring and sharpening."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vitlessons.exercises.common import ExerciseFailed, passed, run
from vitlessons.objectives.dino import dino_loss
from vitlessons.segmentation import mass_masks

# Exercise 3.1: the mass mask ----------------------------------------------------------------


def check_mass_mask(mass_mask: Callable[[Tensor, float], Tensor]) -> None:
    """Exercise 3.1: a boolean (rows, cols) mask of the fewest patches that hold ``mass`` of one attention map."""
    crafted = torch.tensor([[0.40, 0.05], [0.30, 0.25]])
    answer = run(mass_mask, crafted.clone(), 0.6)
    if not isinstance(answer, Tensor) or answer.shape != crafted.shape:
        raise ExerciseFailed(f"return a tensor shaped like the map {tuple(crafted.shape)}, got "
                             f"{getattr(answer, 'shape', type(answer).__name__)}")
    if answer.dtype != torch.bool:
        raise ExerciseFailed(f"return a boolean mask (True where a patch is kept), got dtype {answer.dtype}")
    expected = [[True, False], [True, False]]
    if answer.tolist() == [[True, False], [True, True]]:
        raise ExerciseFailed("0.40 + 0.30 already holds 60% of the mass: keep patches only until the mass is reached")
    if answer.tolist() != expected:
        raise ExerciseFailed(f"for {crafted.tolist()} at 60% expected {expected}, got {answer.tolist()}: keep the "
                             "largest weights, in decreasing order, until they hold 60% of the total")
    generator = torch.Generator().manual_seed(3)
    for trial in range(5):
        attention = torch.rand(8, 8, generator=generator) ** 4 * 10  # unnormalised, as a softmax slice need not sum to 1
        mass = (0.3, 0.6, 0.9, 0.6, 0.45)[trial]
        answer, expected = run(mass_mask, attention.clone(), mass), mass_masks(attention, mass)
        if not torch.equal(answer, expected) and abs(int(answer.sum()) - mass * attention.numel()) <= 1:
            raise ExerciseFailed(f"on a random 8x8 map at mass {mass}: {int(answer.sum())} patches kept, a {mass} share of "
                                 "the patches; keep a share of the attention mass instead, however many patches that takes")
        if not torch.equal(answer, expected):
            raise ExerciseFailed(f"on a random 8x8 map at mass {mass}: {int(answer.sum())} patches kept, expected "
                                 f"{int(expected.sum())}; normalise the map by its own sum before accumulating")
    passed("the mass mask agrees with DINO's on a crafted map and five random ones")


# Exercise 3.2: DINO's loss ------------------------------------------------------------------

Loss = Callable[[list[Tensor], list[Tensor], Tensor, float, float], Tensor]


def check_dino_loss(loss_by_hand: Loss) -> None:
    """Exercise 3.2: cross-entropy from the teacher's centred, sharpened views to every other student view."""
    generator = torch.Generator().manual_seed(0)
    student = [torch.randn(4, 16, generator=generator) for _ in range(4)]
    teacher = [torch.randn(4, 16, generator=generator) for _ in range(2)]
    centre = torch.randn(16, generator=generator)
    expected = dino_loss(student, teacher, centre, 0.1, 0.04)[0]
    answer = run(loss_by_hand, student, teacher, centre, 0.1, 0.04)
    if not isinstance(answer, Tensor) or answer.numel() != 1:
        raise ExerciseFailed(f"return the loss as a one-element tensor, got {getattr(answer, 'shape', type(answer).__name__)}")
    hints = [
        (dino_loss(student, teacher, torch.zeros(16), 0.1, 0.04)[0], "subtract the centre from the teacher's outputs"),
        (dino_loss(student, teacher, centre, 0.1, 1.0)[0], "divide the teacher's outputs by the teacher temperature"),
        (dino_loss(student, teacher, centre, 0.1, 0.1)[0], "the teacher's outputs take the teacher temperature, not the student's"),
        (_with_same_views(student, teacher, centre), "never compare a view with itself: skip student view i for teacher view i"),
    ]
    if not torch.allclose(answer.float(), expected, atol=1e-4):
        for wrong, hint in hints:
            if torch.allclose(answer.float(), wrong, atol=1e-4):
                raise ExerciseFailed(f"expected {expected.item():.4f}, got {answer.item():.4f}: {hint}")
        raise ExerciseFailed(f"expected {expected.item():.4f}, got {answer.item():.4f}: average the cross-entropy "
                             "-sum(teacher * log student) over images and over the (teacher view, student view) pairs")
    passed(f"DINO's loss {expected.item():.4f} on 2 teacher and 4 student views")


def _with_same_views(student: list[Tensor], teacher: list[Tensor], centre: Tensor) -> Tensor:
    """The loss a solution gets if it also pairs each view with itself."""
    targets = [((t - centre) / 0.04).softmax(-1) for t in teacher]
    logs = [(s / 0.1).log_softmax(-1) for s in student]
    return torch.stack([-(t * s).sum(-1).mean() for t in targets for s in logs]).mean()
