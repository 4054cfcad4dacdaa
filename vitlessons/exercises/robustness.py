"""Chapter 5's checkers: mCE by hand with AlexNet's normalisation, and a ViT's forward pass without one block."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor

from vitlessons.exercises.common import ExerciseFailed, passed, run
from vitlessons.metrics import ALEXNET_ERRORS, mce
from vitlessons.models.surgery import removed

# Exercise 5.1: mCE by hand ------------------------------------------------------------------

Errors = Mapping[str, Sequence[float]]


def _errors(seed: int) -> dict[str, list[float]]:
    """Per-severity errors that grow with severity, as real ones do, for every ImageNet-C corruption."""
    generator = torch.Generator().manual_seed(seed)
    return {name: sorted((0.2 + 0.7 * torch.rand(5, generator=generator)).tolist()) for name in ALEXNET_ERRORS}


def check_mce(mce_by_hand: Callable[[Errors, Mapping[str, float]], float]) -> None:
    """Exercise 5.1: mCE in %, each corruption's mean error over AlexNet's, averaged over the 15 corruptions."""
    alexnet_itself = {name: [error] * 5 for name, error in ALEXNET_ERRORS.items()}
    answer = run(mce_by_hand, alexnet_itself, dict(ALEXNET_ERRORS))
    if not isinstance(answer, (int, float)) or isinstance(answer, bool):
        raise ExerciseFailed(f"return one number, the mCE in %, got {type(answer).__name__}")
    if abs(answer - 1.0) < 1e-6:
        raise ExerciseFailed("AlexNet's own errors give 1.0: report the mCE in percent (AlexNet scores 100)")
    if abs(answer - 100.0) > 1e-6:
        raise ExerciseFailed(f"AlexNet's own errors must give an mCE of 100, got {answer:.4g}: divide each "
                             "corruption's mean error by AlexNet's error on it")
    errors = _errors(seed=0)
    answer, expected = run(mce_by_hand, errors, dict(ALEXNET_ERRORS)), mce(errors)
    if abs(answer - expected) > 1e-6:
        raise ExerciseFailed(f"expected mCE {expected:.4f}, got {answer:.4f}: average each corruption's five "
                             "severities first, then divide by AlexNet's, then average over corruptions")
    passed(f"mCE {expected:.2f} for errors between 20% and 90% (AlexNet scores 100)")


# Exercise 5.2: a ViT without one block ------------------------------------------------------

def _tiny_vit() -> VisionTransformer:
    """A 4-block ViT on 32 px images with random but fixed weights: every block changes the output."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return VisionTransformer(img_size=32, patch_size=8, num_classes=5, embed_dim=32, depth=4, num_heads=2).eval()


def check_forward_without_block(forward_without_block: Callable[[VisionTransformer, Tensor, int], Tensor]) -> None:
    """Exercise 5.2: the logits of a timm ViT whose block ``index`` is skipped, the rest computed as usual."""
    reference, vit = _tiny_vit(), _tiny_vit()
    inputs = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = reference(inputs)
        for index in range(len(reference.blocks)):
            with removed(reference, index):
                expected = reference(inputs)
            answer = run(forward_without_block, vit, inputs, index)
            if _changed(vit, reference, inputs, full):
                raise ExerciseFailed("the model itself was changed: compute the forward pass without editing vit "
                                     "(no deleting or replacing blocks, no writing into weights)")
            if not isinstance(answer, Tensor) or answer.shape != expected.shape:
                raise ExerciseFailed(f"return the logits, shape {tuple(expected.shape)}")
            if torch.allclose(answer, full, atol=1e-5):
                raise ExerciseFailed(f"removing block {index} changed nothing: run every block except vit.blocks[{index}]")
            if not torch.allclose(answer, expected, atol=1e-5):
                raise ExerciseFailed(f"with block {index} removed the logits differ from the reference by "
                                     f"{(answer - expected).abs().max():.3g}: embed the patches, add positions and the "
                                     "class token (vit._pos_embed), run the other blocks, then vit.norm and vit.forward_head")
    passed("each of the 4 blocks removed in turn gives the reference logits, and the model is untouched")


def _changed(vit: VisionTransformer, reference: VisionTransformer, inputs: Tensor, full: Tensor) -> bool:
    """Whether the student's call altered the model: its parameters, its blocks or what it computes."""
    mine, theirs = vit.state_dict(), reference.state_dict()
    if mine.keys() != theirs.keys() or any(not torch.equal(mine[k], theirs[k]) for k in theirs):
        return True
    return len(vit.blocks) != len(reference.blocks) or not torch.equal(vit(inputs), full)
