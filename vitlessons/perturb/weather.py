"""Weather corruptions: snow, frost, fog and spatter, batched on the images' device.

Batched versions of the ImageNet-C weather corruptions (Hendrycks & Dietterich, 2019) with the per-severity
parameters of the reference CPU implementation (corrupt-tta); every image of a batch draws its own randomness
from the ``torch.Generator`` it is given. Spatial parameters are in pixels, published for 224 px images, and kept
as they are at other sizes.

* snow: Gaussian noise (mean c0, std c1) zoomed in by c2 (bilinear), thresholded at c3, motion-blurred along
  a random direction between -135 and -45 degrees by a rotated line of 2 * c4 + 1 pixels, and added twice
  (once upside down) to the image, which is first whitened towards 1.5 * grey + 0.5 (weight 1 - c6).
* frost: c0 * image + c1 * frost, with the frost texture cropped at random from one of six frost images.
  The frost images are our own: procedural textures of ice needles with side branches, soft glow and
  cloudy density, drawn once (fixed seeds, 384 x 384, enlarged for bigger inputs) by ``frost_textures`` and
  released with the package under its licence (MIT). They are not the photos the reference ships: only each
  texture's mean colour and contrast are calibrated so that it corrupts as strongly (PSNR against the clean
  image) as the reference photo it stands in for, so the corruption matches the reference's strength on
  average, not pixel by pixel.
* fog: a plasma fractal (diamond-square) scaled by c0 added to the image, then rescaled so the image's maximum
  stays where it was. ImageNet-C's code uses c1 as the fractal's roughness decay; the reference does not pass
  it on and uses its default decay of 3 at every severity, and so do we (``FOG_DECAY``), so c1 is unused.
* spatter: the reference's mud splashes: smoothed Gaussian noise (sigma c1) normalised to [0, 1] and
  thresholded at c0, softened, and blended towards mud brown with strength c2.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vitlessons.perturb.blur import filter2d, gaussian_filter, motion_kernels
from vitlessons.perturb.registry import corruption

__all__ = ["FOG_DECAY", "frost_textures", "plasma_fractal"]


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator,
             device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniform samples in [low, high) drawn from ``generator``."""
    return torch.rand(shape, generator=generator, device=device, dtype=dtype) * (high - low) + low


# ----------------------------------------------------------------------------------------------- fog

FOG_DECAY = 3.0  # the plasma fractal's roughness decay that the reference uses at every severity

def plasma_fractal(batch: int, size: int, decay: float, generator: torch.Generator,
                   device: torch.device | str = "cpu") -> Tensor:
    """``batch`` diamond-square plasma fractals of ``size`` x ``size`` (a power of two), each scaled to [0, 1].

    Each level doubles the resolution: the new points (square centres, then the diamond points between them) take
    the mean of their four neighbours plus uniform noise of amplitude wibble ** 2, with wibble starting at 100
    and divided by ``decay`` per level; the map wraps around at its edges.
    """
    if size < 2 or size & (size - 1):
        raise ValueError(f"the plasma fractal's size must be a power of two, got {size}")
    corners = torch.zeros(batch, 1, 1, device=device)  # the points already set, one lattice step apart
    wibble = 100.0

    def mean_plus_noise(a: Tensor, b: Tensor, c: Tensor, d: Tensor) -> Tensor:
        # U(-wibble ** 2, wibble ** 2), which is the reference's wibble * U(-wibble, wibble)
        noise = torch.rand(a.shape, generator=generator, device=a.device)
        return noise.mul_(2 * wibble * wibble).add_(a + b + c + d, alpha=0.25).sub_(wibble * wibble)

    while corners.shape[-1] < size:
        count = corners.shape[-1]
        # the map wraps around: a copy of row 0 and column 0 after the end, then of the last ones before the start
        wrapped = F.pad(corners[:, None], (0, 1, 0, 1), mode="circular")[:, 0]
        right, below, diagonal = wrapped[:, :-1, 1:], wrapped[:, 1:, :-1], wrapped[:, 1:, 1:]
        centres = mean_plus_noise(corners, right, below, diagonal)
        wrapped = F.pad(centres[:, None], (1, 0, 1, 0), mode="circular")[:, 0]
        above, left = wrapped[:, :-1, 1:], wrapped[:, 1:, :-1]
        # the diamond points: on a corner's row between it and its right neighbour, and on its column below it
        across = mean_plus_noise(centres, above, corners, right)
        down = mean_plus_noise(centres, left, corners, below)
        even_rows = torch.stack([corners, across], -1)  # row 2i: corner, across, corner, across, ...
        odd_rows = torch.stack([down, centres], -1)  # row 2i + 1: down, centre, down, centre, ...
        corners = torch.stack([even_rows, odd_rows], 2).reshape(batch, 2 * count, 2 * count)
        wibble /= decay
    low = corners.amin((1, 2), keepdim=True)
    high = corners.amax((1, 2), keepdim=True)
    return corners.sub_(low).div_(high - low)


