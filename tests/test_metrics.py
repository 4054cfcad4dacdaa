"""Shape bias, accuracy and the 1000 -> 16 class mapping, checked on hand-worked cases."""

import math

import pytest
import torch

from vitlessons.data.categories import CATEGORIES, IMAGENET_INDICES, SIXTEEN_CLASS_INDICES, decide_16, imagenet_to_16
from vitlessons.metrics import ShapeBias, accuracy, shape_bias

# Counts of ImageNet classes per category in model-vs-human's human_categories.py.
PUBLISHED_COUNTS = {
    "airplane": 1, "bear": 4, "bicycle": 2, "bird": 49, "boat": 5, "bottle": 7, "car": 3,
    "cat": 6, "chair": 4, "clock": 3, "dog": 109, "elephant": 2, "keyboard": 2, "knife": 1,
    "oven": 1, "truck": 8,
}


def one_hot_probabilities(*indices: int) -> torch.Tensor:
    """Rows of probabilities with all mass on one ImageNet class each."""
    probabilities = torch.zeros(len(indices), 1000)
    probabilities[torch.arange(len(indices)), torch.tensor(indices)] = 1.0
    return probabilities


# ----- index lists -----------------------------------------------------------------------

def test_index_lists_cover_the_16_categories_in_order():
    assert tuple(IMAGENET_INDICES) == CATEGORIES
    assert len(CATEGORIES) == 16
    assert list(CATEGORIES) == sorted(CATEGORIES)


def test_index_lists_have_published_counts():
    assert {name: len(ids) for name, ids in IMAGENET_INDICES.items()} == PUBLISHED_COUNTS
    assert sum(PUBLISHED_COUNTS.values()) == 207


def test_index_lists_are_disjoint_sorted_and_in_range():
    everything = [i for ids in IMAGENET_INDICES.values() for i in ids]
    assert len(everything) == len(set(everything))
    assert all(0 <= i <= 999 for i in everything)
    assert all(list(ids) == sorted(ids) for ids in IMAGENET_INDICES.values())


def test_known_anchor_indices():
    # 499 cleaver, 404 airliner, 766 rotisserie, 281 tabby cat, 385 Indian elephant.
    assert IMAGENET_INDICES["knife"] == (499,)
    assert IMAGENET_INDICES["airplane"] == (404,)
    assert IMAGENET_INDICES["oven"] == (766,)
    assert 281 in IMAGENET_INDICES["cat"]
    assert IMAGENET_INDICES["elephant"] == (385, 386)


# ----- mapping ---------------------------------------------------------------------------

def test_all_mass_on_knife_index_decides_knife():
    scores = imagenet_to_16(one_hot_probabilities(499))
    assert scores.shape == (1, 16)
    assert scores[0, CATEGORIES.index("knife")] == pytest.approx(1.0)
    assert decide_16(one_hot_probabilities(499)).tolist() == [CATEGORIES.index("knife")]


def test_every_category_wins_with_mass_on_its_first_index():
    rows = one_hot_probabilities(*(ids[0] for ids in IMAGENET_INDICES.values()))
    assert decide_16(rows).tolist() == list(range(16))


def test_scores_are_means_over_indices():
    probabilities = one_hot_probabilities(294)  # a bear class; bear has 4 classes
    assert imagenet_to_16(probabilities)[0, CATEGORIES.index("bear")] == pytest.approx(0.25)


def test_mean_rule_not_sum_rule():
    # 0.5 spread evenly over the 109 dog classes, 0.2 on the single knife class, 0.3 elsewhere.
    probabilities = torch.zeros(1, 1000)
    dog = list(IMAGENET_INDICES["dog"])
    probabilities[0, dog] = 0.5 / len(dog)
    probabilities[0, 499] = 0.2
    probabilities[0, 0] = 0.3  # tench: in no category
    # A sum rule would pick dog (0.5 > 0.2); the mean rule picks knife (0.2 > 0.5 / 109).
    assert decide_16(probabilities).tolist() == [CATEGORIES.index("knife")]
    scores = imagenet_to_16(probabilities)[0]
    assert scores[CATEGORIES.index("dog")] == pytest.approx(0.5 / 109)


