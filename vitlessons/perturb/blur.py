"""ImageNet-C blur corruptions as batched tensor operations: defocus, glass, motion, zoom and gaussian blur.

Each function takes a float (B, 3, H, W) batch in [0, 1], the parameter of one severity and a
``torch.Generator`` on the batch's device. The definition is ImageNet-C's own code (make_imagenet_c.py,
Hendrycks & Dietterich, 2019): its parameters, in pixels for 224 px images; other sizes keep the same pixel
values. Borders follow the original: OpenCV's default BORDER_REFLECT_101 (``dcb|abcd|cba``) for defocus's
kernel, ImageMagick's repeated edge for motion blur and scikit-image's ``mode='nearest'`` (``aaa|abcd|ddd``)
for gaussian blurs, for any kernel size, even one larger than the image.

The filtering helpers (``pad2d``, ``gaussian_filter``, ``filter2d``, ``disk_kernel``, ``motion_kernels``,
``motion_filter``) are public, so other corruptions can reuse them. On a CPU the batch is processed a few
images at a time, which keeps the working data in cache; elsewhere all at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vitlessons.perturb.registry import corruption
from vitlessons.tensors import work_dtype

__all__ = [
    "BORDERS", "defocus_blur", "disk_kernel", "filter2d", "gaussian_blur", "gaussian_filter", "gaussian_kernel1d",
    "glass_blur", "glass_sources", "motion_blur", "motion_filter", "motion_kernels", "motion_offsets", "pad2d",
    "zoom_blur",
]


# --------------------------------------------------------------------------------------------------------
# Padding and filtering

BORDERS = ("reflect", "symmetric", "nearest")  # dcb|abcd|cba (OpenCV's default), cba|abcd|dcb, aaa|abcd|ddd


def _check_border(mode: str) -> None:
    """Refuse a border rule we do not implement, rather than mirror by a different one."""
    if mode not in BORDERS:
        raise ValueError(f"unknown border mode {mode!r}; use one of {', '.join(BORDERS)}")


def _border_index(size: int, pad: int, mode: str, device: torch.device, after: int | None = None) -> Tensor:
    """Source index of each position ``-pad .. size + after - 1`` along one axis (``after``: ``pad`` unless given;
    a negative one crops), so any border rule is one index_select."""
    _check_border(mode)
    index = torch.arange(-pad, size + (pad if after is None else after), device=device)
    if mode == "nearest" or size == 1:
        return index.clamp(0, size - 1)
    period = 2 * size if mode == "symmetric" else 2 * (size - 1)  # mirrors are periodic: any pad works
    index = index.remainder(period)
    return torch.where(index >= size, period - index - int(mode == "symmetric"), index)


def pad2d(images: Tensor, pad_h: int, pad_w: int, mode: str = "reflect") -> Tensor:
    """Pad the last two axes by ``pad_h`` and ``pad_w`` on each side, by one of the ``BORDERS``.

    ``'reflect'`` mirrors without repeating the edge (OpenCV's BORDER_REFLECT_101, torch's 'reflect'),
    ``'symmetric'`` repeats it (SciPy's 'reflect'), ``'nearest'`` repeats the edge pixel. Unlike ``F.pad`` it
    accepts pads wider than the image.
    """
    _check_border(mode)
    height, width = images.shape[-2:]
    if mode == "nearest" or (mode == "reflect" and pad_h < height and pad_w < width):  # torch's is quicker
        shape = images.shape
        flat = images.reshape(-1, 1, height, width)  # 4-D for any number of leading axes
        padded = F.pad(flat, (pad_w, pad_w, pad_h, pad_h), mode="replicate" if mode == "nearest" else "reflect")
        return padded.view(*shape[:-2], height + 2 * pad_h, width + 2 * pad_w)
    if pad_h:
        images = images.index_select(-2, _border_index(height, pad_h, mode, images.device))
    if pad_w:
        images = images.index_select(-1, _border_index(width, pad_w, mode, images.device))
    return images


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype: torch.dtype = torch.float32,
                      device: torch.device | str = "cpu") -> Tensor:
    """The normalised 1-D gaussian of scipy.ndimage: radius ``int(truncate * sigma + 0.5)``."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (x / sigma) ** 2)
    return (weights / weights.sum()).to(dtype=dtype, device=device)


def _band_matrix(kernel: Tensor, size: int, mode: str) -> Tensor:
    """The (size, size) matrix A with (A @ x)[i] = sum_t kernel[t] * x[i + t - r], borders by ``mode``."""
    radius = kernel.numel() // 2
    windows = _border_index(size, radius, mode, kernel.device).unfold(0, kernel.numel(), 1)
    matrix = torch.zeros(size, size, dtype=kernel.dtype, device=kernel.device)
    return matrix.scatter_add_(1, windows, kernel.expand(size, -1).contiguous())


def _filter_axis(images: Tensor, kernel: Tensor, axis: int, mode: str) -> Tensor:
    """Correlate a (..., H, W) tensor with a 1-D kernel along ``axis`` (-2 or -1), borders by ``mode``.

    Narrow kernels: a weighted sum of shifted views of the padded tensor (on a CPU several times quicker
    than a depthwise convolution). Wide ones: a product with a banded matrix that holds the kernel and
    the border rule.
    """
    size, radius = images.shape[axis], kernel.numel() // 2
    if radius == 0:
        return images * kernel.item()
    if radius > 12 or radius >= size:
        matrix = _band_matrix(kernel, size, mode)
        return matrix @ images if axis == -2 else images @ matrix.T
    padded = pad2d(images, radius, 0, mode) if axis == -2 else pad2d(images, 0, radius, mode)
    weights = kernel.tolist()
    out = padded.narrow(axis, 0, size) * weights[0]
    for offset in range(1, len(weights)):
        out.add_(padded.narrow(axis, offset, size), alpha=weights[offset])
    return out


def separable_filter(images: Tensor, kernel: Tensor, mode: str = "nearest") -> Tensor:
    """Correlate the last two axes with ``kernel`` along the rows, then along the columns."""
    kernel = kernel.to(dtype=images.dtype, device=images.device)
    return _filter_axis(_filter_axis(images, kernel, -2, mode), kernel, -1, mode)


def gaussian_filter(images: Tensor, sigma: float, truncate: float = 4.0, mode: str = "nearest") -> Tensor:
    """Gaussian blur of the last two axes (each channel), as scipy.ndimage's ``gaussian_filter``.

    Separable, radius ``int(truncate * sigma + 0.5)``; ``mode`` is one of the ``BORDERS``: the default
    'nearest' is ``skimage.filters.gaussian`` as ImageNet-C calls it, 'symmetric' SciPy's default, and
    'reflect' with ``truncate=4`` OpenCV's ``GaussianBlur`` with ``ksize=(0, 0)`` on float images.
    """
    kernel = gaussian_kernel1d(sigma, truncate)
    return _by_chunks(lambda chunk: separable_filter(_work(chunk), kernel, mode).to(images.dtype), images)


def _fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c 7^d at least ``n``, a size FFTs are fast at."""
    while True:
        m = n
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def filter2d(images: Tensor, kernel: Tensor, mode: str = "reflect") -> Tensor:
    """Correlate each channel with an odd (k, k) kernel or one (B, k, k) kernel per image about its centre, as
    ``cv2.filter2D(x, -1, kernel)`` (its default border is mode 'reflect'), in the Fourier domain: large kernels
    (motion blur's reach 81 x 81) are cheaper there."""
    # The image is extended by the kernel's reach on each side, so the circular correlation never wraps into the
    # part we keep: exact up to float rounding. Rows and columns that are zero in every kernel are dropped first,
    # so a one-sided kernel (motion blur's) extends the image on one side only.
    size = kernel.shape[-1]
    if kernel.shape[-2] != size or size % 2 == 0 or kernel.ndim not in (2, 3):
        raise ValueError(f"the kernel must be (k, k) or (B, k, k) with k odd, got {tuple(kernel.shape)}")
    if kernel.ndim == 3 and kernel.shape[0] != images.shape[0]:
        raise ValueError(f"{kernel.shape[0]} kernels for {images.shape[0]} images")
    _check_border(mode)
    height, width = images.shape[-2:]
    radius = size // 2
    support = kernel.detach().reshape(-1, size, size).ne(0).any(0).cpu()
    if not support.any():
        return torch.zeros_like(images)
    rows, columns = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
    top, bottom, left, right = (int(i) - radius for i in (rows[0], rows[-1], columns[0], columns[-1]))
    kernel = kernel[..., top + radius:bottom + radius + 1, left + radius:right + radius + 1]
    shape = (_fft_size(height + bottom - top), _fft_size(width + right - left))
    kernel = kernel.to(dtype=work_dtype(images), device=images.device)

    def correlate(chunk: Tensor, kernel_spectrum: Tensor) -> Tensor:
        extended = _extend(_work(chunk), top, bottom, left, right, mode)
        spectrum = torch.fft.rfft2(extended, s=shape) * kernel_spectrum
        return torch.fft.irfft2(spectrum, s=shape)[..., :height, :width].to(images.dtype)

    if kernel.ndim == 2:
        kernel_spectrum = torch.fft.rfft2(kernel, s=shape).conj()
        return _by_chunks(lambda chunk: correlate(chunk, kernel_spectrum), images)
    return _by_chunks(lambda chunk, kernels: correlate(chunk, torch.fft.rfft2(kernels[:, None], s=shape).conj()),
                      images, kernel)


def _extend(images: Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> Tensor:
    """The (..., H, W) batch over rows ``top .. H - 1 + bottom`` and columns ``left .. W - 1 + right`` (outside
    pixels by the border rule ``mode``), so a one-sided kernel needs padding on one side only."""
    height, width = images.shape[-2:]
    pads = (-left, right, -top, bottom)
    if min(pads) >= 0 and (mode == "nearest" or (mode == "reflect" and max(pads) < min(height, width))):
        shape = images.shape  # torch's padding is quicker; it wants 4-D input
        flat = images.reshape(-1, 1, height, width)
        padded = F.pad(flat, pads, mode="replicate" if mode == "nearest" else "reflect")
        return padded.view(*shape[:-2], *padded.shape[-2:])
    images = images.index_select(-2, _border_index(height, -top, mode, images.device, bottom))
    return images.index_select(-1, _border_index(width, -left, mode, images.device, right))


def _work(images: Tensor) -> Tensor:
    """The batch in the precision the filters run in."""
    return images.to(work_dtype(images))


_CPU_CHUNK = 8  # images per step on a CPU: ~5 MB, so the passes over the data mostly stay in cache


def _by_chunks(function: Callable[..., Tensor], images: Tensor, *per_image: Tensor) -> Tensor:
    """``function`` applied to a CPU batch a few images at a time (other devices: all at once).

    ``per_image`` tensors (first axis the batch) are split alongside and passed on. The result is the same
    either way, up to float rounding; only memory traffic changes.
    """
    if images.device.type != "cpu" or images.shape[0] <= _CPU_CHUNK:
        return function(images, *per_image)
    out = None
    for start in range(0, images.shape[0], _CPU_CHUNK):
        part = function(images[start:start + _CPU_CHUNK], *(t[start:start + _CPU_CHUNK] for t in per_image))
        if out is None:
            out = part.new_empty((images.shape[0], *part.shape[1:]))
        out[start:start + part.shape[0]] = part  # copied while the part is still in cache (a cat is not)
    return out


# --------------------------------------------------------------------------------------------------------
# Kernels

def disk_kernel(radius: float, alias_blur: float, device: torch.device | str = "cpu") -> Tensor:
    """The defocus kernel of ImageNet-C: a flat disk, then a small gaussian blur against aliasing.

    The disk of the given radius is drawn on a 17 x 17 grid (radius <= 8) or a (2r + 1)-wide one, normalised
    to sum 1, and blurred by a 3 x 3 (5 x 5 beyond radius 8) gaussian of std ``alias_blur``, with reflected
    borders, as OpenCV's GaussianBlur does.
    """
    half, blur_size = (8, 3) if radius <= 8 else (int(radius), 5)
    line = torch.arange(-half, half + 1, dtype=torch.float64)
    disk = ((line[:, None] ** 2 + line[None, :] ** 2) <= radius ** 2).double()
    disk /= disk.sum()
    taps = torch.arange(blur_size, dtype=torch.float64) - (blur_size - 1) / 2
    gauss = torch.exp(-0.5 * (taps / alias_blur) ** 2)
    kernel = separable_filter(disk[None, None], gauss / gauss.sum(), mode="reflect")[0, 0]
    return kernel.float().to(device)


def motion_offsets(radius: float, angles: Tensor) -> tuple[Tensor, Tensor]:
    """The (dx, dy) pixel offsets of the taps of ImageMagick's motion blur, (N, 2 * ceil(radius) + 1) each, on the
    CPU, computed as its ``MotionBlurImage`` (effect.c) does, so ties round the same way."""
    # 2 * ceil(radius) + 1 taps (GetOptimalKernelWidth1D) along the angle (degrees; x right, y down), tap i at
    # (ceil(i * cos - 0.5), ceil(i * sin - 0.5)) from the pixel, cos and sin as ImageMagick forms them
    taps = 2 * math.ceil(radius) + 1
    theta = torch.deg2rad(angles.detach().cpu().double())[:, None]
    point_x, point_y = taps * torch.sin(theta), taps * torch.cos(theta)
    length = torch.hypot(point_x, point_y)
    i = torch.arange(taps, dtype=torch.float64)
    return torch.ceil(i * point_y / length - 0.5).long(), torch.ceil(i * point_x / length - 0.5).long()


def _motion_weights(taps: int, sigma: float) -> Tensor:
    """ImageMagick's one-sided Gaussian tap weights (GetMotionBlurKernel), normalised to sum 1, float64."""
    i = torch.arange(taps, dtype=torch.float64)
    weights = torch.exp(-i * i / (2 * sigma * sigma))
    return weights / weights.sum()


def motion_kernels(radius: float, sigma: float, angles: Tensor) -> Tensor:
    """ImageMagick's motion blur (make_imagenet_c.py's ``motion_blur`` and ``snow``) as (N, k, k) kernels, k = 4 *
    ceil(radius) + 1, one per angle, for ``filter2d(..., mode='nearest')``: ImageMagick repeats the edge."""
    # one-sided: tap i of ``motion_offsets`` from the centre, weighted by exp(-i^2 / (2 sigma^2)); taps that land
    # on the same pixel add up
    dx, dy = motion_offsets(radius, angles)
    count, taps = dx.shape
    size, centre = 2 * taps - 1, taps - 1
    flat = (dy + centre) * size + (dx + centre) + torch.arange(count)[:, None] * size * size
    kernels = torch.zeros(count * size * size, dtype=torch.float64)
    kernels.index_put_((flat.flatten(),), _motion_weights(taps, sigma).repeat(count), accumulate=True)
    return kernels.view(count, size, size).float().to(angles.device)


def motion_filter(images: Tensor, radius: float, sigma: float, angles: Tensor) -> Tensor:
    """ImageMagick's motion blur of each image at its own angle (degrees), as Wand's ``motion_blur(radius, sigma,
    angle)`` in make_imagenet_c.py, edges repeated; see ``motion_kernels``."""
    if images.device.type != "cpu":  # one batched FFT correlation
        return filter2d(images, motion_kernels(radius, sigma, angles), mode="nearest")
    # on a CPU, summing each image's shifted views is several times quicker than the FFT
    dx, dy = motion_offsets(radius, angles)
    weights = _motion_weights(dx.shape[1], sigma).tolist()
    height, width = images.shape[-2:]
    top, left = min(0, int(dy.min())), min(0, int(dx.min()))
    bottom, right = max(0, int(dy.max())), max(0, int(dx.max()))
    out = torch.empty(images.shape, dtype=work_dtype(images))
    for index in range(images.shape[0]):
        extended = _extend(_work(images[index]), top, bottom, left, right, "nearest")
        total = out[index]
        for tap, (row, column) in enumerate(zip((dy[index] - top).tolist(), (dx[index] - left).tolist())):
            view = extended[..., row:row + height, column:column + width]
            if tap == 0:
                torch.mul(view, weights[0], out=total)
            else:
                total.add_(view, alpha=weights[tap])
    return out.to(images.dtype)


# --------------------------------------------------------------------------------------------------------
# Corruptions

@corruption("defocus_blur", "blur", ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)))
def defocus_blur(images: Tensor, level: tuple[float, float], generator: torch.Generator) -> Tensor:
    """An out-of-focus lens: convolve with a disk of the given radius (pixels) and anti-aliasing blur."""
    radius, alias_blur = level
    return filter2d(images, disk_kernel(radius, alias_blur, images.device))


@corruption("motion_blur", "blur", ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)))
def motion_blur(images: Tensor, level: tuple[float, float], generator: torch.Generator) -> Tensor:
    """Camera shake: ImageMagick's motion blur (radius, sigma) at an angle uniform in [-45, 45] degrees per image.

    As make_imagenet_c.py's ``motion_blur``, which calls ``MagickMotionBlurImage`` through Wand: the streak runs
    one way from each pixel over 2 * radius + 1 taps, Gaussian-weighted with std sigma (``motion_kernels``), so
    sigma, not the radius, sets how long it looks. The original then writes 8-bit PNG; we keep floats.
    """
    radius, sigma = level
    angles = torch.rand(images.shape[0], generator=generator, device=images.device) * 90 - 45
    return motion_filter(images, radius, sigma, angles)


