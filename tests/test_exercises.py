"""Each checker passes the notebook's solution and fails the stub and plausible wrong answers, with a hint."""

import json
from pathlib import Path

import pytest
import torch

from vitlessons.data.categories import CATEGORIES, IMAGENET_INDICES
from vitlessons.exercises import ExerciseFailed, check_decision_16, check_shape_bias, check_shuffle_tiles

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_texture_vs_shape.ipynb"


def solutions() -> dict:
    """Run the notebook's solution cells, so the tests check the very code students are shown."""
    namespace = {"torch": torch, "CATEGORIES": CATEGORIES}
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
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
    assert capsys.readouterr().out.count("Passed") == 3


@pytest.mark.parametrize("check", [check_shape_bias, check_decision_16, check_shuffle_tiles])
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