@corruption("fog", "weather", ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)))
def fog(images: Tensor, level: tuple[float, float], generator: torch.Generator) -> Tensor:
    """Add c0 times a plasma fractal (one per image), then scale so the brightest value is kept."""
    strength, _ = level  # the published decay c1 is unused, as in the reference (see the module's docstring)
    batch, _, height, width = images.shape
    size = 1 << (max(height, width) - 1).bit_length()
    haze = plasma_fractal(batch, size, FOG_DECAY, generator, images.device)[:, None, :height, :width]
    brightest = images.amax((1, 2, 3), keepdim=True)
    factor = brightest / (brightest + strength)
    return torch.addcmul(haze.to(images.dtype) * (strength * factor), images, factor)


# ----------------------------------------------------------------------------------------------- snow

@corruption("snow", "weather", (
    (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
    (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
    (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
    (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
    (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
))
def snow(images: Tensor, level: tuple, generator: torch.Generator) -> Tensor:
    """Falling snow: zoomed, thresholded noise streaked by motion blur, over a whitened image.

    ``level`` is (noise mean, noise std, zoom, threshold, blur radius, blur sigma, image weight); the blur sigma
    is unused, as in the reference's OpenCV motion blur.
    """
    mean, std, zoom, threshold, radius, _, keep = level
    batch, _, height, width = images.shape
    device, dtype = images.device, images.dtype
    # the reference zooms the centre of an H x W noise field; drawing just that centre is the same in law
    crop_h, crop_w = math.ceil(height / zoom), math.ceil(width / zoom)
    flakes = torch.randn(batch, 1, crop_h, crop_w, generator=generator, device=device, dtype=dtype) * std + mean
    zoomed_h, zoomed_w = round(crop_h * zoom), round(crop_w * zoom)
    flakes = F.interpolate(flakes, size=(zoomed_h, zoomed_w), mode="bilinear", align_corners=True)
    top, left = (zoomed_h - height) // 2, (zoomed_w - width) // 2
    flakes = flakes[..., top:top + height, left:left + width]
    flakes = torch.where(flakes < threshold, torch.zeros_like(flakes), flakes)
    angles = _uniform((batch,), -135.0, -45.0, generator, device, dtype)
    flakes = filter2d(flakes, motion_kernels(radius, angles)).clamp(0, 1)  # a streak per image
    grey = (images * torch.tensor([0.299, 0.587, 0.114], device=device, dtype=dtype).view(1, 3, 1, 1)).sum(1, True)
    out = torch.maximum(images, grey * 1.5 + 0.5).lerp_(images, keep)  # keep * image + (1 - keep) * whitened
    return out.add_(flakes + flakes.flip(-2, -1))


# ----------------------------------------------------------------------------------------------- frost

# Each of our six frost textures: mean colour (RGB), contrast (std), needle length (px), needle direction spread
# (radians) and needle count. Colour and contrast are calibrated so that each texture corrupts the bundled photos as
# strongly (PSNR against the clean photo, at severities 1, 3 and 5) as the reference's frost photo it stands in for.
_FROST_STYLES = (
    ((0.29, 0.56, 0.63), 0.079, 60.0, 2.4, 400),
    ((0.76, 0.78, 0.81), 0.099, 50.0, math.pi, 500),
    ((0.79, 0.81, 0.84), 0.109, 40.0, math.pi, 620),
    ((0.57, 0.63, 0.68), 0.121, 35.0, 1.2, 560),
    ((0.40, 0.44, 0.49), 0.168, 30.0, math.pi, 730),
    ((0.32, 0.41, 0.45), 0.176, 70.0, 2.0, 340),
)
_FROST_SIZE = 384


def _fractal_noise(size: int, generator: torch.Generator, cells: tuple[int, ...], gain: float = 0.6) -> Tensor:
    """Zero-mean, unit-variance value noise summed over octaves (``cells`` lattice cells across)."""
    total = torch.zeros(1, 1, size, size)
    amplitude, power = 1.0, 0.0
    for count in cells:
        lattice = torch.randn(1, 1, count + 1, count + 1, generator=generator)
        total += amplitude * F.interpolate(lattice, size=(size, size), mode="bilinear", align_corners=True)
        power += amplitude ** 2
        amplitude *= gain
    return total[0, 0] / math.sqrt(power)


def _splat(canvas: Tensor, rows: Tensor, columns: Tensor, weights: Tensor) -> None:
    """Add ``weights`` at sub-pixel positions into a square canvas, bilinearly, wrapping at the edges."""
    size = canvas.shape[0]
    top, left = rows.floor(), columns.floor()
    down, right = rows - top, columns - left
    top, left = top.long() % size, left.long() % size
    bottom, after = (top + 1) % size, (left + 1) % size
    top, bottom = top * size, bottom * size
    upper, lower = weights * (1 - down), weights * down
    flat = canvas.view(-1)
    flat.index_add_(0, top + left, upper * (1 - right))
    flat.index_add_(0, top + after, upper * right)
    flat.index_add_(0, bottom + left, lower * (1 - right))
    flat.index_add_(0, bottom + after, lower * right)


def _needles(size: int, generator: torch.Generator, count: int, length: float, spread: float,
             branches: int) -> Tensor:
    """Ice needles: random segments (log-normal lengths, tapered), each with short side branches at about
    60 degrees, drawn into a (size, size) canvas."""
    canvas = torch.zeros(size, size)
    rows, columns = torch.rand(count, generator=generator) * size, torch.rand(count, generator=generator) * size
    direction = torch.rand(1, generator=generator) * math.pi
    angle = direction + (torch.rand(count, generator=generator) - 0.5) * spread
    span = length * torch.exp(0.5 * torch.randn(count, generator=generator)).clamp(max=2.5)
    brightness = 0.4 + 0.6 * torch.rand(count, generator=generator)
    steps = max(12, int(2.5 * length))  # points per needle: at most a pixel apart
    along = torch.linspace(-0.5, 0.5, steps)
    sin, cos = torch.sin(angle)[:, None], torch.cos(angle)[:, None]
    taper = 1 - (2 * along) ** 2
    _splat(canvas, (rows[:, None] + along * span[:, None] * sin).flatten(),
           (columns[:, None] + along * span[:, None] * cos).flatten(),
           (brightness[:, None] * taper * span[:, None] * (2 / steps)).flatten())
    if branches:
        where = torch.rand(count, branches, generator=generator) - 0.5
        side = torch.where(torch.rand(count, branches, generator=generator) < 0.5, -1.0, 1.0)
        turn = angle[:, None] + side * (math.pi / 3 + 0.15 * torch.randn(count, branches, generator=generator))
        reach = span[:, None] * (0.12 + 0.18 * torch.rand(count, branches, generator=generator)) * (1 - 2 * where.abs())
        start_r = rows[:, None] + where * span[:, None] * sin
        start_c = columns[:, None] + where * span[:, None] * cos
        t = torch.linspace(0, 1, max(steps // 4, 8))
        _splat(canvas, (start_r[..., None] + t * (reach * torch.sin(turn))[..., None]).flatten(),
               (start_c[..., None] + t * (reach * torch.cos(turn))[..., None]).flatten(),
               (0.7 * brightness[:, None, None] * (1 - t) * reach[..., None] * (2 / len(t))).flatten())
    return canvas


def _wrap_blur(image: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of a (size, size) map that wraps around (the textures tile)."""
    radius = int(3 * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(image[None, None], (radius,) * 4, mode="circular")
    return F.conv2d(F.conv2d(padded, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))[0, 0]


def _frost_texture(index: int) -> Tensor:
    """Our frost image number ``index`` (0-5): a (3, 384, 384) texture in [0, 1], from a fixed seed."""
    colour, contrast, length, spread, count = _FROST_STYLES[index]
    generator = torch.Generator().manual_seed(20190 + index)
    clouds = _fractal_noise(_FROST_SIZE, generator, (4, 8, 16, 32, 64, 128))
    crystals = _needles(_FROST_SIZE, generator, count, length, spread, branches=8)
    crystals += _needles(_FROST_SIZE, generator, 4 * count, length / 6, math.pi, branches=0)
    crystals = _wrap_blur(crystals, 0.45)
    density = torch.sigmoid(2.5 * _fractal_noise(_FROST_SIZE, generator, (2, 4, 8)))
    ice = (1 - torch.exp(-2 * crystals)) * (0.2 + density)
    pattern = 0.5 * clouds + ice + 0.8 * _wrap_blur(ice, 4.0)
    pattern = (pattern - pattern.mean()) / pattern.std()
    return (torch.tensor(colour)[:, None, None] + contrast * pattern).clamp(0, 1)


@functools.lru_cache(maxsize=1)
def _frost_bank() -> Tensor:
    """Our six frost images at their native size, drawn once per process on the CPU."""
    return torch.stack([_frost_texture(index) for index in range(len(_FROST_STYLES))])


@functools.lru_cache(maxsize=8)
def frost_textures(device: str = "cpu", min_size: int = _FROST_SIZE) -> Tensor:
    """Our six procedural frost images as a (6, 3, S, S) batch on ``device``, S = max(384, ``min_size``).

    They are drawn from fixed seeds, so every run and device sees the same frost; images bigger than 384 px get
    the textures enlarged (bilinear) to cover them, as the reference enlarges its photos.
    """
    bank = _frost_bank()
    if min_size > _FROST_SIZE:
        bank = F.interpolate(bank, size=(min_size, min_size), mode="bilinear", align_corners=False).clamp(0, 1)
    return bank.to(device)


@corruption("frost", "weather", ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)))
def frost(images: Tensor, level: tuple[float, float], generator: torch.Generator) -> Tensor:
    """c0 * image + c1 * frost, the frost a random crop of a random one of our six frost images."""
    keep, strength = level
    batch, _, height, width = images.shape
    bank = frost_textures(str(images.device), max(_FROST_SIZE, height, width))
    size = bank.shape[-1]
    choice = torch.randint(0, len(bank), (batch,), generator=generator, device=images.device).tolist()
    tops = torch.randint(0, size - height + 1, (batch,), generator=generator, device=images.device).tolist()
    lefts = torch.randint(0, size - width + 1, (batch,), generator=generator, device=images.device).tolist()
    out = torch.stack([bank[k, :, top:top + height, left:left + width]
                       for k, top, left in zip(choice, tops, lefts)]).to(images.dtype)
    return out.mul_(strength).add_(images, alpha=keep)


# ----------------------------------------------------------------------------------------------- spatter

_MUD = (63 / 255, 42 / 255, 20 / 255)


def _opencv_radius(sigma: float) -> int:
    """The kernel radius OpenCV's GaussianBlur picks for float images when ksize is (0, 0)."""
    return (int(math.floor(sigma * 8 + 1 + 0.5)) | 1) // 2


@corruption("spatter", "weather", (
    (0.80, 1.0, 0.35),
    (0.75, 1.2, 0.45),
    (0.70, 1.5, 0.55),
    (0.67, 1.8, 0.65),
    (0.64, 2.2, 0.75),
))
def spatter(images: Tensor, level: tuple[float, float, float], generator: torch.Generator) -> Tensor:
    """Mud splashes where smoothed noise (sigma c1, rescaled to [0, 1]) exceeds c0, blended in with weight c2."""
    threshold, sigma, strength = level
    batch, _, height, width = images.shape
    liquid = torch.randn(batch, 1, height, width, generator=generator, device=images.device, dtype=images.dtype)
    liquid = gaussian_filter(liquid, sigma, truncate=4.0, mode="symmetric")
    liquid = liquid - liquid.amin((2, 3), keepdim=True)
    liquid = liquid / (liquid.amax((2, 3), keepdim=True) + 1e-8)
    mask = (liquid > threshold).to(images.dtype)
    soft = max(0.5, sigma / 2)
    mask = gaussian_filter(mask, soft, truncate=_opencv_radius(soft) / soft, mode="reflect").clamp(0, 1)
    mud = torch.tensor(_MUD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return torch.lerp(images, mud, strength * mask)
