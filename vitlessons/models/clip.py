"""CLIP as an image classifier: zero-shot weights from class-name prompts (Radford et al., 2021).

``zero_shot_classifier`` makes one from any CLIP-like model (``encode_image``, ``encode_text``, ``logit_scale``, as
open_clip's have), any tokenizer and any prompts: OpenAI's CLIP over ImageNet's classes, or the lab CLIP chapter 4
trains (``LabClip``) over the cue world's shapes or textures.

Encoding the prompts is the slow part on a CPU (ImageNet's 1000 classes x 80 templates take over an
hour on two cores), so each class's averaged text embedding is cached on disk as soon as it is computed.
A head over some classes reuses what a head over others computed, and an interrupted build resumes.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from vitlessons.config import cache_dir
from vitlessons.models.wrapper import Classifier, Model, Preprocessing
from vitlessons.objectives.contrastive import Contrastive
from vitlessons.storage import save_atomically

Template = str | Callable[[str], str]  # "a photo of a {}." or a function of the class name

CLASSES_PER_SAVE = 16  # how much work an interruption can lose


class ZeroShotClassifier(nn.Module):
    """Image embeddings scored against one averaged text embedding per class, as in the CLIP paper."""

    def __init__(self, clip: nn.Module, class_weights: Tensor):
        super().__init__()
        self.clip = clip
        self.register_buffer("class_weights", class_weights)  # (embed_dim, num_classes), unit columns
        self.logit_scale = float(clip.logit_scale.exp().item())

    def forward(self, images: Tensor) -> Tensor:
        features = self.clip.encode_image(images, normalize=True)
        return self.logit_scale * features @ self.class_weights

    def image_trunk(self) -> nn.Module:
        return self.clip.visual


class LabClip(nn.Module):
    """A course image model with the contrastive objective it was trained with, behind open_clip's CLIP interface.

    open_clip's tools (``build_zero_shot_classifier``) and ``ZeroShotClassifier`` then treat the lab CLIP as they
    treat OpenAI's: ``encode_image`` takes preprocessed images, and ``logit_scale`` is the log of the learned scale,
    as it was when this wrapper was made (a snapshot: the wrapper is for evaluation, not training).
    """

    def __init__(self, model: Model, objective: Contrastive):
        super().__init__()
        if objective.image_projection is None:
            raise ValueError("the objective has no image projection yet: train or restore it with the model first")
        self.model, self.text, self.image_projection = model, objective.text, objective.image_projection
        self.visual = model.trunk
        self.register_buffer("logit_scale", objective.logit_scale().detach().log())

    def encode_image(self, images: Tensor, normalize: bool = False) -> Tensor:
        features = self.image_projection(self.model.pooled(images))
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens: Tensor, normalize: bool = False) -> Tensor:
        features = self.text(tokens)
        return F.normalize(features, dim=-1) if normalize else features


def zero_shot_classifier(name: str, clip: nn.Module, tokenizer: Callable[[list[str]], Tensor], classnames: Sequence[str],
                         templates: Sequence[Template], preprocessing: Preprocessing) -> Classifier:
    """A classifier over any class names, from prompts alone: each class is the renormalised mean of its prompts' unit
    text embeddings, and an image's logits are its scaled cosine similarity to each."""
    device = next(clip.parameters()).device
    weights = open_clip.build_zero_shot_classifier(clip, tokenizer=tokenizer, classnames=list(classnames),
                                                   templates=list(templates), device=device)
    return Classifier(name, ZeroShotClassifier(clip, weights), preprocessing, list(classnames)).eval()


def head_cache(model_name: str, weights_tag: str, templates: Sequence) -> Path:
    """The file holding the class embeddings of one model, weights and template set."""
    key = hashlib.sha256(repr((model_name, weights_tag, [_text(t) for t in templates])).encode()).hexdigest()[:16]
    return Path(cache_dir()) / "zeroshot" / f"{model_name}-{key}.pt"


def cached_class_embeddings(path: Path) -> dict[str, Tensor]:
    """The class embeddings stored so far; a damaged file is reported and treated as empty, to be rebuilt."""
    if not path.exists():
        return {}
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if not (isinstance(stored, dict) and all(isinstance(v, Tensor) and v.ndim == 1 for v in stored.values())):
            raise ValueError("not a mapping of class names to embeddings")
        return stored
    except Exception as error:  # a truncated or foreign file: rebuild rather than fail or mislead
        warnings.warn(f"zero-shot cache {path} is damaged ({error}); rebuilding it", stacklevel=2)
        return {}


def missing_classes(model_name: str, weights_tag: str, classnames: Sequence[str], templates: Sequence) -> list[str]:
    """The classes whose prompts are not encoded yet, so a caller can tell what building a head costs."""
    return _not_in(cached_class_embeddings(head_cache(model_name, weights_tag, templates)), classnames)


def _not_in(known: dict[str, Tensor], classnames: Sequence[str]) -> list[str]:
    """The distinct class names that ``known`` lacks, in order."""
    return [name for name in dict.fromkeys(classnames) if name not in known]


def class_weights(clip: nn.Module, model_name: str, classnames: Sequence[str], templates: Sequence, weights_tag: str) -> Tensor:
    """Text embeddings of every class averaged over prompt templates: (embed_dim, classes), from the cache where it has them."""
    path = head_cache(model_name, weights_tag, templates)
    known = cached_class_embeddings(path)
    missing = _not_in(known, classnames)
    if missing:
        tokenizer = open_clip.get_tokenizer(model_name)
        device = next(clip.parameters()).device
        with tqdm(total=len(missing), desc=f"{model_name}: encoding {len(templates)} prompts per class", unit="class") as bar:
            for start in range(0, len(missing), CLASSES_PER_SAVE):
                chunk = missing[start:start + CLASSES_PER_SAVE]
                weights = open_clip.build_zero_shot_classifier(
                    clip, tokenizer=tokenizer, classnames=chunk, templates=templates, device=device, use_tqdm=False)
                known.update(zip(chunk, weights.T.cpu()))
                save_atomically({name: value.clone() for name, value in known.items()}, path)
                bar.update(len(chunk))
    return torch.stack([known[name] for name in classnames], dim=1)


def _text(template) -> str:
    """A template as text, whether it is a format string or a function of the class name."""
    return template if isinstance(template, str) else template("{}")
