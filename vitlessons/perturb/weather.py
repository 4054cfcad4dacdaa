"""Weather corruptions: snow, frost, fog and spatter, batched on the images' device.

Batched versions of the ImageNet-C weather corruptions as the original code defines them
(``ImageNet-C/create_c/make_imagenet_c.py`` in hendrycks/robustness; Hendrycks & Dietterich, 2019), with its
per-severity parameters; every image of a batch draws its own randomness from the ``torch.Generator`` it is
given. Spatial parameters are in pixels, published for 224 px images, and kept as they are at other sizes.

* snow: Gaussian noise (mean c0, std c1) zoomed in by c2 (bilinear, corners aligned, as scipy's ``zoom``),
  cut below c3 and clipped to [0, 1], streaked by ImageMagick's motion blur (radius c4, sigma c5, one-sided;
  ``blur.motion_filter``) at an angle uniform in [-135, -45] degrees, and added twice (once upside down) to the
  image, which is first whitened towards 1.5 * grey + 0.5 (weight 1 - c6). The original passes the layer to
  ImageMagick and back as 8-bit PNG (truncated before the blur, rounded after); we keep floats.
* frost: c0 * image + c1 * frost, the frost a random crop of one of the original's frost photos (``frost/``,
  shipped with their credit and licence), chosen as its ``np.random.randint(5)`` chooses (never its sixth, which is not shipped),
  at the photo's own scale, the crop's corner uniform over ``[0, h - H) x [0, w - W)`` as its ``randint``.
  Images up to 314 x 526 px fit inside every photo, as 224 px ones do; a photo that an image does not fit
  strictly inside is enlarged (bicubic) by 1.1 times the factor that makes it as big as the image, as
  imagecorruptions does, so bigger images get the same frost, coarser.
* fog: a plasma fractal (diamond-square) of roughness decay c1, scaled by c0, added to the image, then the
  image rescaled so its maximum stays where it was.
* spatter: Gaussian noise (mean c0, std c1) smoothed by a Gaussian of sigma c2 and cut below c3. Severities
  1-3 (c5 = 0) pour water: the original shades the drops with a chain of OpenCV steps on the 8-bit layer
  (Canny edges, a distance transform truncated at 20 px, a box blur, histogram equalisation, an emboss filter,
  another box blur), which ``canny_edges``, ``chamfer_distance`` and ``equalize_hist`` reproduce bit for bit,
  batched, and adds the shade, scaled to c4 at its maximum, in pale turquoise. Severities 4-5 (c5 = 1) throw
  mud: the drops' mask smoothed by a Gaussian of sigma c4, kept where it reaches 0.8, blends the image
  towards mud brown.
"""

from __future__ import annotations

import functools
import math
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from vitlessons.perturb.blur import _by_chunks, gaussian_filter, motion_filter, pad2d
from vitlessons.perturb.registry import corruption
from vitlessons.tensors import work_dtype

