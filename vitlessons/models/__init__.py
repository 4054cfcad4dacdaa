"""Models by short name: ImageNet CNNs and ViTs from timm, CLIP from open_clip, and the small lab models."""

from vitlessons.models.registry import (
    REGISTRY, ModelSpec, WeightsUnavailable, get_spec, list_models, load_model, weights_available,
)
from vitlessons.models.wrapper import Classifier, Preprocessing

__all__ = [
    "REGISTRY", "Classifier", "ModelSpec", "Preprocessing", "WeightsUnavailable",
    "get_spec", "list_models", "load_model", "weights_available",
]
