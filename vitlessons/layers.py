"""What every layer of a network represents, so that two networks can be compared layer by layer (chapter 6).

timm gives every model the same door into its layers, ``forward_intermediates``: a ViT's tokens after each block,
a ResNet's feature map after its stem and after each stage. Raghu et al. (NeurIPS 2021) compare such layers by
linear CKA (``metrics.cka_matrix``), each as one vector per image: all its tokens, or its whole feature map.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import Tensor

from vitlessons.metrics import cka_matrix
from vitlessons.models.wrapper import Model
from vitlessons.tensors import check_images


@torch.no_grad()
def layer_representations(model: Model, images: Tensor, batch_size: int = 32, pooled: bool = False) -> dict[str, Tensor]:
    """Each layer's output as (B, features) on the CPU, named "block 0", ... for a ViT and "stem", "stage 1", ... else.

    ``pooled`` keeps one vector per image as a linear probe reads it: a ViT's class token (its mean token if it has
    none), a CNN's feature map averaged over space. Otherwise every token or every position is kept, as CKA compares.
    """
    check_images(images)
    trunk = model.trunk
    if not hasattr(trunk, "forward_intermediates"):
        raise TypeError(f"{model.name} is not a timm network with forward_intermediates; its layers cannot be read")
    model.eval()
    device = next(model.parameters()).device
    is_vit = hasattr(trunk, "blocks") and hasattr(trunk, "patch_embed")
    parts: list[list[Tensor]] = []
    for start in range(0, len(images), batch_size):
        x = model.preprocessing(images[start:start + batch_size].to(device))
        if is_vit:
            outputs = trunk.forward_intermediates(x, intermediates_only=True, return_prefix_tokens=True, output_fmt="NLC")
            if pooled:
                layers = [prefix[:, 0] if prefix.shape[1] else tokens.mean(1) for tokens, prefix in outputs]
            else:
                layers = [torch.cat([prefix, tokens], dim=1) for tokens, prefix in outputs]
        else:
            layers = trunk.forward_intermediates(x, intermediates_only=True)
            layers = [layer.mean((-2, -1)) for layer in layers] if pooled else layers
        parts.append([layer.flatten(1).float().cpu() for layer in layers])
    names = [f"block {i}" for i in range(len(parts[0]))] if is_vit else \
        ["stem", *(f"stage {i}" for i in range(1, len(parts[0])))]
    return {name: torch.cat([batch[i] for batch in parts]) for i, name in enumerate(names)}


def cka_table(first: dict[str, Tensor], second: dict[str, Tensor]) -> pd.DataFrame:
    """Linear CKA between every layer of ``first`` (rows) and of ``second`` (columns), labelled by layer name."""
    matrix = cka_matrix(list(first.values()), list(second.values()))
    return pd.DataFrame(matrix.numpy(), index=list(first), columns=list(second))