__all__ = ["FROST_FILES", "canny_edges", "chamfer_distance", "equalize_hist", "frost_photos", "plasma_fractal"]


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator,
             device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniform samples in [low, high) drawn from ``generator``."""
    return torch.rand(shape, generator=generator, device=device, dtype=dtype) * (high - low) + low


# ----------------------------------------------------------------------------------------------- fog

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
    """Add c0 times a plasma fractal of decay c1 (one per image), then scale so the brightest value is kept."""
    strength, decay = level
    batch, _, height, width = images.shape
    size = 1 << (max(height, width) - 1).bit_length()  # the original's 256 for 224 px, cropped at the top left
    haze = plasma_fractal(batch, size, decay, generator, images.device)[:, None, :height, :width]
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
    """Falling snow: zoomed, thresholded noise streaked by motion blur, over a whitened image (see the module)."""
    mean, std, zoom, threshold, radius, sigma, keep = level
    batch, _, height, width = images.shape
    device, dtype = images.device, images.dtype
    # the original zooms the centre of an H x W noise field; drawing just that centre is the same in law
    crop_h, crop_w = math.ceil(height / zoom), math.ceil(width / zoom)
    flakes = torch.randn(batch, 1, crop_h, crop_w, generator=generator, device=device, dtype=dtype) * std + mean
    zoomed_h, zoomed_w = round(crop_h * zoom), round(crop_w * zoom)
    flakes = F.interpolate(flakes, size=(zoomed_h, zoomed_w), mode="bilinear", align_corners=True)
    top, left = (zoomed_h - height) // 2, (zoomed_w - width) // 2
    flakes = flakes[..., top:top + height, left:left + width]
    flakes = flakes.masked_fill(flakes < threshold, 0).clamp_(0, 1)
    angles = _uniform((batch,), -135.0, -45.0, generator, device, dtype)
    flakes = motion_filter(flakes, radius, sigma, angles)  # a streak per image
    grey = (images * torch.tensor([0.299, 0.587, 0.114], device=device, dtype=dtype).view(1, 3, 1, 1)).sum(1, True)
    out = torch.maximum(images, grey * 1.5 + 0.5).lerp_(images, keep)  # keep * image + (1 - keep) * whitened
    return out.add_(flakes + flakes.flip(-2, -1))


# ----------------------------------------------------------------------------------------------- frost

FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")  # the original lists a sixth
# photo, frost6.jpg, but draws np.random.randint(5), which never picks it: it is not shipped


@functools.lru_cache(maxsize=1)
def _frost_files() -> tuple[Tensor, ...]:
    """The frost photos the original draws from, as uint8 (h, w, 3) tensors, read once per process."""
    folder = resources.files(__package__) / "frost"
    photos = []
    for name in FROST_FILES:
        with (folder / name).open("rb") as file, Image.open(file) as image:
            photos.append(torch.from_numpy(np.array(image.convert("RGB"))))  # frost1-3 are RGBA: alpha dropped
    return tuple(photos)


@functools.lru_cache(maxsize=8)
def frost_photos(device: str = "cpu", height: int = 224, width: int = 224) -> tuple[Tensor, Tensor]:
    """The frost photos for ``height`` x ``width`` images, cached on ``device``: (photos, sizes) (see ``frost``)."""
    photos = []
    for photo in _frost_files():
        photo = photo.permute(2, 0, 1)
        photo_h, photo_w = photo.shape[1:]
        if photo_h <= height or photo_w <= width:  # enlarged as imagecorruptions does; the original never needs to
            scale = 1.1 * max(height / photo_h, width / photo_w)
            size = (math.ceil(photo_h * scale), math.ceil(photo_w * scale))
            photo = F.interpolate(photo[None].float(), size=size, mode="bicubic", align_corners=False)[0]
            photo = photo.round_().clamp_(0, 255).to(torch.uint8)
        photos.append(photo)
    sizes = torch.tensor([photo.shape[1:] for photo in photos])
    bank = torch.zeros(len(photos), 3, *sizes.amax(0).tolist(), dtype=torch.uint8)  # each in its top-left corner
    for index, photo in enumerate(photos):
        bank[index, :, :photo.shape[1], :photo.shape[2]] = photo
    return bank.to(device), sizes.to(device)


@corruption("frost", "weather", ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)))
def frost(images: Tensor, level: tuple[float, float], generator: torch.Generator) -> Tensor:
    """c0 * image + c1 * frost, the frost a random crop of a random one of the original's frost photos."""
    keep, strength = level
    batch, _, height, width = images.shape
    device = images.device
    bank, sizes = frost_photos(str(device), height, width)
    choice = torch.randint(0, len(sizes), (batch,), generator=generator, device=device)
    room = sizes[choice] - torch.tensor([height, width], device=device)  # corners in [0, room), as randint's
    corner = (torch.rand(batch, 2, generator=generator, device=device) * room).long().minimum(room - 1)
    out = torch.empty_like(images)
    for index, (photo, top, left) in enumerate(torch.cat([choice[:, None], corner], 1).tolist()):
        out[index] = bank[photo, :, top:top + height, left:left + width]  # a copy per image beats a gather
    return out.mul_(strength / 255).add_(images, alpha=keep)


# ----------------------------------------------------------------------------------------------- spatter

