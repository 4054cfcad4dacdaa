"""Models that take course images (float (B, 3, H, W) in [0, 1]) and do their own preprocessing.

A ``Classifier`` gives logits over its labels; a ``Backbone`` is the same network without its head and
gives features. Both give the tokens of every transformer block (``block_tokens``).

Normalisation belongs to the model, not to the data: each wrapped network carries the mean, std,
input size, crop and interpolation it was trained with, as resolved from timm's or open_clip's
pretrained configuration, or, for weights from elsewhere, from how those weights were trained.

Images already at the model's input size go in as they are, uncropped: that is model-vs-human's
protocol for the 224 px cue-conflict stimuli (its ``datasets/base.py`` and ``dataloaders.py``
resize and crop only datasets whose images have another size). Images of any other size, such as
photos, get the model's ImageNet evaluation transform.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from vitlessons.tensors import centre_crop, check_images, check_layout, resize_short_side


@dataclass(frozen=True)
class Preprocessing:
    """How a network expects its input: normalise, after resizing the short side to size / crop_pct and
    centre-cropping when the image is not already size x size."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    resize: bool = True  # False for lab models, which see the cue world at its own size

    def __call__(self, images: Tensor) -> Tensor:
        if self.resize and images.shape[-2:] != (self.size, self.size):
            images = resize_short_side(images, math.floor(self.size / self.crop_pct), self.interpolation)
            images = centre_crop(images, self.size)
        mean = images.new_tensor(self.mean)[:, None, None]
        std = images.new_tensor(self.std)[:, None, None]
        return (images - mean) / std


class SelectClasses(nn.Module):
    """A classifier's logits for some of its classes, in the given order: a softmax over them keeps their ratios."""

    def __init__(self, net: nn.Module, classes: Sequence[int]):
        super().__init__()
        self.net = net
        self.register_buffer("classes", torch.as_tensor(list(classes), dtype=torch.long), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images).index_select(-1, self.classes)

    def image_trunk(self) -> nn.Module:
        return self.net


@dataclass
class BlockTokens:
    """What each transformer block outputs: the class token and the patch tokens, block by block."""

    cls: Tensor | None  # (blocks, B, D), None for a ViT without a class token
    patches: Tensor  # (blocks, B, patches, D), patches in row-major order over the grid
    grid: tuple[int, int]  # patches per column and per row


class Model(nn.Module):
    """What classifiers and backbones share: a name, a network and its preprocessing.

    ``trunk`` is the image network inside ``net`` (a head that wraps one says so with ``image_trunk()``).

    ``forward`` checks only the input's shape and dtype, so it stays cheap inside attack loops; the public
    methods (``predict``, ``features``, ``block_tokens``) also check the value range, once per call.
    """

    def __init__(self, name: str, net: nn.Module, preprocessing: Preprocessing):
        super().__init__()
        self.name = name
        self.net = net
        self.preprocessing = preprocessing

    @property
    def trunk(self) -> nn.Module:
        """The image network that features and block tokens come from."""
        return self.net.image_trunk() if hasattr(self.net, "image_trunk") else self.net

    def _features(self, images: Tensor) -> Tensor:
        """Pooled features before any classifier, for timm networks and CLIP's image tower alike."""
        return self.pooled(self.preprocessing(images))

    def pooled(self, x: Tensor) -> Tensor:
        """The pooled features of images already preprocessed (what a CLIP-style ``encode_image`` receives)."""
        if hasattr(self.trunk, "forward_head"):
            return self.trunk.forward_head(self.trunk.forward_features(x), pre_logits=True)
        return self.trunk(x)

    def features(self, images: Tensor) -> Tensor:
        """One feature vector per image (B, D): the input of the classifier head."""
        return self._features(check_images(images))

    def block_tokens(self, images: Tensor) -> BlockTokens:
        """The class token and patch tokens after every block of a ViT, as timm's ``forward_intermediates`` gives them."""
        check_images(images)
        if not hasattr(self.trunk, "patch_embed") or not hasattr(self.trunk, "forward_intermediates"):
            raise TypeError(f"{self.name} is not a timm vision transformer; it has no patch tokens per block")
        outputs = self.trunk.forward_intermediates(self.preprocessing(images), return_prefix_tokens=True,
                                                   output_fmt="NLC", intermediates_only=True)
        patches = torch.stack([spatial for spatial, _ in outputs])
        cls = torch.stack([prefix[:, 0] for _, prefix in outputs]) if getattr(self.trunk, "cls_token", None) is not None else None
        return BlockTokens(cls, patches, tuple(self.trunk.patch_embed.grid_size))


class Backbone(Model):
    """A network without its head: images in [0, 1] in, features out."""

    def forward(self, images: Tensor) -> Tensor:
        return self._features(check_layout(images))


class Classifier(Model):
    """A network plus its preprocessing and label names: images in [0, 1] in, logits out.

    ``net`` maps preprocessed images to logits. ``imagenet_classes`` gives the ImageNet index of each output for ImageNet models (all 1000,
    or the subset asked for), and is None for other label spaces (lab models, CLIP given its own labels).
    """

    def __init__(self, name: str, net: nn.Module, preprocessing: Preprocessing, labels: list[str],
                 imagenet_classes: tuple[int, ...] | None = None):
        super().__init__(name, net, preprocessing)
        if imagenet_classes is not None and len(imagenet_classes) != len(labels):
            raise ValueError(f"{name}: {len(labels)} labels for {len(imagenet_classes)} ImageNet classes")
        self.labels = labels
        self.imagenet_classes = imagenet_classes

    def forward(self, images: Tensor) -> Tensor:
        return self.net(self.preprocessing(check_layout(images)))

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 64, progress: str | None = None) -> Tensor:
        """Softmax probabilities in eval mode, in batches so large sets fit in memory; ``progress`` labels a bar."""
        check_images(images)
        self.eval()
        device = next(self.parameters()).device
        starts = range(0, len(images), batch_size)
        if progress is not None:
            starts = tqdm(starts, desc=progress, unit="batch")
        parts = [self(images[i:i + batch_size].to(device)).softmax(-1).cpu() for i in starts]
        return torch.cat(parts)

    def top_labels(self, images: Tensor, k: int = 3) -> list[list[tuple[str, float]]]:
        """The k most probable label names per image, for printing next to a figure."""
        top = self.predict(images).topk(k, dim=-1)
        return [[(self.labels[i], round(p, 3)) for p, i in zip(ps.tolist(), ix.tolist())] for ps, ix in zip(top.values, top.indices)]
