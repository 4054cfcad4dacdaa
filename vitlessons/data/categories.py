"""The 16 entry-level categories of Geirhos et al. (2019) and their ImageNet class indices."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

CATEGORIES = (
    "airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat",
    "chair", "clock", "dog", "elephant", "keyboard", "knife", "oven", "truck",
)

NUM_IMAGENET_CLASSES = 1000

# ImageNet-1k class indices of each category, carried over as data from model-vs-human
# (Geirhos et al., NeurIPS 2021), file modelvshuman/helper/human_categories.py, class
# HumanCategories, attributes `<category>_indices`:
# https://github.com/bethgelab/model-vs-human/blob/master/modelvshuman/helper/human_categories.py
# Of the 1000 classes only these 207 belong to one of the 16 categories; the rest are ignored.
IMAGENET_INDICES: dict[str, tuple[int, ...]] = {
    "airplane": (404,),
    "bear": (294, 295, 296, 297),
    "bicycle": (444, 671),
    "bird": (8, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 80, 81, 82, 83, 87, 88,
             89, 90, 91, 92, 93, 94, 95, 96, 98, 99, 100, 127, 128, 129, 130, 131, 132, 133,
             135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145),
    "boat": (472, 554, 625, 814, 914),
    "bottle": (440, 720, 737, 898, 899, 901, 907),
    "car": (436, 511, 817),
    "cat": (281, 282, 283, 284, 285, 286),
    "chair": (423, 559, 765, 857),
    "clock": (409, 530, 892),
    "dog": (152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167,
            168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183,
            184, 185, 186, 187, 188, 189, 190, 191, 193, 194, 195, 196, 197, 198, 199, 200,
            201, 202, 203, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217,
            218, 219, 220, 221, 222, 223, 224, 225, 226, 228, 229, 230, 231, 232, 233, 234,
            235, 236, 237, 238, 239, 240, 241, 243, 244, 245, 246, 247, 248, 249, 250, 252,
            253, 254, 255, 256, 257, 259, 261, 262, 263, 265, 266, 267, 268),
    "elephant": (385, 386),
    "keyboard": (508, 878),
    "knife": (499,),
    "oven": (766,),
    "truck": (555, 569, 656, 675, 717, 734, 864, 867),
}

# The ImageNet classes that belong to one of the 16 categories, in index order. The 16-category decision needs
# only their probabilities: restricted to them, a softmax divides every probability of an image by the same
# number, which leaves the arg-max of the category means unchanged. So a classifier whose cost grows with the
# number of classes (CLIP's zero-shot head) may score just these.
SIXTEEN_CLASS_INDICES: tuple[int, ...] = tuple(sorted(i for indices in IMAGENET_INDICES.values() for i in indices))

# Tolerance on row sums: loose enough for float16/bfloat16 softmax, tight enough to catch logits.
_ROW_SUM_TOLERANCE = 1e-2


def _check_probabilities(probabilities: Tensor, num_classes: int = NUM_IMAGENET_CLASSES) -> Tensor:
    """Fail early on logits or wrong shapes, which would otherwise give plausible-looking nonsense."""
    if not isinstance(probabilities, Tensor):
        raise TypeError(
            f"expected a torch.Tensor of softmax probabilities with shape (N, {num_classes}), "
            f"got {type(probabilities).__name__}"
        )
    if probabilities.ndim != 2 or probabilities.shape[1] != num_classes:
        hint = " (for one image use probabilities.unsqueeze(0))" if probabilities.ndim == 1 else ""
        raise ValueError(
            f"expected probabilities of shape (N, {num_classes}), "
            f"got shape {tuple(probabilities.shape)}{hint}"
        )
    if not probabilities.is_floating_point():
        raise TypeError(f"expected floating-point probabilities, got dtype {probabilities.dtype}")
    values = probabilities.detach().float()
    if not torch.isfinite(values).all():
        raise ValueError("probabilities contain NaN or infinity")
    if (values < 0).any():
        raise ValueError(
            f"probabilities must be non-negative, got a minimum of {values.min().item():.4g}; "
            "these look like logits: apply .softmax(dim=1) first"
        )
    sums = values.sum(dim=1)
    worst = (sums - 1).abs().max().item() if len(sums) else 0.0
    if worst > _ROW_SUM_TOLERANCE:
        raise ValueError(
            f"each row of probabilities must sum to 1, but a row sums to "
            f"{sums[(sums - 1).abs().argmax()].item():.4g}; apply .softmax(dim=1) to logits first"
        )
    return probabilities


def _columns(classes: Sequence[int] | None) -> dict[int, int]:
    """ImageNet index -> column of the probabilities, checked to hold every class of the 16 categories."""
    if classes is None:
        return {i: i for i in range(NUM_IMAGENET_CLASSES)}
    columns = {int(index): column for column, index in enumerate(classes)}
    missing = sorted(set(SIXTEEN_CLASS_INDICES) - set(columns))
    if missing:
        raise ValueError(f"the 16-category decision needs the probabilities of ImageNet classes {missing[:5]}"
                         f"{'...' if len(missing) > 5 else ''} ({len(missing)} missing from classes)")
    return columns


def imagenet_to_16(probabilities: Tensor, classes: Sequence[int] | None = None) -> Tensor:
    """Score the 16 categories as the mean probability of their ImageNet classes (model-vs-human's rule).

    The mean, not the sum, keeps categories with many ImageNet classes (dog: 109) from winning
    by sheer count over categories with a single class (knife, oven, airplane). ``classes`` gives the
    ImageNet index of each column when the probabilities cover a subset (such as ``SIXTEEN_CLASS_INDICES``).
    Returns an (N, 16) tensor whose columns follow ``CATEGORIES``.
    """
    columns = _columns(classes)
    probabilities = _check_probabilities(probabilities, len(columns))
    scores = [probabilities[:, [columns[i] for i in IMAGENET_INDICES[name]]].mean(dim=1) for name in CATEGORIES]
    return torch.stack(scores, dim=1)


def decide_16(probabilities: Tensor, classes: Sequence[int] | None = None) -> Tensor:
    """The model's 16-class decision: index into ``CATEGORIES`` of the highest category score."""
    return imagenet_to_16(probabilities, classes).argmax(dim=1)
