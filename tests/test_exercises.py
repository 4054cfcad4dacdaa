"""Each checker passes the notebook's solution and fails the stub and plausible wrong answers, with a hint."""

import json
from pathlib import Path

import pytest
import torch

from vitlessons.data.categories import CATEGORIES, IMAGENET_INDICES
from vitlessons.exercises import (
    ExerciseFailed, check_auroc, check_clip_loss, check_decision_16, check_dino_loss, check_fgsm, check_forward_without_block,
    check_linear_cka, check_mass_mask, check_mce, check_mean_attention_distance, check_random_patch_drop,
    check_rotated_batch, check_shape_bias, check_shuffle_tiles, check_zero_shot_weights,
)
from vitlessons.metrics import ALEXNET_ERRORS
from vitlessons.student import chapter_notebooks

NOTEBOOKS = chapter_notebooks(Path(__file__).resolve().parents[1] / "notebooks")
CHECKERS = [check_shape_bias, check_decision_16, check_shuffle_tiles, check_fgsm, check_mean_attention_distance,
            check_mce, check_forward_without_block, check_mass_mask, check_dino_loss, check_random_patch_drop, check_linear_cka,
            check_rotated_batch, check_auroc, check_clip_loss, check_zero_shot_weights]


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
    check_mce(found["mce_by_hand"])
    check_forward_without_block(found["forward_without_block"])
    check_mass_mask(found["mass_mask"])
    check_dino_loss(found["dino_loss_by_hand"])
    check_random_patch_drop(found["random_patch_drop"])
    check_linear_cka(found["linear_cka_by_hand"])
    check_rotated_batch(found["rotated_batch"])
    check_auroc(found["auroc_by_hand"])
    check_clip_loss(found["clip_loss"])
    check_zero_shot_weights(found["zero_shot_weights"])
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


def _mean(values) -> float:
    return sum(values) / len(values)


@pytest.mark.parametrize("wrong, hint", [
    (lambda e, a: _mean([_mean(e[c]) / a[c] for c in a]), "report the mCE in percent"),
    # the raw mean error is caught on AlexNet's own errors, which must score 100
    (lambda e, a: 100 * _mean([_mean(e[c]) for c in a]), "must give an mCE of 100.*divide each corruption's mean error"),
    (lambda e, a: 100 * _mean([_mean(e[c]) for c in a]) / _mean(list(a.values())),
     "expected mCE .*average each corruption's five severities first"),
    (lambda e, a: torch.tensor(100.0), "return one number"),
    (lambda e, a: [100.0], "return one number"),
])
def test_mce_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_mce(wrong)


def test_mce_normalised_by_the_mean_alexnet_error_fails_only_on_uneven_errors() -> None:
    """Dividing by AlexNet's mean error over all corruptions gives 100 on AlexNet itself: the second case catches it."""
    def pooled(e, a):
        return 100 * _mean([_mean(e[c]) for c in a]) / _mean(list(a.values()))

    assert pooled({c: [x] * 5 for c, x in ALEXNET_ERRORS.items()}, dict(ALEXNET_ERRORS)) == pytest.approx(100)
    with pytest.raises(ExerciseFailed, match="expected mCE"):
        check_mce(pooled)


def _forward(vit, x, index, norm=True):
    tokens = vit._pos_embed(vit.patch_embed(x))
    for position, block in enumerate(vit.blocks):
        if position != index:
            tokens = block(tokens)
    return vit.forward_head(vit.norm(tokens) if norm else tokens)


def _zero_the_block_then_run(vit, x, index):
    """A block with every weight zeroed adds nothing to the residual stream: right logits, edited model."""
    for parameter in vit.blocks[index].parameters():
        parameter.data.zero_()
    return vit(x)


def _delete_the_block_then_run(vit, x, index):
    del vit.blocks[index]
    return vit(x)


@pytest.mark.parametrize("wrong, hint", [
    (lambda vit, x, index: vit(x), "removing block 0 changed nothing"),
    (lambda vit, x, index: _forward(vit, x, index, norm=False), "with block 0 removed the logits differ.*vit.norm"),
    (lambda vit, x, index: _forward(vit, x, index)[:, :2], "return the logits, shape"),
    (lambda vit, x, index: _forward(vit, x, (index + 1) % 4), "with block 0 removed the logits differ"),
    (_zero_the_block_then_run, "the model itself was changed"),
    (_delete_the_block_then_run, "the model itself was changed"),
])
def test_forward_without_block_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_forward_without_block(wrong)


