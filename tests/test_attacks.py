import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vitlessons.attacks import AttackResult, feature_attack, fgsm, pgd
from vitlessons.models import Backbone, load_model

EPS = 8 / 255
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def lab_cnn(device: str = "cpu") -> nn.Module:
    return load_model("lab_cnn", labels=list("abcdef"), device=device, image_size=32)


def lab_vit_backbone(device: str = "cpu") -> tuple[Backbone, nn.Module]:
    """A one-block lab ViT without its head (features out), and the classifier it came from."""
    classifier = load_model("lab_vit", labels=list("abcdef"), device=device, image_size=32, depth=1,
                            embed_dim=32, num_heads=2)
    return Backbone("lab_vit", classifier.net, classifier.preprocessing), classifier


def images(n: int = 4, size: int = 32, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random images with every other row at the edges of the pixel range: 0, 1/255, 254/255 and 1."""
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    edges = torch.tensor([0.0, 1 / 255, 254 / 255, 1.0], dtype=dtype)
    x[:, :, ::2] = edges[torch.arange(size // 2) % 4][None, None, :, None]
    return x


def run(attack: str, device: str = "cpu", **options) -> AttackResult:
    """One of the three attacks on a lab model, with a schedule whose steps would leave the ball unprojected."""
    x = images().to(device)
    schedule = {"eps": EPS, "step_size": 0.6 * EPS, "steps": 4} | options
    if attack == "fgsm":
        return fgsm(lab_cnn(device), x, eps=schedule["eps"])
    if attack == "pgd":
        return pgd(lab_cnn(device), x, **schedule)
    return feature_attack(lab_vit_backbone(device)[0], x, **schedule)


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "feature"])
def test_perturbations_stay_within_eps_and_the_pixel_range(attack: str) -> None:
    result = run(attack)
    assert torch.equal(result.clean_images, images()) and result.losses.shape == (2 if attack == "fgsm" else 5, 4)
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert result.delta.abs().max() <= EPS + 1e-6
    assert result.delta.abs().max() >= EPS - 1e-6  # the budget is used: an attack that adds nothing fails
    assert not result.images.requires_grad


def test_fgsm_is_one_pgd_step_of_size_eps_without_random_start() -> None:
    model, x = lab_cnn(), images()
    one, step = fgsm(model, x, eps=EPS), pgd(model, x, eps=EPS, step_size=EPS, steps=1, random_start=False)
    assert torch.equal(one.images, step.images) and torch.equal(one.losses, step.losses)
    assert torch.equal(one.predictions, step.predictions) and torch.equal(one.flipped, step.flipped)


def test_fgsm_is_the_signed_gradient_step_written_out() -> None:
    """Against the clean predictions by default; given labels, against those."""
    model, x = lab_cnn(), images()
    labels = torch.tensor([0, 1, 2, 3])
    for given in (None, labels):
        target = model(x).argmax(-1) if given is None else given
        start = x.clone().requires_grad_(True)
        F.cross_entropy(model(start), target).backward()
        expected = (x + EPS * start.grad.sign()).clamp(0, 1)
        result = fgsm(model, x, given, eps=EPS)
        assert torch.equal(result.images, expected)
        assert torch.allclose(result.losses[0], F.cross_entropy(model(x), target, reduction="none"))


def test_pgd_raises_the_loss_of_a_linear_model_at_every_step() -> None:
    """For a linear classifier, cross-entropy is convex in the pixels, so loss(x + d) >= loss(x) + grad . d.

    A signed step, clamped into the box, moves every pixel along its gradient's sign or not at all, so grad . d > 0:
    the loss cannot fall at any step, for any image, from any start, and rises strictly while some pixel can
    still move (steps of eps / 8, six of them, leave every pixel room). For a deep network PGD's loss is not
    monotone per step, hence this model. Computed in float64 so rounding cannot hide a fall. An attack that does
    not move, or that steps down the gradient, fails here.
    """
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 6)).double()
    with torch.no_grad():
        linear[1].weight.copy_(0.05 * torch.randn(6, 3 * 8 * 8, generator=torch.Generator().manual_seed(0)))
    x = images(8, size=8, dtype=torch.float64)
    for random_start in (False, True):
        result = pgd(linear, x, eps=EPS, step_size=EPS / 8, steps=6, random_start=random_start)
        assert result.losses.shape == (7, 8)
        assert (result.losses.diff(dim=0) > 0).all()
        assert (result.losses[-1] - result.losses[0] > 0.05).all()


def test_pgd_raises_the_loss_of_the_lab_cnn_and_flips_decisions() -> None:
    """Not guaranteed per step for a deep network, but on average over a seeded batch the loss must end higher."""
    model, x = lab_cnn(), images(8)
    clean_loss = F.cross_entropy(model(x), model(x).argmax(-1), reduction="none")
    result = pgd(model, x, eps=8 * EPS, steps=10)
    assert (result.losses[-1] > clean_loss).all() and result.losses[-1].mean() > result.losses[0].mean()
    assert torch.equal(result.clean_predictions, model(x).argmax(-1))
    assert result.flipped.dtype == torch.bool and result.flipped.shape == (8,) and result.success_rate > 0
    assert result.success_rate == 1 - result.accuracy(result.clean_predictions)


def test_a_seed_fixes_the_random_start_and_leaves_global_randomness_alone() -> None:
    state = torch.get_rng_state()
    first, again, other = (run("pgd", seed=s) for s in (0, 0, 1))
    assert torch.equal(first.images, again.images) and torch.equal(first.losses, again.losses)
    assert not torch.equal(first.losses[0], other.losses[0]) and not torch.equal(first.images, other.images)
    features, features_again, features_other = (run("feature", seed=s) for s in (0, 0, 1))
    assert torch.equal(features.images, features_again.images)
    assert not torch.equal(features.images, features_other.images)
    assert torch.equal(torch.get_rng_state(), state)


def test_the_model_is_attacked_in_eval_mode_and_left_as_it_was() -> None:
    """Batch norm in training mode would use batch statistics and update its running ones; neither may happen."""
    model, x = lab_cnn(), images()
    reference = pgd(model, x, eps=EPS, steps=3)
    model.train()
    model.net.layer1.eval()  # a mixed state, which must come back as it was
    modes = [module.training for module in model.modules()]
    buffers = [buffer.clone() for buffer in model.buffers()]
    result = pgd(model, x, eps=EPS, steps=3)
    assert torch.equal(result.images, reference.images) and torch.equal(result.losses, reference.losses)
    assert [module.training for module in model.modules()] == modes
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))
    assert all(parameter.grad is None for parameter in model.parameters())


def test_the_feature_attack_moves_a_backbone_away_from_its_clean_features() -> None:
    backbone, classifier = lab_vit_backbone()
    x = images()
    result = feature_attack(backbone, x, eps=EPS, steps=5)
    clean = backbone(x)
    distance = 1 - F.cosine_similarity(backbone(result.images), clean, dim=1)
    assert torch.allclose(result.losses[-1], distance, atol=1e-6)
    assert (result.losses[-1] > result.losses[0]).all() and (result.losses[-1] > 1e-3).all()
    assert result.predictions is None and result.flipped is None
    with pytest.raises(ValueError, match="no decisions"):
        _ = result.success_rate
    decided = feature_attack(backbone, x, eps=EPS, steps=5, classifier=classifier)
    assert torch.equal(decided.images, result.images)
    assert torch.equal(decided.predictions, classifier(result.images).argmax(-1))
    assert torch.equal(decided.clean_predictions, classifier(x).argmax(-1))
    assert all(parameter.grad is None for parameter in classifier.parameters())


@pytest.mark.parametrize("call, error, message", [
    (lambda m, x: pgd(m, x * 2, eps=EPS), ValueError, r"\[0, 1\]"),
    (lambda m, x: pgd(m, x[:, :1], eps=EPS), ValueError, "shape"),
    (lambda m, x: pgd(m, x, eps=-0.1), ValueError, "eps"),
    (lambda m, x: fgsm(m, x, eps=float("nan")), ValueError, "eps"),
    (lambda m, x: pgd(m, x, eps=EPS, steps=0), ValueError, "steps"),
    (lambda m, x: pgd(m, x, eps=EPS, step_size=0), ValueError, "step_size"),
    (lambda m, x: feature_attack(m, x, eps=EPS, step_size=-1.0), ValueError, "step_size"),
    (lambda m, x: pgd(m, x, torch.tensor([0, 1]), eps=EPS), ValueError, r"shape \(4,\)"),
    (lambda m, x: fgsm(m, x, torch.tensor([0, 1, 2, 6]), eps=EPS), ValueError, "6 classes"),
    (lambda m, x: fgsm(m, x, torch.zeros(4), eps=EPS), TypeError, "integer"),
])
def test_bad_input_fails_with_a_message(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call(lab_cnn(), images())


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_attacks_run_where_the_model_is(device: str) -> None:
    """Images follow the model to its device; the seeded start is drawn on the CPU, so it is the same everywhere."""
    model = lab_cnn(device)
    result = pgd(model, images(), eps=EPS, steps=4)  # CPU images, moved to the model
    again = pgd(model, images().to(device), eps=EPS, steps=4)
    assert torch.equal(result.images, again.images)
    for tensor in (result.images, result.losses, result.predictions, result.flipped):
        assert tensor.device.type == device
    assert result.delta.abs().max() <= EPS + 1e-6 and result.images.min() >= 0 and result.images.max() <= 1
    assert result.losses[-1].mean() > result.losses[0].mean()
    start = pgd(model, images().to(device), eps=EPS, step_size=1e-12, steps=1).images.cpu()
    assert torch.allclose(start, pgd(lab_cnn(), images(), eps=EPS, step_size=1e-12, steps=1).images, atol=1e-6)
    features = run("feature", device)
    assert features.images.device.type == device and features.delta.abs().max() <= EPS + 1e-6


def test_the_attacks_agree_with_torchattacks() -> None:
    """torchattacks (Kim, 2020) as an independent implementation. It pins an old requests (~=2.25.1) that
    JupyterLab's server refuses, so CI installs it with --no-deps (.ci/run); it never imports requests."""
    torchattacks = pytest.importorskip("torchattacks", reason="pip install --no-deps torchattacks==3.5.1, as .ci/run does")
    model, x = lab_cnn(), images()
    labels = torch.tensor([0, 1, 2, 3])
    assert torch.equal(fgsm(model, x, labels, eps=EPS).images, torchattacks.FGSM(model, eps=EPS)(x, labels))
    ours = pgd(model, x, labels, eps=EPS, step_size=EPS / 4, steps=5, random_start=False).images
    theirs = torchattacks.PGD(model, eps=EPS, alpha=EPS / 4, steps=5, random_start=False)(x, labels)
    assert torch.allclose(ours, theirs, atol=1e-6)