def test_mass_outside_the_16_categories_is_ignored():
    probabilities = torch.zeros(1, 1000)
    probabilities[0, 0] = 0.9  # tench
    probabilities[0, 385] = 0.1  # Indian elephant
    assert decide_16(probabilities).tolist() == [CATEGORIES.index("elephant")]
    only_tench = imagenet_to_16(one_hot_probabilities(0))
    assert torch.equal(only_tench, torch.zeros(1, 16))


def test_mapping_accepts_softmax_output_and_empty_batches():
    probabilities = torch.randn(5, 1000).softmax(dim=1)
    assert decide_16(probabilities).shape == (5,)
    assert imagenet_to_16(torch.zeros(0, 1000)).shape == (0, 16)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.rand(1000), r"shape \(N, 1000\).*unsqueeze"),
        (torch.full((2, 16), 1 / 16), r"shape \(N, 1000\), got shape \(2, 16\)"),
        (torch.randn(2, 1000), "non-negative.*softmax"),
        (torch.rand(2, 1000), "sum to 1"),
        (torch.full((1, 1000), float("nan")), "NaN"),
        (torch.ones(1, 1000, dtype=torch.long), "floating-point"),
    ],
)
def test_mapping_rejects_bad_input(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        imagenet_to_16(bad)


def test_mapping_rejects_non_tensors():
    with pytest.raises(TypeError, match="torch.Tensor"):
        decide_16([[0.0] * 1000])


# ----- accuracy --------------------------------------------------------------------------

def test_accuracy_on_lists_and_tensors():
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 0]) == pytest.approx(0.5)
    assert accuracy(torch.tensor([3, 3, 3]), torch.tensor([3, 3, 1])) == pytest.approx(2 / 3)


