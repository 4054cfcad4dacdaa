"""Perturbations of the course as batched PyTorch operations on (B, 3, H, W) images in [0, 1], on any device.

``corrupt(images, "fog", 3)`` applies one ImageNet-C corruption; ``list_corruptions()`` names them all;
``sweep(images)`` yields every (corruption, severity) pair. The course's other probes: ``patch_drop`` and
``shuffle_patches`` (Naseer et al., 2021), ``low_pass`` / ``high_pass`` in the Fourier spectrum, ``rotate``,
``turn`` and ``shift`` (spatial robustness), ``greyscale``, and the shape-only views ``silhouette`` and
``edges`` (Geirhos et al., 2019).
"""

from vitlessons.perturb.frequency import frequency_split, high_pass, low_pass
from vitlessons.perturb.patches import patch_drop, shuffle_patches
from vitlessons.perturb.registry import (
    CORRUPTIONS, EXTRA, IMAGENET_C, SEVERITIES, corrupt, get_corruption, list_corruptions, sweep,
)
from vitlessons.perturb.spatial import shift, turn
from vitlessons.perturb.views import edges, greyscale, rotate, silhouette

__all__ = [
    "CORRUPTIONS", "EXTRA", "IMAGENET_C", "SEVERITIES", "corrupt", "get_corruption", "list_corruptions", "sweep",
    "patch_drop", "shuffle_patches", "frequency_split", "low_pass", "high_pass",
    "rotate", "greyscale", "silhouette", "edges", "shift", "turn",
]
