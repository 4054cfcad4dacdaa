"""A ViT with two output tokens, read one token at a time: the class token and the shape token (chapter 6).

timm's ``VisionTransformerDistilled`` (DeiT) carries a second prefix token with its own head; its ``forward``
averages the two heads. Naseer et al. (2021) train that token to match a shape-biased teacher and call it the
*shape token*. To ask what each token has learnt, ``token_heads`` gives one classifier per token, each through its
own head, sharing the same network.
"""

from __future__ import annotations

from timm.models.deit import VisionTransformerDistilled
from torch import Tensor, nn

from vitlessons.models.wrapper import Classifier
from vitlessons.objectives.distillation import two_token_logits

TOKENS = {"class token": 0, "shape token": 1}


class TokenHead(nn.Module):
    """The network with only one token's head: its logits are that token's answer."""

    def __init__(self, net: nn.Module, token: int):
        super().__init__()
        self.net, self.token = net, token

    def forward(self, x: Tensor) -> Tensor:
        return two_token_logits(self.net, x)[self.token]

    def image_trunk(self) -> nn.Module:
        return self.net


def token_heads(model: Classifier) -> dict[str, Classifier]:
    """One classifier per token of a two-token ViT, named after the token, sharing the model's weights."""
    if not isinstance(model.net, VisionTransformerDistilled):
        raise TypeError(f"{model.name} has no shape token (train lab_vit with shape_token=True)")
    return {name: Classifier(f"{model.name} ({name})", TokenHead(model.net, index), model.preprocessing, model.labels)
            for name, index in TOKENS.items()}
