"""Models by short name: ImageNet CNNs and ViTs from timm, CLIP from open_clip, and the small lab models."""

from vitlessons.models.hub import WeightsUnavailable
from vitlessons.models.registry import REGISTRY, ModelSpec, get_spec, list_models, load_model, register, weights_available
from vitlessons.models.wrapper import Backbone, BlockTokens, Classifier, Model, Preprocessing

__all__ = [
    "REGISTRY", "Backbone", "BlockTokens", "Classifier", "Model", "ModelSpec", "Preprocessing", "WeightsUnavailable",
    "get_spec", "list_models", "load_model", "register", "weights_available",
]