def _replace_the_block_then_run(vit, x, index):
    vit.blocks[index] = torch.nn.Identity()
    return vit(x)


def test_replacing_a_block_in_place_is_reported_as_changing_the_model() -> None:
    with pytest.raises(ExerciseFailed, match="the model itself was changed"):
        check_forward_without_block(_replace_the_block_then_run)


def _mask_keeping_too_many(attention, mass):
    values, order = attention.flatten().sort(descending=True)
    kept = torch.zeros_like(values, dtype=torch.bool)
    kept[order[:int((values.cumsum(0) / values.sum() < mass).sum()) + 2]] = True
    return kept.reshape(attention.shape)


@pytest.mark.parametrize("wrong, hint", [
    (lambda a, m: (a > a.mean()).float(), "boolean"),
    (lambda a, m: a.flatten() > 0.2, "shaped like the map"),
    (_mask_keeping_too_many, "only until the mass is reached"),
    (lambda a, m: a >= a.flatten().sort(descending=True).values[int(m * a.numel()) - 1], "share of the attention mass"),
])
def test_mass_mask_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_mass_mask(wrong)


def _dino_loss(centre: bool = True, sharpen: bool = True, skip_same: bool = True):
    def loss(student, teacher, c, ts, tt):
        targets = [((t - (c if centre else 0)) / (tt if sharpen else ts)).softmax(-1) for t in teacher]
        logs = [(s / ts).log_softmax(-1) for s in student]
        return torch.stack([-(t * s).sum(-1).mean() for i, t in enumerate(targets) for j, s in enumerate(logs)
                            if j != i or not skip_same]).mean()
    return loss


@pytest.mark.parametrize("wrong, hint", [
    (_dino_loss(centre=False), "subtract the centre"),
    (_dino_loss(sharpen=False), "teacher temperature, not the student's"),
    (lambda s, t, c, ts, tt: _dino_loss()(s, t, c, ts, 1.0), "divide the teacher's outputs"),
    (_dino_loss(skip_same=False), "never compare a view with itself"),
    (lambda s, t, c, ts, tt: _dino_loss()(s, t, c, ts, tt) * 2, "average the cross-entropy"),
    (lambda s, t, c, ts, tt: [1.0], "one-element tensor"),
])
def test_dino_loss_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_dino_loss(wrong)
    check_dino_loss(_dino_loss())


def _patch_drop(same_for_all: bool = False, partial: bool = False, count=round, seeded: bool = True):
    def drop(images, fraction, patch_size, seed):
        batch, _, height, width = images.shape
        grid = height // patch_size
        generator = torch.Generator().manual_seed(seed) if seeded else None
        keys = torch.rand(1 if same_for_all else batch, grid * grid, generator=generator).expand(batch, -1)
        chosen = keys.argsort(1)[:, :count(fraction * grid * grid)]
        mask = torch.zeros(batch, grid * grid, dtype=torch.bool).scatter_(1, chosen, True).reshape(batch, 1, grid, grid)
        mask = mask.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)
        if partial:
            mask[..., ::2, :] = False
        return images.masked_fill(mask, 0.0)
    return drop


@pytest.mark.parametrize("wrong, hint", [
    (_patch_drop(same_for_all=True), "a fresh set for each image"),
    (_patch_drop(partial=True), "partly blacked out"),
    (_patch_drop(count=lambda x: int(x) + 1), "round"),
    (_patch_drop(seeded=False), "same seed gave different patches"),
    (lambda images, fraction, patch_size, seed: images[:, :1], "shaped like the input"),
])
def test_random_patch_drop_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_random_patch_drop(wrong)
    check_random_patch_drop(_patch_drop())


def _cka(centre: bool = True, square: bool = True):
    def cka(x, y):
        x, y = x.double(), y.double()
        if centre:
            x, y = x - x.mean(0), y - y.mean(0)
        top = torch.linalg.matrix_norm(y.T @ x) ** (2 if square else 1)
        return (top / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y))).item()
    return cka


@pytest.mark.parametrize("wrong, hint", [(_cka(centre=False), "centre each column"), (_cka(square=False), "square")])
def test_linear_cka_mistakes_get_their_hint(wrong, hint: str) -> None:
    with pytest.raises(ExerciseFailed, match=hint):
        check_linear_cka(wrong)
    check_linear_cka(_cka())