def _zoom_levels(start: float, stop: float, step: float) -> tuple[float, ...]:
    """The zoom factors of ImageNet-C's ``np.arange(start, stop, step)``, float quirks included: the count
    is ``ceil((stop - start) / step)`` (so severity 1 ends at 1.11, not 1.10) and element i is
    ``start + i * ((start + step) - start)``, as NumPy computes them."""
    count = math.ceil((stop - start) / step)
    delta = (start + step) - start
    return tuple(start + i * delta for i in range(count))


@corruption("zoom_blur", "blur", (_zoom_levels(1, 1.11, 0.01), _zoom_levels(1, 1.16, 0.01),
                                  _zoom_levels(1, 1.21, 0.02), _zoom_levels(1, 1.26, 0.02),
                                  _zoom_levels(1, 1.31, 0.03)))
def zoom_blur(images: Tensor, factors: Sequence[float], generator: torch.Generator) -> Tensor:
    """A zoom during the exposure: the mean of the image and its centre zoomed by each factor.

    Each zoom crops the centre ``ceil(H / z)`` x ``ceil(W / z)`` pixels, scales them up by z with linear
    interpolation whose corners meet (scipy's ``ndimage.zoom(order=1)``, i.e. ``align_corners=True``) and
    keeps the central H x W, as the reference's ``clipped_zoom``; one batched interpolation per factor.
    """
    height, width = images.shape[-2:]
    crops = []
    for factor in factors:
        crop_h, crop_w = math.ceil(height / factor), math.ceil(width / factor)
        out_h, out_w = max(round(crop_h * factor), height), max(round(crop_w * factor), width)
        crops.append(((height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w, out_h, out_w))

    def blur(chunk: Tensor) -> Tensor:
        work = _work(chunk)
        total = work.clone()
        for top, left, crop_h, crop_w, out_h, out_w in crops:
            crop = work[..., top:top + crop_h, left:left + crop_w].reshape(-1, 1, crop_h, crop_w)
            zoomed = F.interpolate(crop, size=(out_h, out_w), mode="bilinear", align_corners=True).view(
                *work.shape[:2], out_h, out_w)  # one channel per plane: faster on CPUs
            trim_h, trim_w = (out_h - height) // 2, (out_w - width) // 2
            total += zoomed[..., trim_h:trim_h + height, trim_w:trim_w + width]
        return (total / (len(crops) + 1)).to(images.dtype)
    return _by_chunks(blur, images)


@corruption("gaussian_blur", "blur", (1, 2, 3, 4, 6))
def gaussian_blur(images: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    """Gaussian blur with std ``sigma`` pixels (scikit-image's ``gaussian``: truncated at 4 sigma, edges
    repeated)."""
    return gaussian_filter(images, sigma)


@corruption("glass_blur", "blur", ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)))
def glass_blur(images: Tensor, level: tuple[float, int, int], generator: torch.Generator) -> Tensor:
    """Frosted glass, as make_imagenet_c.py's ``glass_blur``: blur, keep 8 bits, shuffle pixels locally, blur again."""
    # the original stores the first blur as np.uint8(blur * 255), rounding down; the shuffle is ``glass_sources``
    sigma, max_delta, iterations = level
    blurred = gaussian_filter(images, sigma).mul_(255).floor_().div_(255)
    batch, channels, height, width = blurred.shape
    shuffled = torch.empty_like(blurred).flatten(2)
    for start in range(0, batch, _GLASS_CHUNK):  # the index buffers take ~40 bytes per image and pixel
        part = blurred[start:start + _GLASS_CHUNK].flatten(2)
        source = glass_sources(part.shape[0], height, width, int(max_delta), int(iterations), generator, images.device)
        torch.gather(part, 2, source[:, None, :].expand(-1, channels, -1), out=shuffled[start:start + _GLASS_CHUNK])
    return gaussian_filter(shuffled.view_as(blurred), sigma)


