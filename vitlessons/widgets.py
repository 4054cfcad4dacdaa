"""Interactive explorers: controls that redraw a figure, and a static figure wherever widgets don't run.

An ``Explorer`` is an ipywidgets box of controls above an image of the figure. Its display data carries
both the live widget and a PNG of the figure at the current values: JupyterLab (and Colab) show the
widget, while a plain kernel, nbval, nbconvert or GitHub's viewer show the PNG. So every explorer draws its
figure once, with the default values, whatever runs the notebook, and CI exercises the code behind it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence

import ipywidgets
import torch
from matplotlib.figure import Figure
from torch import nn

from vitlessons.data import cueworld
from vitlessons.models.wrapper import Classifier, Model
from vitlessons.objectives.rotation import TURNS, Rotation, quarter_turns
from vitlessons.perturb import shuffle_patches
from vitlessons.plot import cue_decisions, figure_png


class Explorer(ipywidgets.VBox):
    """Controls that redraw ``draw(**values)`` whenever one of them changes."""

    def __init__(self, draw: Callable[..., Figure], controls: Mapping[str, ipywidgets.ValueWidget]):
        self.draw, self.controls = draw, dict(controls)
        self.image = ipywidgets.Image(format="png")
        super().__init__([ipywidgets.HBox(list(self.controls.values())), self.image])
        for control in self.controls.values():
            control.observe(self.redraw, names="value")
        self.redraw()

    @property
    def values(self) -> dict:
        """The current value of every control, by the keyword ``draw`` takes it as."""
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self, change: object = None) -> None:
        """Draw the figure for the current values into the image."""
        self.image.value = figure_png(self.draw(**self.values))

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        """The widget for front ends that render widgets, and the PNG for every other reader."""
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        bundle["text/plain"] = f"Explorer of {', '.join(self.controls)} (a static figure where widgets don't run)"
        return bundle


def cue_conflict_explorer(models: Mapping[str, Classifier], seed: int = 0, size: int = 64,
                          shape: str = "heart", texture: str = "checks") -> Explorer:
    """Pick a shape, a texture and a tile grid; see which cue each cue-world model follows.

    Shuffling the tiles destroys the shape and keeps the texture, so a shape-biased model should lose its
    answer as the grid gets finer, and a texture-biased one should keep it.
    """
    labels = list(next(iter(models.values())).labels)

    def draw(shape: str, texture: str, grid: int) -> Figure:
        image = cueworld.compose(shape, texture, seed, size)
        image = shuffle_patches(image, grid, torch.Generator().manual_seed(seed))
        probabilities = {name: model.predict(image)[0] for name, model in models.items()}
        title = f"{texture} {shape}\n" + (f"{grid}x{grid} tiles shuffled" if grid > 1 else "tiles in place")
        return cue_decisions(probabilities, image, cueworld.SHAPES.index(shape), cueworld.TEXTURES.index(texture),
                             labels, title)

    grids = [g for g in (1, 2, 4, 8, 16) if size % g == 0]
    return Explorer(draw, {
        "shape": ipywidgets.Dropdown(options=cueworld.SHAPES, value=shape, description="shape"),
        "texture": ipywidgets.Dropdown(options=cueworld.TEXTURES, value=texture, description="texture"),
        "grid": ipywidgets.SelectionSlider(options=grids, value=1, description="tiles"),
    })


def attack_explorer(models: Mapping[str, Classifier], image: torch.Tensor, label: int,
                    budgets: tuple[int, ...] = (0, 1, 2, 4, 8, 16)) -> Explorer:
    """Slide the L-infinity budget (in 255ths); see each model's FGSM image, its perturbation and its decision."""
    from vitlessons.attacks import fgsm
    from vitlessons.plot.attacks import amplify

    def draw(budget: int) -> Figure:
        eps = budget / 255
        figure = Figure(figsize=(2.0 * (1 + 2 * len(models)), 2.5))
        axes = figure.subplots(1, 1 + 2 * len(models))
        panels = [("clean", image[0])]
        for name, model in models.items():
            adversarial = fgsm(model, image, torch.tensor([label]), eps=eps).images if budget else image
            guess = model.predict(adversarial)[0]
            top = int(guess.argmax())
            panels += [(f"{name}: {model.labels[top]} ({guess[top]:.0%})", adversarial[0]),
                       (f"{name}: delta, stretched", amplify(adversarial[0] - image[0], max(eps, 1 / 255)))]
        for ax, (title, picture) in zip(axes, panels):
            ax.imshow(picture.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
        figure.tight_layout()
        return figure

    return Explorer(draw, {"budget": ipywidgets.SelectionSlider(options=budgets, value=budgets[min(3, len(budgets) - 1)],
                                                                description="eps x 255")})


def corruption_explorer(models: Mapping[str, Classifier], image: torch.Tensor, label: int,
                        corruption: str = "gaussian_noise") -> Explorer:
    """Pick an ImageNet-C corruption and a severity; see the corrupted image and each model's decision."""
    from vitlessons.perturb import IMAGENET_C, SEVERITIES, corrupt

    def draw(corruption: str, severity: int) -> Figure:
        shown = corrupt(image, corruption, severity, torch.Generator().manual_seed(0)) if severity else image
        return _image_and_decisions(models, shown, label, f"{corruption}, severity {severity}" if severity else "clean")

    return Explorer(draw, {
        "corruption": ipywidgets.Dropdown(options=IMAGENET_C, value=corruption, description="corruption"),
        "severity": ipywidgets.SelectionSlider(options=(0, *SEVERITIES), value=3, description="severity"),
    })


def patch_drop_explorer(models: Mapping[str, Classifier], image: torch.Tensor, label: int, saliency: torch.Tensor,
                        patch_size: int = 8, seed: int = 0) -> Explorer:
    """Slide the share of patches blacked out and pick which go first; see the image and each model's decision.

    ``saliency`` (1, H, W) ranks the patches for the salient and non-salient modes (chapter 6's PatchDrop).
    """
    from vitlessons.perturb import patch_drop

    def draw(fraction: float, mode: str) -> Figure:
        generator = torch.Generator(image.device).manual_seed(seed)
        shown = patch_drop(image, fraction, patch_size, mode, saliency=None if mode == "random" else saliency,
                           generator=generator if mode == "random" else None)
        return _image_and_decisions(models, shown, label, f"{fraction:.0%} of the patches dropped, {mode.replace('_', '-')}")

    return Explorer(draw, {
        "fraction": ipywidgets.FloatSlider(min=0.0, max=0.9, step=0.1, value=0.5, description="dropped"),
        "mode": ipywidgets.Dropdown(options=("random", "salient", "non_salient"), value="random", description="which"),
    })


def _image_and_decisions(models: Mapping[str, Classifier], shown: torch.Tensor, label: int, title: str) -> Figure:
    """The image a perturbation made, then each model's probabilities with the true class in green."""
    labels = list(next(iter(models.values())).labels)
    figure = Figure(figsize=(2.4 * (1 + len(models)), 2.6))
    axes = figure.subplots(1, 1 + len(models))
    axes[0].imshow(shown[0].detach().cpu().permute(1, 2, 0).numpy(), interpolation="nearest")
    axes[0].set_title(title, fontsize=8)
    axes[0].set_axis_off()
    for ax, (name, model) in zip(axes[1:], models.items()):
        probabilities = model.predict(shown)[0].cpu()
        colours = ["C2" if index == label else "C7" for index in range(len(labels))]
        ax.barh(labels, probabilities.numpy(), color=colours)
        ax.set_xlim(0, 1)
        ax.set_title(f"{name}: {labels[int(probabilities.argmax())]}", fontsize=8)
        ax.tick_params(labelsize=7)
    figure.tight_layout()
    return figure


def attention_mask_explorer(models: Mapping[str, Model], images: torch.Tensor, truth: torch.Tensor,
                            mass: float = 0.6) -> Explorer:
    """Pick an image, a head and the attention mass to keep; see each model's CLS attention, its mask and the Jaccard."""
    from vitlessons.segmentation import cls_attention, jaccard, mass_masks, upsample

    maps = {name: cls_attention(model, images) for name, model in models.items()}
    heads = min(m.shape[1] for m in maps.values())

    def draw(image: int, head: int, mass: float) -> Figure:
        figure = Figure(figsize=(2.2 * (1 + len(models)), 2.5))
        axes = figure.subplots(1, 1 + len(models))
        axes[0].imshow(images[image].permute(1, 2, 0).cpu().numpy())
        axes[0].contour(truth[image].float().cpu().numpy(), levels=[0.5], colors="white", linewidths=0.8)
        axes[0].set_title("image, true outline", fontsize=8)
        for ax, (name, attention) in zip(axes[1:], maps.items()):
            kept = upsample(mass_masks(attention[image, head], mass), tuple(truth.shape[-2:]))
            size = tuple(truth.shape[-2:])
            ax.imshow(torch.nn.functional.interpolate(attention[image, head][None, None], size=size)[0, 0], cmap="inferno")
            ax.contour(kept.float().numpy(), levels=[0.5], colors="cyan", linewidths=0.8)
            ax.set_title(f"{name}\nJaccard {jaccard(kept, truth[image].cpu()).item():.2f}", fontsize=8)
        for ax in axes:
            ax.set_axis_off()
        figure.tight_layout()
        return figure

    return Explorer(draw, {
        "image": ipywidgets.IntSlider(min=0, max=len(images) - 1, value=0, description="image"),
        "head": ipywidgets.IntSlider(min=0, max=heads - 1, value=0, description="head"),
        "mass": ipywidgets.FloatSlider(min=0.1, max=1.0, step=0.05, value=mass, description="mass"),
    })


SILHOUETTE = "none (silhouette)"  # the rotation explorer's texture choice for a flat shape, the pretext world


def rotation_explorer(models: Mapping[str, tuple[Classifier, Rotation]], seed: int = 0, size: int = 64,
                      shape: str = "triangle", texture: str = SILHOUETTE) -> Explorer:
    """Pick a shape and a texture; see the image in its four quarter turns and each rotation head's guess for each.

    A shape that looks the same turned (a circle, a square, a cross) gives its head nothing to go on, and no cue-world
    texture helps: textures are drawn at any angle.
    """
    def draw(shape: str, texture: str) -> Figure:
        turned, _ = quarter_turns(cueworld.compose(shape, None if texture == SILHOUETTE else texture, seed, size))
        figure = Figure(figsize=(2.0 * TURNS, 2.0 * (1 + len(models)) * 0.8))
        axes = figure.subplots(1 + len(models), TURNS, squeeze=False)
        for turn in range(TURNS):
            axes[0, turn].imshow(turned[turn].permute(1, 2, 0).numpy(), interpolation="nearest")
            axes[0, turn].set_title(f"turned {90 * turn} degrees", fontsize=8)
            axes[0, turn].set_axis_off()
        for row, (name, (model, rotation)) in enumerate(models.items(), start=1):
            model.eval()
            with torch.no_grad():
                logits, _, _ = rotation.rotation_logits(model, turned[:1].to(next(model.parameters()).device))
            for turn, probabilities in enumerate(logits.softmax(-1).cpu()):
                ax = axes[row, turn]
                ax.bar(range(TURNS), probabilities.numpy(), color=["C2" if k == turn else "C7" for k in range(TURNS)])
                ax.set_ylim(0, 1)
                ax.set_xticks(range(TURNS), [f"{90 * k}" for k in range(TURNS)], fontsize=7)
                ax.tick_params(labelsize=7)
                ax.set_title(f"{name}: {90 * int(probabilities.argmax())}?", fontsize=8)
        figure.tight_layout()
        return figure

    return Explorer(draw, {
        "shape": ipywidgets.Dropdown(options=cueworld.SHAPES, value=shape, description="shape"),
        "texture": ipywidgets.Dropdown(options=(SILHOUETTE, *cueworld.TEXTURES), value=texture, description="texture"),
    })


def caption_explorer(clip: nn.Module, tokenizer: Callable[[list[str]], torch.Tensor], images: torch.Tensor,
                     preprocessing: Callable[[torch.Tensor], torch.Tensor], prompts: Sequence[str],
                     caption: str = "a striped star", image: int = 0, shown: int = 8) -> Explorer:
    """Type a caption and see the images a CLIP-like model retrieves for it; pick an image and see how it scores each prompt.

    ``clip`` is anything with open_clip's ``encode_image`` (of preprocessed images) and ``encode_text``, such as
    ``models.clip.LabClip``; the images are encoded once, each caption as it is typed.
    """
    device = next(clip.parameters()).device
    with torch.no_grad():
        image_embeddings = clip.encode_image(preprocessing(images.to(device)), normalize=True).cpu()
        prompt_embeddings = clip.encode_text(tokenizer(list(prompts)).to(device), normalize=True).cpu()

    def draw(caption: str, image: int) -> Figure:
        with torch.no_grad():
            query = clip.encode_text(tokenizer([caption or " "]).to(device), normalize=True).cpu()[0]
        scores = image_embeddings @ query
        figure = Figure(figsize=(max(1.3 * shown, 8.0), 5.0), layout="constrained")
        top, bottom = figure.subfigures(2, 1, height_ratios=(1, 1.6))
        best = scores.topk(min(shown, len(images)))
        for ax, index, score in zip(top.subplots(1, len(best.indices), squeeze=False)[0], best.indices.tolist(),
                                    best.values.tolist()):
            ax.imshow(images[index].permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_title(f"#{index}: {score:.2f}", fontsize=7)
            ax.set_axis_off()
        picked, bars = bottom.subplots(1, 2, width_ratios=(1, 2.5))
        picked.imshow(images[image].permute(1, 2, 0).clamp(0, 1).numpy())
        picked.set_title(f"image #{image}", fontsize=8)
        picked.set_axis_off()
        similarity = (prompt_embeddings @ image_embeddings[image]).numpy()
        bars.barh(range(len(prompts)), similarity, color=["C2" if k == similarity.argmax() else "C7" for k in range(len(prompts))])
        bars.set_yticks(range(len(prompts)), prompts, fontsize=7)
        bars.invert_yaxis()
        bars.set_xlabel("cosine similarity", fontsize=8)
        bars.tick_params(labelsize=7)
        figure.suptitle(f'top: the images closest to "{caption}"; bottom: one image against each prompt', fontsize=9)
        return figure

    return Explorer(draw, {
        "caption": ipywidgets.Text(value=caption, description="caption", continuous_update=False),
        "image": ipywidgets.IntSlider(value=image, min=0, max=len(images) - 1, description="image"),
    })
