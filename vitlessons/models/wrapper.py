"""A model that takes course images (float (B, 3, H, W) in [0, 1]) and does its own preprocessing.

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

from vitlessons.tensors import centre_crop, check_images, resize_short_side


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


class Classifier(nn.Module):
    """A network plus its preprocessing and label names: images in [0, 1] in, logits out.

    ``imagenet_classes`` gives the ImageNet index of each output for ImageNet models (all 1000, or the
    subset asked for), and is None for other label spaces (lab models, CLIP given its own labels).
    """

    def __init__(self, name: str, net: nn.Module, preprocessing: Preprocessing, labels: list[str],
                 imagenet_classes: tuple[int, ...] | None = None):
        super().__init__()
        if imagenet_classes is not None and len(imagenet_classes) != len(labels):
            raise ValueError(f"{name}: {len(labels)} labels for {len(imagenet_classes)} ImageNet classes")
        self.name = name
        self.net = net
        self.preprocessing = preprocessing
        self.labels = labels
        self.imagenet_classes = imagenet_classes

    def forward(self, images: Tensor) -> Tensor:
        return self.net(self.preprocessing(check_images(images)))

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 64, progress: str | None = None) -> Tensor:
        """Softmax probabilities in eval mode, in batches so large sets fit in memory; ``progress`` labels a bar."""
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
