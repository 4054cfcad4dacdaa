"""The cue world: seeded images of a shape filled with a texture, where we control which cue predicts the label.

Class ``k`` is the pair (``SHAPES[k]``, ``TEXTURES[k]``). In the *aligned* split both cues agree, so a
network may learn either one; the other splits take them apart, in the spirit of Geirhos et al.
(2019), Fig. 2:

========== ============================================ =============
split      what the image shows                         label
========== ============================================ =============
aligned    shape k filled with texture k                k
conflict   shape i filled with texture j, i != j        shape i
silhouette shape k in one flat colour                   shape k
edges      only the outline of shape k                  shape k
texture    texture k over the whole image, no shape     texture k
randomised shape k filled with a random texture         shape k
========== ============================================ =============

*randomised* is our analogue of Stylized-ImageNet: texture carries no information about the label,
so a network trained on it can only succeed through shape.

Everything is drawn with ``torch`` in batches, from one ``torch.Generator``: the same seed gives
the same images. Position, scale, rotation, colours and texture phase vary per image.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from vitlessons.config import generator

SHAPES = ("circle", "square", "triangle", "star", "cross", "heart")
TEXTURES = ("stripes", "checks", "dots", "rings", "zigzag", "grain")
TEXTURE_ADJECTIVES = ("striped", "checked", "dotted", "ringed", "zigzag", "grainy")
CLASS_NAMES = SHAPES  # class k is shape k with texture k; results are named by shape
SPLITS = ("aligned", "conflict", "silhouette", "edges", "texture", "randomised")
TEMPLATE_SIZE = 128
MAX_TILT_DEGREES = 20  # shapes (and oriented textures) turn by at most this much either way: upright stays upright
CHUNK = 512  # images rendered at once, to bound memory


@dataclass
class CueBatch:
    """Images of one split with both cue labels, the foreground mask and a caption per image."""

    images: Tensor  # (B, 3, H, W) float in [0, 1]
    shapes: Tensor  # (B,) long, -1 where the image shows no shape
    textures: Tensor  # (B,) long, -1 where the image shows no texture
    masks: Tensor  # (B, H, W) bool, the shape's pixels
    captions: list[str]
    split: str

    @property
    def labels(self) -> Tensor:
        """The class a model should name: the texture in the texture split, the shape everywhere else."""
        return self.textures if self.split == "texture" else self.shapes

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: slice | Tensor) -> CueBatch:
        """A sub-batch, so a notebook can show the first few images."""
        picked = range(len(self))[index] if isinstance(index, slice) else index.tolist()
        return CueBatch(
            self.images[index], self.shapes[index], self.textures[index], self.masks[index],
            [self.captions[i] for i in picked], self.split,
        )

    def loader(self, batch_size: int = 64, shuffle: bool = False, seed: int = 0) -> DataLoader:
        """(image, label) batches for training or evaluation, shuffled by a seeded generator."""
        dataset = TensorDataset(self.images, self.labels)
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator(seed))


def make_split(split: str, n: int, seed: int = 0, size: int = 64, texture_angle: float | None = None) -> CueBatch:
    """Draw ``n`` images of one split, repeatably from ``seed``.

    Textures are drawn at any angle, so none of them tells which way is up. ``texture_angle`` (radians) draws every
    texture at that angle instead, tilted like the shapes (``MAX_TILT_DEGREES``): stripes and zigzags then have an
    "up" as a zebra's do (chapter 2), checks and dots look the same after a quarter turn, and rings and grain have no
    angle to set.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown cue-world split {split!r}; choose one of {SPLITS}")
    if n < 1 or size < 16:
        raise ValueError(f"need n >= 1 and size >= 16, got n={n}, size={size}")
    g = generator(seed)
    shapes, textures = _draw_labels(split, n, g)
    params = _draw_params(n, g)
    if texture_angle is not None:
        params["texture_angle"] = texture_angle + params["angle"]
    images, masks = [], []
    for start in range(0, n, CHUNK):
        part = slice(start, start + CHUNK)
        chunk = {key: value[part] for key, value in params.items()}
        image, mask = _render(split, shapes[part], textures[part], chunk, size, g)
        images.append(image)
        masks.append(mask)
    return CueBatch(torch.cat(images), shapes, textures, torch.cat(masks), _captions(split, shapes, textures), split)


def compose(shape: str, texture: str | None, seed: int = 0, size: int = 64) -> Tensor:
    """One (1, 3, H, W) image of the named shape filled with the named texture (None: a flat silhouette), by hand."""
    if shape not in SHAPES or (texture is not None and texture not in TEXTURES):
        raise ValueError(f"unknown shape {shape!r} or texture {texture!r}; shapes: {SHAPES}, textures: {TEXTURES} or None")
    g = generator(seed)
    shapes = torch.tensor([SHAPES.index(shape)])
    if texture is None:
        return _render("silhouette", shapes, torch.tensor([-1]), _draw_params(1, g), size, g)[0]
    return _render("conflict", shapes, torch.tensor([TEXTURES.index(texture)]), _draw_params(1, g), size, g)[0]