_TURQUOISE = (175 / 255, 238 / 255, 238 / 255)  # the original's "water is pale turquoise"
_MUD = (63 / 255, 42 / 255, 20 / 255)  # and "mud brown"
_EMBOSS = ((-2.0, -1.0, 0.0), (-1.0, 1.0, 1.0), (0.0, 1.0, 2.0))  # the filter2D kernel that shades the water
_TAN_22_5 = 13573 / 32768  # OpenCV Canny's tan(22.5 degrees), in 15-bit fixed point: exact in float32 products
_CHAMFER = (1.0, 1.399999976158142, 2.196899890899658)  # OpenCV's 5x5 DIST_L2 steps, float32: axis, diagonal, knight


@corruption("spatter", "weather", (
    (0.65, 0.3, 4, 0.69, 0.6, 0),
    (0.65, 0.3, 3, 0.68, 0.6, 0),
    (0.65, 0.3, 2, 0.68, 0.5, 0),
    (0.65, 0.3, 1, 0.65, 1.5, 1),
    (0.67, 0.4, 1, 0.65, 1.5, 1),
))
def spatter(images: Tensor, level: tuple, generator: torch.Generator) -> Tensor:
    """Water (severities 1-3) or mud (4-5) splashed where smoothed noise rises above a threshold (see the module)."""
    mean, std, sigma, threshold, spread, mud = level
    batch, _, height, width = images.shape
    device, dtype = images.device, work_dtype(images)
    liquid = torch.randn(batch, 1, height, width, generator=generator, device=device, dtype=dtype) * std + mean
    liquid = gaussian_filter(liquid, sigma)  # skimage's gaussian: truncated at 4 sigma, edges repeated
    liquid = liquid.masked_fill_(liquid < threshold, 0)[:, 0]
    if not mud:
        return _water(images, liquid, spread)
    mask = gaussian_filter((liquid > threshold).to(dtype), spread)
    mask = mask.masked_fill_(mask < 0.8, 0)[:, None].to(images.dtype)
    return torch.lerp(images, torch.tensor(_MUD, device=device, dtype=images.dtype).view(1, 3, 1, 1), mask)


def _water(images: Tensor, liquid: Tensor, strength: float) -> Tensor:
    """The original's water: its OpenCV chain shades the 8-bit drops, and the shade is added in pale turquoise."""
    layer = (liquid * 255).floor_().float()  # np.uint8(layer * 255); the layer stays well below 1
    edges = _by_chunks(lambda chunk: canny_edges(chunk, 50, 150), layer)  # a few at a time on a CPU: in cache
    distance = chamfer_distance(edges, 20.0)  # distanceTransform, then threshold(THRESH_TRUNC) at 20
    shade = _box3(distance).div_(9).floor_()  # cv2.blur, then .astype(np.uint8)
    shade = _box3(_correlate3(equalize_hist(shade), _EMBOSS).clamp_(0, 255)).div_(9).round_()  # 8-bit filters
    shade = shade.mul_(layer)
    shade = shade.div_(shade.amax((1, 2), keepdim=True).clamp_(min=1)).mul_(strength)  # no drops: no shade
    turquoise = torch.tensor(_TURQUOISE, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return torch.addcmul(images, shade[:, None].to(images.dtype), turquoise)


def _box3(maps: Tensor) -> Tensor:
    """The 3x3 sums of (B, H, W) maps, edges mirrored without repeating (OpenCV's default border)."""
    padded = pad2d(maps, 1, 1, "reflect")
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]


def _correlate3(maps: Tensor, kernel: tuple[tuple[float, ...], ...]) -> Tensor:
    """``cv2.filter2D`` of (B, H, W) maps with a 3x3 kernel, edges mirrored without repeating."""
    height, width = maps.shape[-2:]
    padded = pad2d(maps, 1, 1, "reflect")
    out = torch.zeros_like(maps)
    for dy, row in enumerate(kernel):
        for dx, weight in enumerate(row):
            if weight:
                out.add_(padded[:, dy:dy + height, dx:dx + width], alpha=weight)
    return out