_GLASS_CHUNK = 32  # images shuffled at once


def glass_sources(batch: int, height: int, width: int, max_delta: int, iterations: int,
                  generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                  offsets: Sequence[tuple[Tensor, Tensor]] | None = None) -> Tensor:
    """Which input pixel each output pixel of glass blur's shuffle takes, (batch, H * W), as the original's loop
    leaves it (make_imagenet_c.py's ``glass_blur``), for the whole batch in a few gathers per pass."""
    # The original visits (h, w) for h in range(H - d, d, -1), w in range(W - d, d, -1) (it writes 224 for H and W),
    # ``iterations`` times, and runs ``x[h, w], x[h2, w2] = x[h2, w2], x[h, w]`` with (h2, w2) = (h + dy, w + dx), dx
    # and dy uniform in [-d, d - 1]. On NumPy views that is no swap: it copies x[h2, w2] into x[h, w] and writes
    # that same value back. So in a pass a pixel takes its partner's new value if the partner was visited before it
    # (an interior pixel later in raster order), else the partner's value from before the pass. Those links run
    # forward in raster order, so they form chains; pointer doubling follows them in log(length) gathers. The
    # result is not a permutation: some values are copied to several pixels and others lost.
    # ``offsets`` (for tests) gives each pass's (dy, dx), each (batch, H, W), instead of drawing them.
    device = torch.device(device)
    d = max_delta
    source = torch.arange(height * width, device=device).repeat(batch, 1)
    if d < 1 or iterations < 1 or height <= 2 * d or width <= 2 * d:
        return source
    inner = source.view(batch, height, width)[:, d + 1:height - d + 1, d + 1:width - d + 1]  # the visited pixels
    rows, columns = height - 2 * d, width - 2 * d
    visited = torch.zeros(height, width, dtype=torch.long, device=device)
    visited[d + 1:height - d + 1, d + 1:width - d + 1] = 1
    visited = visited.view(-1)
    local = torch.arange(rows * columns, device=device)  # index among the visited pixels
    here = (local // columns + d + 1) * width + local % columns + d + 1  # index in the image
    # per (dy, dx) pair: the partner's offset in the image, and among the visited pixels if it is visited later in
    # raster order (0 otherwise)
    steps = torch.arange(4 * d * d, device=device)
    step_dy, step_dx = steps // (2 * d) - d, steps % (2 * d) - d
    image_step = step_dy * width + step_dx
    link_step = (step_dy * columns + step_dx) * ((step_dy > 0) | ((step_dy == 0) & (step_dx > 0)))
    for index in range(iterations):
        if offsets is not None:
            dy, dx = (t.to(device)[:, d + 1:height - d + 1, d + 1:width - d + 1].reshape(batch, -1)
                      for t in offsets[index])
            pair = ((dy + d) * (2 * d) + dx + d).view(-1)
        else:  # one draw per (dy, dx) pair
            pair = _draw_below(4 * d * d, batch * local.numel(), generator, device)
        partner = image_step.index_select(0, pair).view(batch, -1).add_(here)
        value = source.gather(1, partner)  # the partner's value before this pass
        link = (link_step.index_select(0, pair) * visited.index_select(0, partner.view(-1))).view(batch, -1).add_(local)
        while True:  # after k rounds each link has jumped 2^k steps along its chain, or to its end
            jumped = link.gather(1, link)
            if torch.equal(jumped, link):
                break
            link = jumped
        inner.copy_(value.gather(1, link).view_as(inner))
    return source


def _draw_below(high: int, count: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``count`` independent integers uniform in [0, high), as int64.

    For a power of two, bit fields cut from 63-bit random words: exact, and ~5x quicker than ``randint``,
    which spends a full draw on each of the few bits glass blur needs.
    """
    bits = high.bit_length() - 1
    if high != 1 << bits or bits == 0:
        return torch.randint(0, high, (count,), generator=generator, device=device)
    per_word = 63 // bits
    words = torch.empty(-(-count // per_word), dtype=torch.long, device=device).random_(generator=generator)
    shifts = torch.arange(0, per_word * bits, bits, device=device)
    return ((words[:, None] >> shifts) & (high - 1)).view(-1)[:count]