def _draw_labels(split: str, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Shape and texture classes per image, coupled as the split demands."""
    k = len(SHAPES)
    first = torch.randint(0, k, (n,), generator=g)
    if split == "aligned":
        return first, first.clone()
    if split == "conflict":
        offset = torch.randint(1, k, (n,), generator=g)  # never 0, so texture != shape
        return first, (first + offset) % k
    if split == "randomised":
        return first, torch.randint(0, k, (n,), generator=g)
    if split == "texture":
        return torch.full((n,), -1), first
    return first, torch.full((n,), -1)  # silhouette, edges


def _draw_params(n: int, g: torch.Generator) -> dict[str, Tensor]:
    """The nuisance variables of each image: pose, colours and texture layout."""
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    scale = 0.55 + 0.25 * u(n)
    return {
        "scale": scale,
        "angle": (u(n) - 0.5) * math.radians(MAX_TILT_DEGREES * 2),  # small tilts keep an upright pose for ch. 2
        "shift": (u(n, 2) * 2 - 1) * (1 - scale)[:, None] * 0.9,
        "background": 0.2 + 0.6 * u(n, 3),
        "dark": 0.4 * u(n, 3),
        "light": 0.6 + 0.4 * u(n, 3),
        "texture_angle": u(n) * math.pi,
        "period": 0.22 + 0.08 * u(n),  # texture period as a fraction of the image half-width
        "phase": u(n, 2),
        "centre": u(n, 2) * 2 - 1,
        "noise_seed": torch.randint(0, 2**31 - 1, (n,), generator=g),
    }


def _render(split: str, shapes: Tensor, textures: Tensor, p: dict[str, Tensor], size: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Compose background, shape mask and fill for one chunk of images."""
    n = len(shapes)
    grid = _pixel_grid(size).expand(n, size, size, 2)
    background = p["background"][:, :, None, None].expand(n, 3, size, size)
    background = (background + 0.03 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)
    if split == "texture":
        return _fill(textures, grid, p, g), torch.ones(n, size, size, dtype=torch.bool)
    alpha = _shape_alpha(shapes, grid, p)
    if split == "edges":
        alpha = _outline(alpha, width=max(1, size // 64))
    if split in ("silhouette", "edges"):
        fill = _contrasting(p["background"], p["dark"], p["light"])[:, :, None, None].expand(n, 3, size, size)
    else:
        fill = _fill(textures, grid, p, g)
    image = alpha * fill + (1 - alpha) * background
    return image.clamp(0, 1), alpha[:, 0] > 0.5


def _pixel_grid(size: int) -> Tensor:
    """Pixel centres in [-1, 1], x to the right and y downwards, shaped (1, H, W, 2) for grid_sample."""
    axis = (torch.arange(size) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([x, y], dim=-1)[None]


def _rotate(grid: Tensor, angle: Tensor) -> Tensor:
    """Rotate (B, H, W, 2) coordinates by a per-image angle."""
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    x, y = grid[..., 0], grid[..., 1]
    return torch.stack([cos * x + sin * y, -sin * x + cos * y], dim=-1)


def _shape_alpha(shapes: Tensor, grid: Tensor, p: dict[str, Tensor]) -> Tensor:
    """Anti-aliased coverage (B, 1, H, W) of each image's shape at its pose."""
    local = _rotate(grid - p["shift"][:, None, None, :], p["angle"]) / p["scale"][:, None, None, None]
    templates = shape_templates()[shapes]
    return F.grid_sample(templates, local, mode="bilinear", padding_mode="zeros", align_corners=False)


def _outline(alpha: Tensor, width: int) -> Tensor:
    """A band of ``width`` pixels around the shape boundary (dilation minus erosion)."""
    kernel = 2 * width + 1
    dilated = F.max_pool2d(alpha, kernel, stride=1, padding=width)
    eroded = -F.max_pool2d(-alpha, kernel, stride=1, padding=width)
    return (dilated - eroded).clamp(0, 1)


def _contrasting(background: Tensor, dark: Tensor, light: Tensor) -> Tensor:
    """A flat colour that stands out from the background: dark on light, light on dark."""
    is_light = background.mean(dim=1, keepdim=True) > 0.5
    return torch.where(is_light, dark, light)


def _fill(textures: Tensor, grid: Tensor, p: dict[str, Tensor], g: torch.Generator) -> Tensor:
    """Two-colour texture images (B, 3, H, W): each texture class is its own pattern function."""
    pattern = torch.empty(grid.shape[:3])
    for index, name in enumerate(TEXTURES):
        chosen = (textures == index).nonzero().flatten()
        if len(chosen):
            sub = {key: value[chosen] for key, value in p.items()}
            pattern[chosen] = _PATTERNS[name](grid[chosen], sub)
    pattern = pattern[:, None]
    return p["dark"][:, :, None, None] + (p["light"] - p["dark"])[:, :, None, None] * pattern


def _wave(z: Tensor) -> Tensor:
    """A square wave with softened edges, so fine textures do not alias at 64 px."""
    return (0.5 + 2.0 * torch.sin(2 * math.pi * z)).clamp(0, 1)


def _texture_coords(grid: Tensor, p: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Coordinates in texture periods, rotated and shifted per image."""
    uv = _rotate(grid, p["texture_angle"]) / p["period"][:, None, None, None]
    return uv[..., 0] + p["phase"][:, None, None, 0], uv[..., 1] + p["phase"][:, None, None, 1]


def _stripes(grid: Tensor, p: dict[str, Tensor]) -> Tensor:
    u, _ = _texture_coords(grid, p)
    return _wave(u)


def _checks(grid: Tensor, p: dict[str, Tensor]) -> Tensor:
    u, v = _texture_coords(grid, p)
    return (0.5 + 2.0 * torch.sin(math.pi * u) * torch.sin(math.pi * v)).clamp(0, 1)


def _dots(grid: Tensor, p: dict[str, Tensor]) -> Tensor:
    u, v = _texture_coords(grid, p)
    distance = torch.hypot(u - u.floor() - 0.5, v - v.floor() - 0.5)
    return ((0.3 - distance) * 8 + 0.5).clamp(0, 1)


def _rings(grid: Tensor, p: dict[str, Tensor]) -> Tensor:
    radius = torch.linalg.vector_norm(grid - p["centre"][:, None, None, :], dim=-1)
    return _wave(radius / p["period"][:, None, None] + p["phase"][:, None, None, 0])


def _zigzag(grid: Tensor, p: dict[str, Tensor]) -> Tensor:
    u, v = _texture_coords(grid, p)
    triangle = 2 * (v / 2 - (v / 2 + 0.5).floor()).abs()  # a triangle wave of period 2 along v
    return _wave(u + 0.8 * triangle)


def _grain(grid: Tensor, p: dict[str, Tensor]) -> Tensor:
    """Blotchy noise: a coarse random field, upsampled and thresholded softly."""
    n, h, w = grid.shape[:3]
    coarse = torch.stack([
        torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(int(seed)))
        for seed in p["noise_seed"]
    ])
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[:, 0]
    return ((field - 0.5) * 6 + 0.5).clamp(0, 1)


_PATTERNS = {
    "stripes": _stripes, "checks": _checks, "dots": _dots,
    "rings": _rings, "zigzag": _zigzag, "grain": _grain,
}


def _polygon(name: str) -> list[tuple[float, float]]:
    """Outline of each shape in [-1, 1] coordinates, y pointing down."""
    if name == "square":
        return [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]
    if name == "triangle":
        return [(math.cos(a), math.sin(a) + 0.15) for a in np.radians([-90, 30, 150])]
    if name == "star":
        radii = [1.0, 0.42] * 5
        return [(r * math.cos(a), r * math.sin(a)) for r, a in zip(radii, np.radians(np.arange(-90, 270, 36)))]
    if name == "cross":
        a, b = 0.3, 0.9
        return [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]
    if name == "heart":
        t = np.linspace(0, 2 * np.pi, 200)
        x = 16 * np.sin(t) ** 3
        y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return list(zip(x / 17, -(y + 2.5) / 17))
    raise ValueError(name)


@functools.lru_cache(maxsize=1)
def shape_templates() -> Tensor:
    """One anti-aliased coverage map per shape, (K, 1, T, T), drawn once at 4x and downsampled."""
    big = TEMPLATE_SIZE * 4
    to_pixels = lambda xy: ((xy[0] + 1) / 2 * big, (xy[1] + 1) / 2 * big)  # noqa: E731
    maps = []
    for name in SHAPES:
        canvas = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(canvas)
        if name == "circle":
            draw.ellipse([to_pixels((-0.9, -0.9)), to_pixels((0.9, 0.9))], fill=255)
        else:
            draw.polygon([to_pixels(xy) for xy in _polygon(name)], fill=255)
        small = canvas.resize((TEMPLATE_SIZE, TEMPLATE_SIZE), Image.Resampling.BOX)
        maps.append(torch.from_numpy(np.asarray(small, dtype=np.float32) / 255))
    return torch.stack(maps)[:, None]


# Chapter 4's captions: a few phrasings of one description, so a text encoder learns the words rather than one sentence.
CAPTION_TEMPLATES = ("a {texture} {shape}", "a photo of a {texture} {shape}", "a picture of a {texture} {shape}",
                     "a {shape} with {pattern}")


def caption(template: str, shape: int, texture: int) -> str:
    """One textured shape described from a template with the fields {shape}, {texture} (an adjective) and {pattern}."""
    return template.format(shape=SHAPES[shape], texture=TEXTURE_ADJECTIVES[texture], pattern=TEXTURES[texture])


def _captions(split: str, shapes: Tensor, textures: Tensor) -> list[str]:
    """A short description per image, used later as CLIP-style text."""
    def describe(shape: int, texture: int) -> str:
        if split == "texture":
            return f"a {TEXTURE_ADJECTIVES[texture]} surface"
        if split == "silhouette":
            return f"a plain {SHAPES[shape]}"
        if split == "edges":
            return f"the outline of a {SHAPES[shape]}"
        return caption(CAPTION_TEMPLATES[0], shape, texture)
    return [describe(s, t) for s, t in zip(shapes.tolist(), textures.tolist())]
