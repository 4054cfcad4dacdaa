"""Chapter 0's checkers: FGSM by hand, and the mean attention distance of maps whose answer is known."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from vitlessons.attacks import fgsm
from vitlessons.attention import mean_distance
from vitlessons.exercises.common import ExerciseFailed, passed, run

# Exercise 0.1: FGSM by hand -----------------------------------------------------------------


def _linear_classifier() -> nn.Module:
    """A fixed 3-class linear model on 8 px images: its gradient is known and never zero."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        model[1].weight.copy_(torch.randn(3, 192, generator=generator))
        model[1].bias.zero_()
    return model.eval()


def _gradient_sign(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """The sign of the cross-entropy's gradient with respect to the pixels."""
    images = images.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(nn.functional.cross_entropy(model(images), labels), images)
    return gradient.sign()


def check_fgsm(fgsm_step: Callable[[nn.Module, Tensor, Tensor, float], Tensor]) -> None:
    """Exercise 0.1: one step of size eps along the sign of the loss gradient, kept in [0, 1]."""
    model, eps = _linear_classifier(), 8 / 255
    images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    images[0] = 1.0  # a white image: only a step kept in [0, 1] stays valid
    labels = torch.tensor([0, 1, 2, 0])
    answer = run(fgsm_step, model, images.clone(), labels, eps)
    expected = fgsm(model, images, labels, eps=eps).images
    if not isinstance(answer, Tensor) or answer.shape != images.shape:
        raise ExerciseFailed(f"return the adversarial images, shaped like the input {tuple(images.shape)}")
    delta = (answer - images).detach()
    if torch.allclose(answer, images):
        raise ExerciseFailed("the images came back unchanged: add eps * sign(gradient of the loss w.r.t. the images)")
    if delta.abs().max() > eps + 1e-6:
        raise ExerciseFailed(f"the perturbation reaches {delta.abs().max():.4f} > eps = {eps:.4f}: step by eps * sign(...)")
    if answer.min() < 0 or answer.max() > 1:
        raise ExerciseFailed("some pixels left [0, 1]: clamp the adversarial images to the valid range")
    if torch.allclose(answer, (images - _gradient_sign(model, images, labels) * eps).clamp(0, 1), atol=1e-6):
        raise ExerciseFailed("you stepped down the gradient, which lowers the loss: FGSM ascends it (+ eps * sign)")
    if not torch.allclose(answer, expected, atol=1e-6):
        wrong = int((~torch.isclose(answer, expected, atol=1e-6)).sum())
        raise ExerciseFailed(f"{wrong} pixel values differ from FGSM: take the sign of the gradient of the "
                             "cross-entropy with the given labels, not of the logits")
    passed("one signed-gradient step of size eps, kept in [0, 1].")


# Exercise 0.2: mean attention distance of toy maps ------------------------------------------

def _toy_maps() -> list[tuple[str, Tensor, tuple[int, int], int, Tensor]]:
    """(what, attention (heads, N, N), grid, patch size, expected per head): answers known in closed form."""
    uniform = torch.full((4, 4), 0.25)  # a 2x2 grid: distances 0, 1, 1 and sqrt(2) patches from every patch
    neighbour = torch.zeros(3, 3)  # a 1x3 row: every patch looks only at the next one along (the last at the first)
    neighbour[0, 1] = neighbour[1, 2] = neighbour[2, 0] = 1.0
    return [
        ("each patch looking only at itself", torch.eye(4)[None], (2, 2), 16, torch.tensor([0.0])),
        ("uniform attention on a 2x2 grid", uniform[None], (2, 2), 16, torch.tensor([16 * (2 + math.sqrt(2)) / 4])),
        ("two heads, one on itself, one on the next patch", torch.stack([torch.eye(3), neighbour]), (1, 3), 10,
         torch.tensor([0.0, 10 * (1 + 1 + 2) / 3])),
    ]


def check_mean_attention_distance(mean_attention_distance: Callable[[Tensor, tuple[int, int], int], Tensor]) -> None:
    """Exercise 0.2: per head, the attention-weighted distance in pixels between patches, averaged over queries."""
    for what, maps, grid, patch, expected in _toy_maps():
        answer = run(mean_attention_distance, maps.clone(), grid, patch)
        answer = torch.as_tensor(answer, dtype=torch.float32).reshape(-1)
        if answer.shape != expected.shape:
            raise ExerciseFailed(f"{what}: return one distance per head, {len(expected)} here; got {tuple(answer.shape)}")
        if torch.allclose(answer * patch, expected, atol=1e-4) and expected.any():
            raise ExerciseFailed(f"{what}: your distances are in patches; multiply by the patch size to get pixels")
        if not torch.allclose(answer, expected, atol=1e-4):
            raise ExerciseFailed(f"{what}: expected {expected.tolist()}, got {answer.tolist()}")
    random_maps = torch.rand(2, 9, 9, generator=torch.Generator().manual_seed(3)).softmax(-1)
    answer = torch.as_tensor(run(mean_attention_distance, random_maps, (3, 3), 8), dtype=torch.float32).reshape(-1)
    expected = mean_distance([random_maps[None]], (3, 3), 8, prefix_tokens=0)[0]
    if not torch.allclose(answer, expected, atol=1e-4):
        raise ExerciseFailed(f"random maps on a 3x3 grid: expected {expected.tolist()}, got {answer.tolist()}; "
                             "rows are queries, columns keys, and patches go row by row over the grid")
    passed("each head's attention-weighted distance in pixels, averaged over the queries.")
