"""DINO's objective, piece by piece: centring, sharpening, the loss, the EMA teacher, and no gradient to the teacher."""

import math

import pytest
import torch
import torch.nn.functional as F

from vitlessons.data import cueworld
from vitlessons.data.sources import TensorSource
from vitlessons.models import load_model
from vitlessons.objectives.dino import Dino, ProjectionHead, cosine_rise, dino_loss, entropy, linear_warmup
from vitlessons.perturb.crops import MultiCrop
from vitlessons.train import Recipe, fit

SMALL_VIEWS = MultiCrop(global_size=32, local_size=16, local_crops=2)


def tiny_vit():
    return load_model("lab_vit", labels=cueworld.CLASS_NAMES, image_size=32, depth=1, embed_dim=32, num_heads=2,
                      dynamic_img_size=True)


def images(count: int = 8, seed: int = 0) -> torch.Tensor:
    return cueworld.make_split("randomised", count, size=32, seed=seed).images


def test_loss_of_identical_views_is_the_teachers_entropy() -> None:
    logits = torch.randn(5, 16)
    loss, targets = dino_loss([logits] * 4, [logits] * 2, torch.zeros(16), 0.1, 0.1)
    assert torch.allclose(loss, entropy(F.softmax(logits / 0.1, -1)).mean(), atol=1e-5)
    assert torch.allclose(targets[0], F.softmax(logits / 0.1, -1))


def test_a_view_is_never_compared_with_itself() -> None:
    teacher = [torch.randn(3, 8), torch.randn(3, 8)]
    far = torch.randn(3, 8) * 20  # a student that matches each teacher view only on the same view
    loss, _ = dino_loss([teacher[0], teacher[1]], teacher, torch.zeros(8), 0.1, 0.1)
    swapped = -(F.softmax(teacher[0] / 0.1, -1) * F.log_softmax(teacher[1] / 0.1, -1)).sum(-1).mean()
    swapped += -(F.softmax(teacher[1] / 0.1, -1) * F.log_softmax(teacher[0] / 0.1, -1)).sum(-1).mean()
    assert torch.allclose(loss, swapped / 2, atol=1e-5)
    assert not torch.allclose(loss, dino_loss([far, far], teacher, torch.zeros(8), 0.1, 0.1)[0])


def test_centring_and_sharpening_move_the_teachers_output_as_defined() -> None:
    logits, centre = torch.randn(4, 10), torch.randn(10)
    _, targets = dino_loss([logits] * 3, [logits] * 2, centre, 0.1, 0.04)
    assert torch.allclose(targets[0], F.softmax((logits - centre) / 0.04, -1))
    # a lower temperature sharpens: lower entropy, same ranking
    _, soft = dino_loss([logits] * 3, [logits] * 2, torch.zeros(10), 0.1, 0.1)
    _, sharp = dino_loss([logits] * 3, [logits] * 2, torch.zeros(10), 0.1, 0.04)
    assert (entropy(sharp[0]) < entropy(soft[0])).all()
    assert torch.equal(sharp[0].argmax(-1), soft[0].argmax(-1))
    # the centre is an exponential moving average of the teacher's raw outputs
    objective = Dino(out_dim=10, centre_momentum=0.9)
    objective.centre.copy_(centre)
    objective.update_centre(logits)
    assert torch.allclose(objective.centre, 0.9 * centre + 0.1 * logits.mean(0))


def test_schedules() -> None:
    assert cosine_rise(0.996, 1.0, 0.0) == 0.996 and cosine_rise(0.996, 1.0, 1.0) == 1.0
    assert math.isclose(cosine_rise(0.996, 1.0, 0.5), 0.998)
    assert linear_warmup(0.04, 0.07, 0.0, 0.3) == 0.04 and linear_warmup(0.04, 0.07, 0.15, 0.3) == pytest.approx(0.055)
    assert linear_warmup(0.04, 0.07, 0.9, 0.3) == 0.07
    objective = Dino(sharpening=False)
    assert objective.teacher_temperature == objective.student_temperature


def test_ema_update_is_exact_and_the_teacher_gets_no_gradient() -> None:
    model = tiny_vit()
    objective = Dino(views=SMALL_VIEWS, out_dim=32)
    objective.setup(model)
    before = [p.clone() for p in objective.teacher.parameters()]
    out = objective.step(model, (images(), torch.zeros(8, dtype=torch.long)))
    out.loss.backward()
    assert all(p.grad is None for p in (*objective.teacher.parameters(), *objective.teacher_head.parameters()))
    assert all(not p.requires_grad for p in objective.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in objective.head.parameters())
    with torch.no_grad():  # move the student, then let the teacher follow it by one step
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    objective.after_step(model, 1, 10)
    m = 0.996
    for teacher, old, student in zip(objective.teacher.parameters(), before, model.parameters(), strict=True):
        assert torch.allclose(teacher, m * old + (1 - m) * student, atol=1e-6)
    assert objective.progress == pytest.approx(0.1)


def test_projection_head_outputs_cosines() -> None:
    head = ProjectionHead(12, out_dim=7)
    out = head(torch.randn(5, 12) * 100)
    assert out.shape == (5, 7) and out.abs().max() <= 1 + 1e-6


def test_training_logs_the_collapse_diagnostics_and_restores_from_state() -> None:
    model = tiny_vit()
    objective = Dino(views=SMALL_VIEWS, out_dim=32)
    history = fit(model, objective, TensorSource(images(16), torch.zeros(16, dtype=torch.long)),
                  Recipe(epochs=2, batch_size=8), progress=False)
    for name in ("loss", "teacher entropy", "batch entropy", "KL"):
        assert len(history[name]) == 2 and all(math.isfinite(v) for v in history[name])
    assert all(0 <= v <= math.log(32) + 1e-4 for v in history["teacher entropy"])
    fresh, copy = tiny_vit(), Dino(views=SMALL_VIEWS, out_dim=32)
    copy.setup(fresh)
    copy.load_state_dict(objective.state_dict())
    batch = images(4, seed=3)
    assert torch.allclose(copy.teacher.features(batch), objective.teacher.features(batch))
    assert copy.progress == objective.progress == 1.0  # a restored run reports the schedules' final values
    assert objective.config()["views"]["local_crops"] == 2


def test_only_course_models_can_be_trained() -> None:
    with pytest.raises(TypeError, match="course model"):
        Dino().setup(torch.nn.Linear(2, 2))


def test_the_head_starts_from_the_seed_alone() -> None:
    first, second = Dino(out_dim=8, seed=3), Dino(out_dim=8, seed=3)
    first.setup(tiny_vit())
    torch.randn(100)  # global random state moves in between
    second.setup(tiny_vit())
    assert all(torch.equal(a, b) for a, b in zip(first.head.parameters(), second.head.parameters()))
    third = Dino(out_dim=8, seed=4)
    third.setup(tiny_vit())
    assert not torch.equal(third.head.prototypes, first.head.prototypes)
