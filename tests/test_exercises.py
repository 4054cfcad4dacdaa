"""Each checker passes the notebook's solution and fails the stub and plausible wrong answers, with a hint."""

import json
from pathlib import Path

import pytest
import torch

from vitlessons.data.categories import CATEGORIES, IMAGENET_INDICES
from vitlessons.exercises import (
    ExerciseFailed, check_decision_16, check_fgsm, check_mean_attention_distance, check_shape_bias, check_shuffle_tiles,
)
from vitlessons.student import chapter_notebooks

NOTEBOOKS = chapter_notebooks(Path(__file__).resolve().parents[1] / "notebooks")
CHECKERS = [check_shape_bias, check_decision_16, check_shuffle_tiles, check_fgsm, check_mean_attention_distance]


def solutions() -> dict:
    """Run the notebook's solution cells, so the tests check the very code students are shown."""
    namespace = {"torch": torch, "CATEGORIES": CATEGORIES}
    for notebook in NOTEBOOKS:
        for cell in json.loads(notebook.read_text())["cells"]:
            if "solution" in cell.get("metadata", {}).get("tags", []):
                exec("".join(cell["source"]), namespace)
    return namespace


def stub(*args):
    raise NotImplementedError


def test_solutions_pass(capsys: pytest.CaptureFixture[str]) -> None:
    found = solutions()
    check_shape_bias(found["shape_bias_fraction"])
    check_decision_16(found["sixteen_class_decision"])
    check_shuffle_tiles(found["shuffle_tiles"])
    check_fgsm(found["fgsm_step"])
    check_mean_attention_distance(found["mean_attention_distance"])
    assert capsys.readouterr().out.count("Passed") == len(CHECKERS)


@pytest.mark.parametrize("check", CHECKERS)
def test_stubs_are_reported_as_unfinished(check) -> None:
    with pytest.raises(ExerciseFailed, match="not implemented yet"):
        check(stub)


@pytest.mark.parametrize("wrong, hint", [
    (lambda p, s, t: ((p == s).sum() / ((p == s).sum() + (p == t).sum())).item(), "shape and texture agree"),
    (lambda p, s, t: ((p == s) & (s != t)).sum().item() / (s != t).sum().item(), "shape-or-texture decisions only"),
    (lambda p, s, t: ((p == t) & (s != t)).sum().item() / (((p == t) | (p == s)) & (s != t)).sum().item(), "texture bias"),
    (lambda p, s, t: [0.75], "one number"),
    (lambda p, s, t: 100 * ((p == s) & (s != t)).sum().item() / (((p == t) | (p == s)) & (s != t)).sum().item(),
     r"a fraction lies in \[0, 1\]"),
])
def test_shape_bias_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_shape_bias(wrong)


def test_summing_instead_of_averaging_is_explained() -> None:
    def summed(probabilities: torch.Tensor) -> torch.Tensor:
        return torch.stack([probabilities[:, list(IMAGENET_INDICES[c])].sum(dim=1) for c in CATEGORIES], dim=1).argmax(1)
    with pytest.raises(ExerciseFailed, match="take the mean"):
        check_decision_16(summed)
    with pytest.raises(ExerciseFailed, match="category indices"):
        check_decision_16(lambda p: p.argmax(dim=1)[:, None])


@pytest.mark.parametrize("wrong, message", [
    (lambda image, grid, seed: image, "unchanged"),
    (lambda image, grid, seed: image.flatten(2)[..., torch.randperm(image[0, 0].numel(), generator=torch.Generator().manual_seed(seed))].reshape(image.shape),
     "not tiles of the input"),
    (lambda image, grid, seed: image.flip(-1), "not tiles of the input"),
    (lambda image, grid, seed: image.roll(image.shape[-1] // grid, dims=-1), "seeds 0 and 1 gave the same"),
])
def test_shuffle_mistakes_are_explained(wrong, message: str) -> None:
    with pytest.raises(ExerciseFailed, match=message):
        check_shuffle_tiles(wrong)


def _fgsm(model, images, labels, eps, sign=1.0, clamp=True):
    """FGSM written out, with a sign and a clamp that the mistakes below get wrong."""
    images = images.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(images), labels), images)
    stepped = images + sign * eps * gradient.sign()
    return (stepped.clamp(0, 1) if clamp else stepped).detach()


@pytest.mark.parametrize("wrong, hint", [
    (lambda m, x, y, eps: x, "unchanged"),
    (lambda m, x, y, eps: _fgsm(m, x, y, eps, sign=-1.0), "stepped down the gradient"),
    (lambda m, x, y, eps: _fgsm(m, x, y, eps, clamp=False), r"left \[0, 1\]"),
    (lambda m, x, y, eps: _fgsm(m, x, y, 2 * eps), "reaches"),
    (lambda m, x, y, eps: _fgsm(m, x, y.roll(1), eps), "pixel values differ"),
])
def test_fgsm_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_fgsm(wrong)


def _distance(attention, grid, patch_size, scale=1.0):
    rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
    centres = torch.stack([rows.flatten(), cols.flatten()], dim=1).float() * scale
    return (attention * torch.cdist(centres, centres)).sum(-1).mean(-1)


@pytest.mark.parametrize("wrong, hint", [
    (lambda a, grid, p: _distance(a, grid, p), "in patches"),
    (lambda a, grid, p: _distance(a, grid, p, p).mean(), "one distance per head"),
    (lambda a, grid, p: _distance(a.transpose(-1, -2).softmax(-1), grid, p, p), "expected"),
])
def test_attention_distance_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_mean_attention_distance(wrong)