def _dilate(mask: Tensor) -> Tensor:
    """Grow a (B, H, W) bool mask by one pixel in all eight directions."""
    padded = F.pad(mask, (1, 1, 1, 1))
    rows = padded[:, :-2] | padded[:, 1:-1] | padded[:, 2:]
    return rows[..., :-2] | rows[..., 1:-1] | rows[..., 2:]


def canny_edges(layer: Tensor, low: float, high: float) -> Tensor:
    """OpenCV's ``Canny(layer, low, high)`` (3x3 Sobel, L1 gradient) of (B, H, W) 8-bit float maps, as bools."""
    height, width = layer.shape[-2:]
    padded = pad2d(layer, 1, 1, "nearest")  # Canny's Sobel repeats the edge pixels
    across = padded[..., 2:] - padded[..., :-2]
    gx = torch.add(across[:, :-2], across[:, 2:]).add_(across[:, 1:-1], alpha=2)
    smooth = torch.add(padded[..., :-2], padded[..., 2:]).add_(padded[..., 1:-1], alpha=2)
    gy = smooth[:, 2:] - smooth[:, :-2]
    ax, ay = gx.abs(), gy.abs()
    magnitude = ax + ay
    around = F.pad(magnitude, (1, 1, 1, 1))  # no neighbours outside the image

    def neighbour(dy: int, dx: int) -> Tensor:
        return around[:, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]

    # non-maximum suppression in OpenCV's integer form: |gy| 2^15 < |gx| 13573 is within 22.5 degrees of the
    # x axis, |gy| 2^15 > |gx| (13573 + 2^16) within 22.5 degrees of the y axis, else a diagonal; a peak is above
    # the neighbour before it and at least the one after it, above both on a diagonal (the magnitudes are
    # integers, so above is at least + 0.5)
    slope = ax * _TAN_22_5
    along_x = ay < slope
    along_y = torch.sub(ay, ax, alpha=2) > slope
    falling = (gx < 0) == (gy < 0)  # the diagonal from top left to bottom right
    before = torch.where(along_x, neighbour(0, -1), torch.where(
        along_y, neighbour(-1, 0), torch.where(falling, neighbour(-1, -1), neighbour(-1, 1))))
    after = torch.where(along_x, neighbour(0, 1), torch.where(
        along_y, neighbour(1, 0), torch.where(falling, neighbour(1, 1), neighbour(1, -1)).add_(0.5)))
    peak = (magnitude > before) & (magnitude >= after)
    candidates = peak & (magnitude > low)
    edges = candidates & (magnitude > high)
    while True:  # hysteresis: candidates joined to an edge through their eight neighbours become edges
        previous = edges
        for _ in range(4):
            edges = _dilate(edges) & candidates
        if torch.equal(edges, previous):
            return edges


def chamfer_distance(edges: Tensor, cap: float) -> Tensor:
    """OpenCV's ``distanceTransform(~edges, DIST_L2, 5)`` of (B, H, W) bools, capped at ``cap``, bit for bit."""
    batch, height, width = edges.shape
    # OpenCV's two raster passes, in float32, one row at a time for all images at once. A path that crosses
    # ``cap`` rows costs at least ``cap``, so the map is cut into strips that each start ``cap`` rows early and
    # all run at once: the same numbers in fewer steps.
    halo = math.ceil(cap)
    strip = max(halo, math.ceil(height / _CHAMFER_STRIPS))
    count = math.ceil(height / strip)

    def strips(maps: Tensor, early: bool, fill: float) -> Tensor:  # (B * count, strip + halo, W), overlapping
        before, after = (halo, count * strip - height) if early else (0, count * strip - height + halo)
        padded = F.pad(maps[:, None].float(), (0, 0, before, after), value=fill)[:, 0]
        return padded.unfold(1, strip + halo, strip).transpose(2, 3).reshape(batch * count, strip + halo, width)

    def join(parts: Tensor, skip: int) -> Tensor:
        return parts[:, skip:skip + strip].reshape(batch, count * strip, width)[:, :height]

    down = join(_chamfer_pass(strips(edges, True, 0.0), cap, True), halo)
    return join(_chamfer_pass(strips(down, False, cap), cap, False), 0).clamp_(max=cap)


