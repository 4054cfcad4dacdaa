"""Chapter 6's shape token: a two-token lab ViT, its per-token heads, and the distillation objective."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vitlessons import segmentation
from vitlessons.attention import record
from vitlessons.data import cueworld
from vitlessons.data.sources import TensorSource
from vitlessons.models import load_model
from vitlessons.models.tokens import token_heads, two_token_logits
from vitlessons.models.wrapper import Classifier, Preprocessing
from vitlessons.objectives import ShapeDistillation
from vitlessons.trained import training_key
from vitlessons.train import Recipe, fit

LABELS = list(cueworld.CLASS_NAMES)


def two_token_vit(seed: int = 0) -> Classifier:
    return load_model("lab_vit", labels=LABELS, image_size=16, patch_size=4, depth=1, embed_dim=32, num_heads=2,
                      shape_token=True, seed=seed)


def fixed_teacher() -> Classifier:
    """A frozen random linear classifier of 16 px images with a batch norm, whose statistics must not move."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3 * 16 * 16, len(LABELS)))
    return Classifier("teacher", net, Preprocessing(16, (0.5,) * 3, (0.5,) * 3, resize=False), LABELS)


def images(count: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_each_token_has_its_own_head_and_the_model_averages_them() -> None:
    model = two_token_vit().eval()
    x = images(4)
    with torch.no_grad():
        class_logits, shape_logits = two_token_logits(model.net, model.preprocessing(x))
        heads = token_heads(model)
        assert torch.allclose(heads["class token"](x), class_logits) and torch.allclose(heads["shape token"](x), shape_logits)
        assert not torch.allclose(class_logits, shape_logits)
        assert torch.allclose(model(x), (class_logits + shape_logits) / 2, atol=1e-6)  # DeiT's inference rule
    with pytest.raises(TypeError, match="shape token"):
        token_heads(load_model("lab_vit", labels=LABELS))


def test_each_token_reads_its_own_attention_row() -> None:
    heads = token_heads(two_token_vit())
    x = images(3)
    with record(heads["class token"]) as maps:
        heads["class token"].features(x)
    for index, head in enumerate(heads.values()):
        attention = segmentation.cls_attention(head, x)
        assert attention.shape == (3, 2, 4, 4)  # two prefix tokens, then the 4x4 patches
        assert torch.allclose(attention.flatten(-2), maps[-1][:, :, index, 2:], atol=1e-6)
    with pytest.raises(ValueError, match="prefix token"):
        segmentation.cls_attention(heads["class token"], x, token=2)


def test_the_loss_splits_between_labels_and_teacher() -> None:
    model, teacher = two_token_vit(), fixed_teacher()
    x, labels = images(8), torch.arange(8) % 6
    for weight, temperature in ((0.0, 1.0), (0.3, 2.0), (1.0, 1.0)):
        out = ShapeDistillation(teacher, "t", weight=weight, temperature=temperature).eval().step(model, (x, labels))
        class_logits, shape_logits = two_token_logits(model.net, model.preprocessing(x))
        target = F.softmax(teacher(x) / temperature, -1)
        kl = (target * (target.log() - F.log_softmax(shape_logits / temperature, -1))).sum(-1).mean()
        expected = (1 - weight) * F.cross_entropy(class_logits, labels) + weight * temperature ** 2 * kl
        assert torch.allclose(out.loss, expected, atol=1e-5) and torch.allclose(out.logs["KL"], kl, atol=1e-5)
    with pytest.raises(ValueError):
        ShapeDistillation(teacher, "t", weight=1.5)


def test_a_student_matching_a_fixed_teacher_drives_the_kl_to_zero() -> None:
    model, teacher = two_token_vit(), fixed_teacher()
    statistics = teacher.net[0].running_mean.clone()
    objective = ShapeDistillation(teacher, "fixed", weight=1.0)
    data = TensorSource(images(64), torch.zeros(64, dtype=torch.long))
    history = fit(model, objective, data, Recipe(epochs=60, batch_size=16, lr=3e-3), progress=False)
    first, last = history["KL"][0], history["KL"][-1]
    assert last < 0.02 < first and last < first / 10
    assert history["agreement"][-1] > 0.9
    assert torch.equal(teacher.net[0].running_mean, statistics)  # the teacher stayed in eval mode throughout
    assert all(p.grad is None for p in teacher.parameters())  # and was never trained


def test_the_teacher_is_part_of_the_cache_key() -> None:
    teacher, data, recipe = fixed_teacher(), TensorSource(images(4), torch.zeros(4, dtype=torch.long)), Recipe(epochs=1)
    keys = [training_key("lab_vit", {}, ShapeDistillation(teacher, name), data, recipe, 0) for name in ("a", "b")]
    assert keys[0] != keys[1] and keys[0]["objective"]["teacher"] == "a"
