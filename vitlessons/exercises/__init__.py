"""Checkers for the exercises, one module per chapter: each says "passed", or says exactly what is wrong.

A checker takes the student's function, runs it on cases whose answers we know, and raises
``ExerciseFailed`` with a specific hint when it disagrees. A stub that still raises
``NotImplementedError`` is reported as "not done yet", not as a crash.
"""

from vitlessons.exercises.clip import check_clip_loss, check_zero_shot_weights
from vitlessons.exercises.common import ExerciseFailed
from vitlessons.exercises.dino import check_dino_loss, check_mass_mask
from vitlessons.exercises.intriguing import check_linear_cka, check_random_patch_drop
from vitlessons.exercises.introduction import check_fgsm, check_mean_attention_distance
from vitlessons.exercises.robustness import check_forward_without_block, check_mce
from vitlessons.exercises.rotation import check_auroc, check_rotated_batch
from vitlessons.exercises.texture_shape import check_decision_16, check_shape_bias, check_shuffle_tiles

__all__ = ["ExerciseFailed", "check_auroc", "check_clip_loss", "check_decision_16", "check_dino_loss", "check_fgsm",
           "check_forward_without_block", "check_linear_cka", "check_mass_mask", "check_mce", "check_mean_attention_distance",
           "check_random_patch_drop", "check_rotated_batch", "check_shape_bias", "check_shuffle_tiles", "check_zero_shot_weights"]
