"""The figures build under Agg and contain the expected markers and lines."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vitlessons.metrics import ShapeBias, shape_bias  # noqa: E402
from vitlessons.plot import PUBLISHED_SHAPE_BIAS, image_grid, shape_bias_plot  # noqa: E402

NAMES = ("cat", "dog", "car")


def make_result(per_category: dict[str, float], overall: float) -> ShapeBias:
    """A ShapeBias with chosen values, so the plot can be checked against them."""
    return ShapeBias(overall=overall, per_category=per_category,
                     shape_decisions=1, texture_decisions=1, n_conflict=2)


RESULTS = {
    "cnn": make_result({"cat": 0.2, "dog": 0.3, "car": 0.1}, 0.2),
    "vit": make_result({"cat": 0.8, "dog": math.nan, "car": 0.6}, 0.7),
}


def vertical_lines(ax) -> list[float]:
    """x positions of the vertical lines drawn with axvline."""
    return [line.get_xdata()[0] for line in ax.lines]


def main_axes(figure: Figure):
    """The axes holding the data (the secondary top axis is its child)."""
    return figure.axes[0]


def test_published_numbers():
    assert PUBLISHED_SHAPE_BIAS["humans"] == pytest.approx(0.958)
    assert PUBLISHED_SHAPE_BIAS["ResNet-50"] == pytest.approx(0.214, abs=5e-4)


def test_shape_bias_plot_markers_and_lines():
    figure = shape_bias_plot(RESULTS)
    ax = main_axes(figure)
    assert isinstance(figure, Figure)
    assert len(ax.collections) == 2  # one scatter per model
    cnn, vit = (c.get_offsets() for c in ax.collections)
    assert np.allclose(cnn, [[0.2, 0], [0.3, 1], [0.1, 2]])
    assert np.allclose(vit, [[0.8, 0], [0.6, 2]])  # nan category gets no marker
    assert ax.collections[0].get_paths()[0] is not None
    markers = {tuple(map(tuple, c.get_paths()[0].vertices.round(3))) for c in ax.collections}
    assert len(markers) == 2  # different marker styles
    assert sorted(vertical_lines(ax)) == pytest.approx(sorted([0.2, 0.7, 0.958, 0.2139]))
    assert [t.get_text() for t in ax.get_yticklabels()] == list(NAMES)


def test_shape_bias_plot_without_reference_and_nan_overall():
    results = {"none": make_result({"cat": math.nan, "dog": math.nan, "car": math.nan}, math.nan)}
    ax = main_axes(shape_bias_plot(results, reference=False))
    assert vertical_lines(ax) == []
    assert len(ax.collections[0].get_offsets()) == 0
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["none (n/a)"]


def test_shape_bias_plot_labels_and_axis_ends():
    ax = main_axes(shape_bias_plot(RESULTS))
    texts = {t.get_text() for t in ax.texts}
    assert {"texture", "shape"} <= texts
    assert ax.get_xlim() == (0, 1)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "cnn (20.0%)" in legend and "humans, published (95.8%)" in legend
    assert "ResNet-50, published (21.4%)" in legend
    assert len(ax.child_axes) == 1  # the secondary 'texture' axis on top


def test_shape_bias_plot_category_subset_and_order():
    ax = main_axes(shape_bias_plot(RESULTS, categories=["car", "cat"], reference=False))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["car", "cat"]
    assert np.allclose(ax.collections[0].get_offsets(), [[0.1, 0], [0.2, 1]])


def test_shape_bias_plot_draws_into_given_axes():
    figure = Figure()
    ax = figure.add_subplot()
    assert shape_bias_plot(RESULTS, ax=ax) is figure


def test_shape_bias_plot_from_real_results():
    result = shape_bias([0, 1, 2, 0], [0, 1, 2, 1], [1, 2, 0, 0], NAMES)
    ax = main_axes(shape_bias_plot({"m": result}))
    assert len(ax.collections[0].get_offsets()) == 3


def test_shape_bias_plot_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one model"):
        shape_bias_plot({})
    with pytest.raises(ValueError, match=r"no per-category value for \['bird'\]"):
        shape_bias_plot(RESULTS, categories=["cat", "bird"])
    with pytest.raises(TypeError, match="must be a ShapeBias"):
        shape_bias_plot({"m": 0.5})


def test_image_grid_layout_and_titles():
    images = torch.rand(10, 3, 8, 8)
    figure = image_grid(images, titles=[f"t{i}" for i in range(10)], ncols=4)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 12  # 3 rows x 4 columns
    with_images = [ax for ax in figure.axes if ax.images]
    assert len(with_images) == 10
    assert [ax.get_title() for ax in with_images] == [f"t{i}" for i in range(10)]
    assert np.allclose(with_images[3].images[0].get_array(), images[3].permute(1, 2, 0).numpy())


def test_image_grid_small_batch_and_grayscale():
    figure = image_grid(torch.rand(2, 1, 5, 5))
    assert len(figure.axes) == 2


@pytest.mark.parametrize(
    "images, kwargs, error, message",
    [
        (torch.rand(2, 8, 8, 3), {}, ValueError, r"\(B, 3, H, W\).*got shape \(2, 8, 8, 3\)"),
        (torch.rand(3, 8, 8), {}, ValueError, r"\(B, 3, H, W\)"),
        (torch.randn(2, 3, 8, 8) * 3, {}, ValueError, r"\[0, 1\].*normalisation"),
        (torch.rand(2, 3, 8, 8), {"titles": ["a"]}, ValueError, "1 titles for 2 images"),
        (torch.rand(2, 3, 8, 8), {"ncols": 0}, ValueError, "ncols"),
        (torch.rand(0, 3, 8, 8), {}, ValueError, "empty batch"),
        (np.zeros((1, 3, 8, 8)), {}, TypeError, "torch.Tensor"),
    ],
)
def test_image_grid_rejects_bad_input(images, kwargs, error, message):
    with pytest.raises(error, match=message):
        image_grid(images, **kwargs)


def test_chapter_0_figures_draw_what_they_are_given():
    from vitlessons.plot import architecture, attacks, attention

    image = torch.rand(1, 3, 56, 56)
    grid = architecture.patch_grid(image, 14)
    assert len(grid.axes[0].lines) == 6, "three inner boundaries each way on a 4x4 grid"
    weight = torch.randn(12, 3, 5, 5)
    components = architecture.filter_components(weight, 4)
    assert components.shape == (4, 3, 5, 5) and components.min() >= 0 and components.max() <= 1
    assert len(architecture.filters(weight, "f", count=4, ncols=2).axes) == 4
    assert len(architecture.position_similarity(torch.randn(6, 8), (2, 3)).axes) == 6
    deltas = {"a": torch.rand(2, 3, 16, 16) * 0.02 - 0.01, "b": torch.zeros(2, 3, 16, 16)}
    assert attacks.amplify(torch.tensor([-0.01, 0.0, 0.01]), 0.01).tolist() == [0.0, 0.5, 1.0]
    assert len(attacks.perturbations(torch.rand(2, 3, 16, 16), deltas, 0.01).axes) == 6
    assert len(attacks.spectra(deltas).axes) == 2
    curve = attacks.accuracy_against_budget({"a": {0.0: 0.9, 4 / 255: 0.5}})
    assert curve.axes[0].lines[0].get_xdata().tolist() == pytest.approx([0.0, 4.0])
    panels = attention.attention_distance({"a": torch.rand(3, 2) * 10}, uniform={"a": 12.0})
    assert len(panels.axes[0].collections) == 3 and panels.axes[0].lines[0].get_ydata()[0] == 12.0


# ----- chapter 5: plot.robustness ---------------------------------------------------------------

def test_curves_draws_one_line_per_column_against_the_index():
    import pandas as pd

    from vitlessons.plot import robustness

    table = pd.DataFrame({"vit": [0.9, 0.7, 0.4], "cnn": [0.8, 0.5, 0.2], "mlp": [0.6, 0.3, 0.1]}, index=[0, 4, 8])
    figure = robustness.curves(table, "shift", "title")
    ax = figure.axes[0]
    assert isinstance(figure, Figure) and len(figure.axes) == 1
    assert len(ax.lines) == 3
    assert [line.get_label() for line in ax.lines] == ["vit", "cnn", "mlp"]
    assert ax.lines[1].get_xdata().tolist() == [0, 4, 8] and ax.lines[1].get_ydata().tolist() == [0.8, 0.5, 0.2]
    assert ax.get_xlabel() == "shift" and ax.get_ylim() == pytest.approx((0, 1.02))
    assert robustness.curves(table, "x", ylabel="loss").axes[0].get_ylim() != pytest.approx((0, 1.02))


def test_severity_by_family_draws_a_panel_per_family():
    import pandas as pd

    from vitlessons.plot import robustness

    table = pd.DataFrame({"a": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], "b": [0.9] * 6}).rename_axis("severity")
    figure = robustness.severity_by_family({"noise": table, "blur": table, "weather": table})
    assert isinstance(figure, Figure) and len(figure.axes) == 3
    assert [ax.get_title() for ax in figure.axes] == ["noise", "blur", "weather"]
    assert all(len(ax.lines) == 2 for ax in figure.axes)
    assert figure.axes[0].lines[0].get_xdata().tolist() == [0, 1, 2, 3, 4, 5]


def test_error_against_clean_annotates_every_model_and_draws_the_diagonal():
    import pandas as pd

    from vitlessons.plot import robustness

    points = pd.DataFrame({"clean error": [0.1, 0.2, 0.3], "corruption error": [0.4, 0.5, 0.45]},
                          index=["ViT", "CNN", "CNN, matched"])
    figure = robustness.error_against_clean(points)
    ax = figure.axes[0]
    assert isinstance(figure, Figure)
    assert sorted(text.get_text() for text in ax.texts) == ["CNN", "CNN, matched", "ViT"]
    assert len(ax.collections) == 1 and ax.collections[0].get_offsets().tolist() == [[0.1, 0.4], [0.2, 0.5], [0.3, 0.45]]
    (diagonal,) = ax.lines
    assert diagonal.get_xdata().tolist() == diagonal.get_ydata().tolist() == pytest.approx([0, 0.55])
    assert ax.get_xlim() == pytest.approx((0, 0.55))


def test_block_removal_draws_a_bar_group_per_part_and_the_intact_line():
    import pandas as pd

    from vitlessons.plot import robustness

    table = pd.DataFrame({"block": [0.2, 0.6, 0.7, 0.8], "attention": [0.3, 0.7, 0.8, 0.8],
                          "mlp": [0.5, 0.8, 0.8, 0.9]}).rename_axis("block removed")
    figure = robustness.block_removal(table, clean=0.85)
    ax = figure.axes[0]
    assert isinstance(figure, Figure)
    assert len(ax.containers) == 3 and all(len(bars) == 4 for bars in ax.containers)
    assert [bars.get_label() for bars in ax.containers] == ["block removed", "attention removed", "mlp removed"]
    assert [bar.get_height() for bar in ax.containers[1]] == pytest.approx([0.3, 0.7, 0.8, 0.8])
    assert len(ax.patches) == 12
    (intact,) = ax.lines
    assert list(intact.get_ydata()) == [0.85, 0.85]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3"]


def test_loss_progression_draws_the_median_of_each_model_with_a_band():
    from vitlessons.plot import robustness

    steps = torch.arange(11.0)[:, None]
    losses = {"vit": steps + torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]), "cnn": 2 * steps.expand(11, 5)}
    figure = robustness.loss_progression(losses)
    ax = figure.axes[0]
    assert isinstance(figure, Figure)
    assert [line.get_label() for line in ax.lines] == ["vit", "cnn"]
    assert list(ax.lines[0].get_xdata()) == list(range(11))
    assert np.allclose(ax.lines[0].get_ydata(), np.arange(11) + 2.0)  # the median over the five images
    assert np.allclose(ax.lines[1].get_ydata(), 2 * np.arange(11))
    assert len(ax.collections) == 2  # one 25-75% band per model


def test_accuracy_against_budget_draws_one_line_per_model_in_255ths():
    from vitlessons.plot import attacks

    figure = attacks.accuracy_against_budget({"vit": {0.0: 0.9, 2 / 255: 0.5, 1 / 255: 0.7},
                                              "cnn": {0.0: 0.8, 1 / 255: 0.3, 2 / 255: 0.1}})
    ax = figure.axes[0]
    assert isinstance(figure, Figure) and [line.get_label() for line in ax.lines] == ["vit", "cnn"]
    assert ax.lines[0].get_xdata().tolist() == pytest.approx([0.0, 1.0, 2.0])  # sorted, in 255ths
    assert ax.lines[0].get_ydata().tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert ax.lines[1].get_ydata().tolist() == pytest.approx([0.8, 0.3, 0.1])
    assert ax.get_ylabel() == "accuracy under attack" and "255ths" in ax.get_xlabel()


def test_cka_heatmaps_draw_each_matrix_on_one_scale_with_layer_names():
    import pandas as pd

    from vitlessons.plot import representations

    vit = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=["block 0", "block 1"], columns=["block 0", "block 1"])
    across = pd.DataFrame([[0.2, 0.7, 0.4]], index=["block 0"], columns=["stem", "stage 1", "stage 2"])
    figure = representations.cka_heatmaps({"ViT x ViT": vit, "ViT x CNN": across}, "CKA")
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["ViT x ViT", "ViT x CNN"]
    assert [t.get_text() for t in panels[1].get_xticklabels()] == ["stem", "stage 1", "stage 2"]
    assert panels[1].images[0].get_array().shape == (1, 3)
    assert all(ax.images[0].get_clim() == (0, 1) for ax in panels)