def test_accuracy_rejects_mismatched_or_empty_or_float_input():
    with pytest.raises(ValueError, match="mismatched length: predictions has 3, labels has 2"):
        accuracy([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="zero images"):
        accuracy([], [])
    with pytest.raises(TypeError, match="argmax"):
        accuracy(torch.rand(3, 16).softmax(1).max(1).values, [1, 2, 3])
    with pytest.raises(ValueError, match="1-D"):
        accuracy(torch.zeros(2, 2, dtype=torch.long), [1, 2])


# ----- shape bias ------------------------------------------------------------------------

NAMES = ("cat", "dog", "car")  # 0, 1, 2
CAT, DOG, CAR = range(3)


def test_hand_worked_overall_shape_bias():
    # Six cue-conflict images with shape=cat, texture=dog:
    #   3 shape hits (cat), 1 texture hit (dog), 2 other (car).
    # Two same-cue images (cat/cat) that the model gets "right" must be excluded.
    predictions = [CAT, CAT, CAT, DOG, CAR, CAR, CAT, CAT]
    shapes = [CAT] * 8
    textures = [DOG] * 6 + [CAT, CAT]
    result = shape_bias(predictions, shapes, textures, NAMES)
    assert result.overall == pytest.approx(0.75)
    assert (result.shape_decisions, result.texture_decisions, result.n_conflict) == (3, 1, 6)


def test_same_cue_images_do_not_change_the_result():
    # If same-cue images counted as shape hits, the bias would be 5/6 instead of 3/4.
    with_same = shape_bias([CAT, CAT, CAT, DOG, CAT, CAT], [CAT] * 6, [DOG] * 4 + [CAT] * 2, NAMES)
    without = shape_bias([CAT, CAT, CAT, DOG], [CAT] * 4, [DOG] * 4, NAMES)
    assert with_same.overall == without.overall == pytest.approx(0.75)


def test_hand_worked_per_category_grouped_by_shape_label():
    predictions = [CAT, DOG, CAR, DOG, DOG, DOG, CAR]
    shapes = [CAT, CAT, CAT, DOG, DOG, DOG, DOG]
    textures = [DOG, DOG, DOG, CAR, CAR, DOG, CAT]
    # shape=cat: 1 shape hit, 1 texture hit, 1 other              -> 1/2
    # shape=dog: image 3,4 shape hits; image 5 same-cue (excluded);
    #            image 6 predicts car, texture is cat: other        -> 2/2 = 1
    # shape=car: no images                                          -> nan
    result = shape_bias(predictions, shapes, textures, NAMES)
    assert list(result.per_category) == list(NAMES)
    assert result.per_category["cat"] == pytest.approx(0.5)
    assert result.per_category["dog"] == pytest.approx(1.0)
    assert math.isnan(result.per_category["car"])
    assert result.overall == pytest.approx(3 / 4)
    assert result.n_conflict == 6


def test_per_category_uses_shape_not_texture_grouping():
    # shape=cat, texture=dog, predicted dog: a texture decision filed under "cat".
    result = shape_bias([DOG], [CAT], [DOG], NAMES)
    assert result.per_category["cat"] == 0.0
    assert math.isnan(result.per_category["dog"])


def test_all_other_decisions_give_nan():
    result = shape_bias([CAR, CAR], [CAT, DOG], [DOG, CAT], NAMES)
    assert math.isnan(result.overall)
    assert all(math.isnan(v) for v in result.per_category.values())
    assert (result.shape_decisions, result.texture_decisions, result.n_conflict) == (0, 0, 2)


def test_only_same_cue_images_give_nan_and_no_conflicts():
    result = shape_bias([CAT], [CAT], [CAT], NAMES)
    assert math.isnan(result.overall)
    assert result.n_conflict == 0


def test_shape_bias_works_for_16_classes_and_tensors():
    shapes = torch.tensor([0, 15, 7])
    textures = torch.tensor([15, 0, 3])
    predictions = torch.tensor([0, 0, 3])  # shape hit, texture hit, texture hit
    result = shape_bias(predictions, shapes, textures, CATEGORIES)
    assert result.overall == pytest.approx(1 / 3)
    assert result.per_category["airplane"] == 1.0
    assert result.per_category["truck"] == 0.0
    assert result.per_category["cat"] == 0.0


def test_shape_bias_is_frozen():
    result = shape_bias([CAT], [CAT], [DOG], NAMES)
    assert isinstance(result, ShapeBias)
    with pytest.raises(AttributeError):
        result.overall = 0.0


def test_shape_bias_rejects_bad_input():
    with pytest.raises(ValueError, match="mismatched length.*shape_labels has 1"):
        shape_bias([CAT, DOG], [CAT], [DOG, CAT], NAMES)
    with pytest.raises(ValueError, match=r"texture_labels must be class indices in 0..2.*got values from 5 to 5"):
        shape_bias([CAT], [CAT], [5], NAMES)
    with pytest.raises(ValueError, match="predictions must be class indices"):
        shape_bias([-1], [CAT], [DOG], NAMES)
    with pytest.raises(ValueError, match="unique"):
        shape_bias([CAT], [CAT], [DOG], ("cat", "cat", "car"))
    with pytest.raises(ValueError, match="at least one class"):
        shape_bias([], [], [], ())
    with pytest.raises(TypeError, match="integer class indices"):
        shape_bias(torch.tensor([0.0]), [CAT], [DOG], NAMES)


def test_the_decision_needs_only_the_classes_of_the_16_categories() -> None:
    """A softmax over the 207 classes alone rescales each image's probabilities: the decision is unchanged."""
    logits = torch.randn(500, 1000, generator=torch.Generator().manual_seed(0)) * 4
    full = decide_16(logits.softmax(dim=1))
    subset = list(SIXTEEN_CLASS_INDICES)
    assert len(subset) == 207
    assert torch.equal(decide_16(logits[:, subset].softmax(dim=1), subset), full)
    reordered = subset[::-1]
    assert torch.equal(decide_16(logits[:, reordered].softmax(dim=1), reordered), full)
    with pytest.raises(ValueError, match=r"ImageNet classes \[8\].*1 missing"):
        decide_16(logits[:, subset[1:]].softmax(dim=1), subset[1:])
