"""Chapter 2's checkers pass a correct answer and give the right hint for plausible wrong ones.

(They join tests/test_exercises.py's notebook-solution run once chapter 2's notebook exists.)
"""

import pytest
import torch

from vitlessons.exercises import ExerciseFailed, check_auroc, check_rotated_batch


def rotated(clockwise: bool = False, shift: int = 0, interleave: bool = False):
    def rotated_batch(images):
        turns = range(4)
        copies = [torch.rot90(images, -k if clockwise else k, dims=(-2, -1)) for k in turns]
        if interleave:
            return torch.stack(copies, 1).flatten(0, 1), torch.arange(4).repeat(len(images))
        return torch.cat(copies), (torch.arange(4).repeat_interleave(len(images)) + shift) % 4
    return rotated_batch


def auroc_pairs(ties: float = 0.5, reverse: bool = False):
    def score(normal, anomalous):
        if reverse:
            normal, anomalous = anomalous, normal
        return ((anomalous[:, None] > normal[None]).double() + ties * (anomalous[:, None] == normal[None]).double()).mean().item()
    return score


def test_correct_answers_pass(capsys: pytest.CaptureFixture[str]) -> None:
    check_rotated_batch(rotated())
    check_rotated_batch(rotated(interleave=True))  # any order of copies is fine while each has its own label
    check_auroc(auroc_pairs())
    assert capsys.readouterr().out.count("Passed") == 3


@pytest.mark.parametrize("wrong, hint", [
    (rotated(clockwise=True), "counter-clockwise"),
    (rotated(shift=1), "label k for k quarter turns"),
    (lambda images: torch.cat([images] * 4), "two things"),
    (lambda images: (images, torch.zeros(3, dtype=torch.long)), "12 turned copies"),
])
def test_rotated_batch_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_rotated_batch(wrong)


@pytest.mark.parametrize("wrong, hint", [(auroc_pairs(ties=0.0), "one half"), (auroc_pairs(reverse=True), "more anomalous")])
def test_auroc_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_auroc(wrong)
