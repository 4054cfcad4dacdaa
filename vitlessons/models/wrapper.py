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
from dataclasses import dataclass

import torch
from torch import Tensor, nn

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


class Classifier(nn.Module):
    """A network plus its preprocessing and label names: images in [0, 1] in, logits out."""

    def __init__(self, name: str, net: nn.Module, preprocessing: Preprocessing, labels: list[str]):
        super().__init__()
        self.name = name
        self.net = net
        self.preprocessing = preprocessing
        self.labels = labels

    def forward(self, images: Tensor) -> Tensor:
        return self.net(self.preprocessing(check_images(images)))

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 64) -> Tensor:
        """Softmax probabilities in eval mode, in batches so large sets fit in memory."""
        self.eval()
        device = next(self.parameters()).device
        parts = [self(images[i:i + batch_size].to(device)).softmax(-1).cpu() for i in range(0, len(images), batch_size)]
        return torch.cat(parts)

    def top_labels(self, images: Tensor, k: int = 3) -> list[list[tuple[str, float]]]:
        """The k most probable label names per image, for printing next to a figure."""
        top = self.predict(images).topk(k, dim=-1)
        return [[(self.labels[i], round(p, 3)) for p, i in zip(ps.tolist(), ix.tolist())] for ps, ix in zip(top.values, top.indices)]
