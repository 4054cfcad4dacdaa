"""Every layer's representation, read through timm's forward_intermediates, for CKA between networks."""

import pytest
import torch
from torch import nn

from vitlessons.data import cueworld
from vitlessons.layers import cka_table, layer_representations
from vitlessons.metrics import cka_matrix
from vitlessons.models import load_model
from vitlessons.models.wrapper import Classifier, Preprocessing

LABELS = list(cueworld.CLASS_NAMES)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return cueworld.make_split("aligned", 10, seed=0).images


def test_a_vit_gives_every_token_of_every_block(images) -> None:
    vit = load_model("lab_vit", labels=LABELS)
    layers = layer_representations(vit, images, batch_size=4)
    assert list(layers) == ["block 0", "block 1", "block 2", "block 3"]
    assert all(layer.shape == (10, 65 * 128) for layer in layers.values())  # the class token and 64 patches
    tokens = vit.block_tokens(images)
    assert torch.allclose(layers["block 3"].reshape(10, 65, 128)[:, 0], tokens.cls[-1], atol=1e-5)
    assert torch.allclose(layers["block 3"].reshape(10, 65, 128)[:, 1:], tokens.patches[-1], atol=1e-5)


def test_a_cnn_gives_its_stem_and_stages(images) -> None:
    cnn = load_model("lab_cnn", labels=LABELS)
    layers = layer_representations(cnn, images)
    assert list(layers) == ["stem", "stage 1", "stage 2", "stage 3", "stage 4"]
    assert [layer.shape[1] for layer in layers.values()] == [64 * 32 * 32, 32 * 16 * 16, 64 * 8 * 8, 128 * 4 * 4, 256 * 2 * 2]
    matrix = cka_matrix(list(layers.values()), list(layers.values()))
    assert torch.allclose(matrix.diagonal(), torch.ones(5, dtype=matrix.dtype))
    table = cka_table(layers, {"stem": layers["stem"]})
    assert list(table.index) == list(layers) and list(table.columns) == ["stem"]
    assert table["stem"].tolist() == pytest.approx(matrix[:, 0].tolist())


def test_pooled_layers_are_what_a_probe_reads(images) -> None:
    vit, cnn = load_model("lab_vit", labels=LABELS), load_model("lab_cnn", labels=LABELS)
    tokens = layer_representations(vit, images, pooled=True)
    assert torch.allclose(torch.stack(list(tokens.values())), vit.block_tokens(images).cls, atol=1e-5)
    maps, pooled = layer_representations(cnn, images), layer_representations(cnn, images, pooled=True)
    assert [layer.shape[1] for layer in pooled.values()] == [64, 32, 64, 128, 256]
    stage = maps["stage 4"].reshape(10, 256, 2 * 2)
    assert torch.allclose(pooled["stage 4"], stage.mean(-1), atol=1e-5)


def test_a_network_without_layers_to_read_is_refused(images) -> None:
    plain = Classifier("plain", nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 6)),
                       Preprocessing(64, (0.5,) * 3, (0.5,) * 3, resize=False), LABELS)
    with pytest.raises(TypeError, match="forward_intermediates"):
        layer_representations(plain, images)
