"""Chapter 5's probes: accuracy tables as the input is perturbed, a block is removed or attention is made local."""

import zlib

import pytest
import torch
from torch import nn

from vitlessons import probes
from vitlessons.data import cueworld
from vitlessons.models import load_model
from vitlessons.models.surgery import PARTS, depth, local_attention, max_window, removed
from vitlessons.models.wrapper import Classifier, Preprocessing, SelectClasses

LABELS = list(cueworld.CLASS_NAMES)


@pytest.fixture(autouse=True)
def no_grad() -> None:
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    split = cueworld.make_split("aligned", 12, seed=1)  # 64 px
    return split.images, split.labels


def tiny_cnn(name: str) -> Classifier:
    """A random conv net whose decisions move with the pixels, the same on every run."""
    torch.manual_seed(zlib.crc32(name.encode()))
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2),
                        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, len(LABELS)))
    return Classifier(name, net, Preprocessing(64, (0.5,) * 3, (0.1,) * 3, resize=False), LABELS).eval()


def lab_vit() -> Classifier:
    return load_model("lab_vit", device="cpu", labels=LABELS, seed=0)


def by_hand(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (model(images).argmax(-1) == labels).float().mean().item()


def test_accuracy_curve_perturbs_once_per_value_and_scores_every_model(batch) -> None:
    images, labels = batch
    models = {"a": tiny_cnn("a"), "b": tiny_cnn("b")}
    calls = []

    def darken(x: torch.Tensor, value: float) -> torch.Tensor:
        calls.append(value)
        return x * value

    values = [1.0, 0.5, 0.1]
    table = probes.accuracy_curve(models, images, labels, darken, values)
    assert calls == values  # one perturbed batch per value, shared by the models
    assert list(table.index) == values and list(table.columns) == ["a", "b"]
    for value in values:
        for name, model in models.items():
            assert table.loc[value, name] == pytest.approx(by_hand(model, images * value, labels), abs=1e-9)
    assert table.loc[1.0, "a"] == pytest.approx(probes.scored(models["a"], images, labels), abs=1e-9)
    assert table.nunique().max() > 1, "darkening must move some decisions, or the test checks nothing"


def test_the_identity_perturbation_gives_the_clean_accuracy_for_every_value(batch) -> None:
    images, labels = batch
    models = {"a": tiny_cnn("a"), "b": tiny_cnn("b")}
    table = probes.accuracy_curve(models, images, labels, lambda x, value: x, ["x", "y", "z"])
    for name, model in models.items():
        assert table[name].tolist() == [by_hand(model, images, labels)] * 3


def test_block_removal_table_matches_removal_by_hand_and_leaves_the_model_intact(batch) -> None:
    images, labels = batch
    model = lab_vit()
    before = model(images)
    table = probes.block_removal(model, images, labels)
    assert table.shape == (depth(model), len(PARTS)) == (4, 3)
    assert table.index.name == "block removed" and list(table.index) == [0, 1, 2, 3]
    assert list(table.columns) == list(PARTS)
    for block, part in [(0, "block"), (2, "attention"), (3, "mlp")]:
        with removed(model, block, part):
            expected = by_hand(model, images, labels)
        assert table.loc[block, part] == pytest.approx(expected, abs=1e-9)
    assert torch.equal(model(images), before)


def test_block_removal_takes_a_subset_of_parts(batch) -> None:
    images, labels = batch
    table = probes.block_removal(lab_vit(), images, labels, parts=("mlp",))
    assert list(table.columns) == ["mlp"] and len(table) == 4


def test_window_curve_runs_from_global_attention_down_to_a_patch_alone(batch) -> None:
    images, labels = batch
    model = lab_vit()
    grid = tuple(model.trunk.patch_embed.grid_size)
    curve = probes.window_curve(model, images, labels)
    assert list(curve.index) == list(range(max_window(grid), -1, -1)) == [7, 6, 5, 4, 3, 2, 1, 0]
    assert curve.index.name == "window (patches)" and curve.name == model.name
    assert curve[max_window(grid)] == probes.scored(model, images, labels)
    with local_attention(model, 0):
        assert curve[0] == pytest.approx(by_hand(model, images, labels), abs=1e-9)


def test_window_curve_takes_chosen_windows(batch) -> None:
    images, labels = batch
    curve = probes.window_curve(lab_vit(), images, labels, windows=[3, 1])
    assert list(curve.index) == [3, 1]


def test_the_last_blocks_class_token_through_the_head_is_the_models_output() -> None:
    vit = load_model("lab_vit", labels=cueworld.CLASS_NAMES, image_size=32, depth=3, embed_dim=32, num_heads=2, seed=1)
    images = cueworld.make_split("aligned", 5, size=32, seed=0).images
    logits = probes.block_logits(vit, images, batch_size=2)
    assert logits.shape == (3, 5, len(cueworld.CLASS_NAMES))
    with torch.no_grad():
        assert torch.allclose(logits[-1], vit(images), atol=1e-5)
    assert not torch.allclose(logits[0], logits[-1], atol=1e-3)  # earlier blocks are read, not the last one again
    subset = Classifier("subset", SelectClasses(vit.net, [4, 1]), vit.preprocessing, ["b", "a"])
    assert torch.allclose(probes.block_logits(subset, images)[-1], logits[-1][:, [4, 1]], atol=1e-5)
    table = probes.block_accuracy(vit, images, torch.zeros(5, dtype=torch.long))
    assert list(table.index) == [0, 1, 2] and table.between(0, 1).all()


def test_block_logits_need_a_class_token_head() -> None:
    with pytest.raises(TypeError, match="class token"):
        probes.block_logits(load_model("lab_cnn", labels=cueworld.CLASS_NAMES), torch.rand(1, 3, 64, 64))


def test_block_features_are_the_class_tokens_the_head_reads() -> None:
    vit, images = lab_vit(), cueworld.make_split("aligned", 5, seed=2).images
    features = probes.block_features(vit, images, batch_size=2)
    assert features.shape == (4, 5, 128)
    assert torch.allclose(features, vit.block_tokens(images).cls, atol=1e-5)


def test_a_linear_probe_reads_what_is_linearly_there_and_nothing_else() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    separable = torch.randn(300, 8, generator=g) + 4 * nn.functional.one_hot(labels, 8).float()
    train, test = (separable[:200], labels[:200]), (separable[200:], labels[200:])
    assert probes.linear_probe(train, test) > 0.95
    assert probes.linear_probe(train, test) == probes.linear_probe(train, test)  # seeded: the same every time
    noise = torch.randn(300, 8, generator=g)
    assert probes.linear_probe((noise[:200], labels[:200]), (noise[200:], labels[200:])) < 0.55
    with pytest.raises(ValueError, match="one label each"):
        probes.linear_probe((separable, labels[:10]), test)


def test_block_probes_score_each_block_and_the_ensemble() -> None:
    vit = lab_vit()
    train, test = cueworld.make_split("aligned", 60, seed=3), cueworld.make_split("aligned", 30, seed=4)
    scores = probes.block_probes(vit, (train.images, train.labels), (test.images, test.labels), ensemble=(2, 3))
    assert list(scores.index) == ["block 0", "block 1", "block 2", "block 3", "block 2 + block 3"]
    assert scores.between(0, 1).all()


def test_block_probes_read_a_cnn_stage_by_stage() -> None:
    cnn = load_model("lab_cnn", labels=cueworld.CLASS_NAMES)
    train, test = cueworld.make_split("aligned", 40, seed=3), cueworld.make_split("aligned", 20, seed=4)
    scores = probes.block_probes(cnn, (train.images, train.labels), (test.images, test.labels))
    assert list(scores.index) == ["stem", "stage 1", "stage 2", "stage 3", "stage 4"] and scores.between(0, 1).all()


def test_patch_drop_curves_drop_the_salient_patches_first() -> None:
    """A crafted classifier that answers 0 while the top-left quadrant is bright: salience decides what it sees."""
    class TopLeft(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            bright = self.scale * x[:, :, :32, :32].mean((1, 2, 3))
            return torch.stack([bright, 0.5 - bright], dim=-1)

    model = Classifier("top-left", TopLeft(), Preprocessing(64, (0.0,) * 3, (1.0,) * 3, resize=False), ["bright", "dark"])
    images, labels = torch.ones(4, 3, 64, 64), torch.zeros(4, dtype=torch.long)
    saliency = torch.zeros(4, 64, 64)
    saliency[:, :32, :32] = 1
    table = probes.patch_drop_curves({"m": model}, images, labels, [0.0, 0.25, 0.5], patch_size=8,
                                     saliency={"map": saliency})
    assert list(table.columns.get_level_values(0).unique()) == ["random", "salient (map)", "non-salient (map)"]
    assert table[("salient (map)", "m")].tolist() == [1.0, 0.0, 0.0]  # the quadrant goes first
    assert table[("non-salient (map)", "m")].tolist() == [1.0, 1.0, 1.0]  # the quadrant goes last
    assert table[("random", "m")][0.0] == 1.0


class Halves(nn.Module):
    """Features: the mean brightness of each half of the image (top, bottom, left, right); sees which side is bright."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))  # a parameter, so the model has a device
        self.num_features = 4

    def get_classifier(self) -> nn.Module:
        return nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // 2, x.shape[-1] // 2
        return self.scale * torch.stack([x[..., :h, :].mean((1, 2, 3)), x[..., h:, :].mean((1, 2, 3)),
                            x[..., :, :w].mean((1, 2, 3)), x[..., :, w:].mean((1, 2, 3))], dim=-1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x


def test_a_rotation_probe_reads_which_way_is_up_only_when_the_features_hold_it() -> None:
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(1, 0, 16)[:, None].expand(16, 16)  # bright at the top: these images have an up
    images = (0.6 * ramp + 0.4 * torch.rand(120, 3, 16, 16, generator=g)).clamp(0, 1)
    preprocessing = Preprocessing(16, (0.0,) * 3, (1.0,) * 3, resize=False)
    halves = Classifier("halves", Halves(), preprocessing, ["a"])
    assert probes.rotation_probe(halves, images[:80], images[80:]) > 0.95
    blind = Classifier("mean colour", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3)), preprocessing, ["a"])
    assert probes.rotation_probe(blind, images[:80], images[80:]) < 0.4  # chance is 0.25: the mean has no up
    flat = torch.rand(120, 3, 16, 16, generator=g)
    assert probes.rotation_probe(halves, flat[:80], flat[80:]) < 0.4  # features that could, on images without an up


def test_turn_accuracy_scores_each_image_over_its_four_turns() -> None:
    from vitlessons.objectives import Rotation

    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    model = Classifier("halves", Halves(), Preprocessing(16, (0.0,) * 3, (1.0,) * 3, resize=False), ["a"])
    rotation = Rotation()
    rotation.setup(model)
    scores = probes.turn_accuracy(model, rotation, images, batch_size=4)
    logits, turns, _ = rotation.rotation_logits(model, images)
    expected = (logits.argmax(-1) == turns).float().reshape(4, 6).mean(0)
    assert scores.shape == (6,) and torch.equal(scores, expected)
    assert set(scores.tolist()) <= {0.0, 0.25, 0.5, 0.75, 1.0}


def test_layer_probes_score_several_tasks_on_one_read_of_the_features() -> None:
    cnn = load_model("lab_cnn", labels=cueworld.CLASS_NAMES)
    train, test = cueworld.make_split("randomised", 40, seed=3), cueworld.make_split("randomised", 20, seed=4)
    table = probes.layer_probes(cnn, train.images, test.images, {"shape": (train.shapes, test.shapes),
                                                                  "texture": (train.textures, test.textures)})
    assert list(table.columns) == ["shape", "texture"] and list(table.index) == ["stem", "stage 1", "stage 2", "stage 3", "stage 4"]
    alone = probes.block_probes(cnn, (train.images, train.textures), (test.images, test.textures))
    assert table["texture"].tolist() == alone.tolist()


def test_turned_features_follow_quarter_turns_order() -> None:
    from vitlessons.objectives.rotation import quarter_turns

    images = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    model = Classifier("halves", Halves(), Preprocessing(16, (0.0,) * 3, (1.0,) * 3, resize=False), ["a"])
    features, turns = probes.turned_features(model, images, batch_size=2)
    turned, expected_turns = quarter_turns(images)
    assert torch.equal(turns, expected_turns)
    assert torch.allclose(features, nn.functional.normalize(model.features(turned), dim=-1), atol=1e-6)