_CHAMFER_STRIPS = 8  # strips of the map the distance transform runs at once


def _chamfer_pass(maps: Tensor, cap: float, forward: bool) -> Tensor:
    """One of OpenCV's two distance passes over (N, R, W) maps: forward from edges (1s), or back over its result."""
    count, rows, width = maps.shape  # values at or above ``cap`` stand for 'far'
    gap = math.ceil(cap) + 4  # columns between one map's row and the next: 2 border columns each, and room to fade
    span = count * (width + gap)
    # each grid row holds the row of every map side by side, so every step below is on contiguous memory;
    # a map's row sits ``gap`` columns after the one before, so nothing under ``cap`` leaks from one into the next
    if forward:  # ceilings: 0 on the edges, ``cap`` elsewhere (a minimum is quicker than a masked fill)
        maps = maps.mul(-cap).add_(cap)
    layout = F.pad(maps.transpose(0, 1), (2, gap - 2), value=cap).reshape(rows, span)
    # floors that set the two columns each side of a row back to ``cap`` (elsewhere -inf)
    border = F.pad(maps.new_full((1, width), -math.inf), (2, 2), value=cap)
    border = F.pad(border, (0, gap - 4), value=-math.inf).expand(count, -1).reshape(span)
    grid = maps.new_empty(rows + 4, span + 4)
    grid[:2], grid[-2:], grid[:, :2], grid[:, -2:] = cap, cap, cap, cap
    if not forward:
        grid[2:-2, 2:-2] = layout
    axis, diagonal, knight = (maps.new_tensor(value) for value in _CHAMFER)  # 0-d: no scalar wrapping per step
    shifts = []
    shift = 1
    while shift < cap:  # doubling along the row reaches ``cap`` pixels
        shifts.append((shift, maps.new_tensor(float(shift))))
        shift *= 2
    best, spare = maps.new_empty(span), maps.new_empty(span)
    step = 1 if forward else -1
    for i in range(rows) if forward else range(rows - 1, -1, -1):
        near, far, row = grid[i + 2 - step], grid[i + 2 - 2 * step], grid[i + 2, 2:-2]
        torch.minimum(far[1:-3], far[3:-1], out=best)  # the knight's moves two rows away
        torch.minimum(best, near[:-4], out=best)
        torch.minimum(best, near[4:], out=best).add_(knight)
        torch.minimum(near[1:-3], near[3:-1], out=spare).add_(diagonal)
        torch.minimum(best, spare, out=best)
        torch.add(near[2:-2], axis, out=spare)
        torch.minimum(best, spare, out=best)
        torch.minimum(best, layout[i] if forward else row, out=row)
        for shift, length in shifts:  # along the row, each pixel from the one ``shift`` back plus ``shift``
            ahead, behind = (row[shift:], row[:-shift]) if forward else (row[:-shift], row[shift:])
            torch.add(behind, length, out=spare[:span - shift])
            torch.minimum(ahead, spare[:span - shift], out=ahead)
        torch.maximum(row, border, out=row)
    return grid[2:-2, 2:-2].reshape(rows, count, width + gap)[..., 2:width + 2].transpose(0, 1)


def equalize_hist(values: Tensor) -> Tensor:
    """OpenCV's ``equalizeHist`` of each map of a (B, H, W) batch of 8-bit values held as floats."""
    batch = values.shape[0]
    levels = values.long().view(batch, -1)
    counts = torch.zeros(batch, 256, dtype=torch.long, device=values.device)
    counts.scatter_add_(1, levels, torch.ones_like(levels))
    total = levels.shape[1]
    lowest = (counts > 0).long().argmax(1, keepdim=True)  # the first level in use maps to 0
    at_lowest = counts.gather(1, lowest)
    scale = torch.tensor(255.0, device=values.device) / (total - at_lowest).float()  # float32, as OpenCV
    table = ((counts.cumsum(1) - at_lowest).float() * scale).round_().clamp_(0, 255)
    table = torch.where(at_lowest == total, lowest.float(), table)  # one level only: left as it is
    return table.gather(1, levels).view_as(values)
