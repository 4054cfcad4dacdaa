"""Chapter 4's checkers pass a correct answer and give the right hint for plausible wrong ones."""

import pytest
import torch
import torch.nn.functional as F

from vitlessons.exercises import ExerciseFailed, check_clip_loss, check_zero_shot_weights


def clip_loss(normalise: bool = True, both_ways: bool = True, scaled: bool = True):
    def loss(images, texts, logit_scale):
        if normalise:
            images, texts = F.normalize(images, dim=-1), F.normalize(texts, dim=-1)
        logits = (logit_scale if scaled else 1.0) * images @ texts.T
        matches = torch.arange(len(logits))
        rows = F.cross_entropy(logits, matches)
        return (rows + F.cross_entropy(logits.T, matches)) / 2 if both_ways else rows
    return loss


def zero_shot(normalise_prompts: bool = True, normalise_mean: bool = True, transpose: bool = True):
    def weights(embeddings):
        if normalise_prompts:
            embeddings = F.normalize(embeddings, dim=-1)
        mean = embeddings.mean(1)
        if normalise_mean:
            mean = F.normalize(mean, dim=-1)
        return mean.T if transpose else mean
    return weights


def test_correct_answers_pass(capsys: pytest.CaptureFixture[str]) -> None:
    check_clip_loss(clip_loss())
    check_zero_shot_weights(zero_shot())
    assert capsys.readouterr().out.count("Passed:") == 2


@pytest.mark.parametrize("wrong, hint", [
    (clip_loss(normalise=False), "normalise both sets"),
    (clip_loss(both_ways=False), "one direction only"),
    (clip_loss(scaled=False), "multiply the cosine similarities by logit_scale"),
    (lambda images, texts, scale: torch.tensor([1.0, 2.0]), "one number"),
])
def test_clip_loss_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_clip_loss(wrong)


@pytest.mark.parametrize("wrong, hint", [
    (zero_shot(normalise_prompts=False), "normalise each prompt's embedding before averaging"),
    (zero_shot(normalise_mean=False), "normalise the mean again"),
    (zero_shot(transpose=False), "transpose, one column per class"),
    (lambda embeddings: F.normalize(embeddings[:, 0], dim=-1).T, "average over the templates"),
])
def test_zero_shot_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_zero_shot_weights(wrong)


def test_a_stub_is_not_done_yet() -> None:
    def clip_loss(images, texts, logit_scale):
        raise NotImplementedError
    with pytest.raises(ExerciseFailed, match="not implemented yet"):
        check_clip_loss(clip_loss)
