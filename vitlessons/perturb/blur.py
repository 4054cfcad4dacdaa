"""ImageNet-C blur corruptions as batched tensor operations: defocus, glass, motion, zoom and gaussian blur.

Each function takes a float (B, 3, H, W) batch in [0, 1], the parameter of one severity and a
``torch.Generator`` on the batch's device. The parameters are the published ones (Hendrycks & Dietterich,
2019), in pixels for 224 px images; other sizes keep the same pixel values, as the reference does. Borders
follow the reference: OpenCV's default BORDER_REFLECT_101 (``dcb|abcd|cba``) for the 2-D kernels and
scikit-image's ``mode='nearest'`` (``aaa|abcd|ddd``) for gaussian blurs, for any kernel size, even one
larger than the image.

The filtering helpers (``pad2d``, ``gaussian_filter``, ``filter2d``, ``disk_kernel``, ``motion_kernels``) are
public, so other corruptions can reuse them. On a CPU the batch is processed a few images at a time, which
keeps the working data in cache; elsewhere all at once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vitlessons.perturb.registry import corruption
from vitlessons.tensors import work_dtype

__all__ = [
    "BORDERS", "defocus_blur", "disk_kernel", "filter2d", "gaussian_blur", "gaussian_filter", "gaussian_kernel1d",
    "glass_blur", "glass_permutation", "motion_blur", "motion_kernels", "pad2d", "zoom_blur",
]


# --------------------------------------------------------------------------------------------------------
# Padding and filtering

BORDERS = ("reflect", "symmetric", "nearest")  # dcb|abcd|cba (OpenCV's default), cba|abcd|dcb, aaa|abcd|ddd


def _check_border(mode: str) -> None:
    """Refuse a border rule we do not implement, rather than mirror by a different one."""
    if mode not in BORDERS:
        raise ValueError(f"unknown border mode {mode!r}; use one of {', '.join(BORDERS)}")


def _border_index(size: int, pad: int, mode: str, device: torch.device) -> Tensor:
    """Source index of each of the ``size + 2 * pad`` padded positions along one axis."""
    _check_border(mode)
    index = torch.arange(-pad, size + pad, device=device)
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


def filter2d(images: Tensor, kernel: Tensor) -> Tensor:
    """Correlate each channel with a square odd-sized 2-D kernel, as ``cv2.filter2D(x, -1, kernel)``.

    ``kernel`` is (k, k), shared by the batch, or (B, k, k), one per image; the anchor is its centre and the
    border is reflected (BORDER_REFLECT_101). Large kernels (motion blur's are up to 41 x 41) are cheaper in
    the Fourier domain, so the correlation is done there: the image is padded by the kernel radius, so the
    circular correlation never wraps into the part we keep, which makes it exact up to float rounding.
    """
    size = kernel.shape[-1]
    if kernel.shape[-2] != size or size % 2 == 0 or kernel.ndim not in (2, 3):
        raise ValueError(f"the kernel must be (k, k) or (B, k, k) with k odd, got {tuple(kernel.shape)}")
    height, width = images.shape[-2:]
    radius = size // 2
    shape = (_fft_size(height + 2 * radius), _fft_size(width + 2 * radius))
    kernel = kernel.to(dtype=work_dtype(images), device=images.device)

    def correlate(chunk: Tensor, kernel_spectrum: Tensor) -> Tensor:
        padded = pad2d(_work(chunk), radius, radius, "reflect")
        spectrum = torch.fft.rfft2(padded, s=shape) * kernel_spectrum
        return torch.fft.irfft2(spectrum, s=shape)[..., :height, :width].to(images.dtype)

    if kernel.ndim == 2:
        kernel_spectrum = torch.fft.rfft2(kernel, s=shape).conj()
        return _by_chunks(lambda chunk: correlate(chunk, kernel_spectrum), images)
    if kernel.shape[0] != images.shape[0]:
        raise ValueError(f"{kernel.shape[0]} kernels for {images.shape[0]} images")
    return _by_chunks(lambda chunk, kernels: correlate(chunk, torch.fft.rfft2(kernels[:, None], s=shape).conj()),
                      images, kernel)


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


def motion_kernels(radius: int, angles: Tensor) -> Tensor:
    """Line kernels of ``2 * radius + 1`` pixels through the centre, one per angle (degrees), (N, k, k).

    This is the reference's ``cv2_motion_blur`` kernel: a horizontal line of ones rotated about the centre
    by ``cv2.warpAffine`` (bilinear, zero outside), then normalised to sum 1. We follow OpenCV's fixed-point
    arithmetic: each kernel pixel's source coordinate is rounded to 1/32 pixel, the same way OpenCV rounds.
    """
    size = 2 * radius + 1
    device = angles.device  # built in float64 on the CPU (some accelerators have no float64), then moved
    theta = torch.deg2rad(angles.detach().cpu().double())[:, None, None]
    cos, sin = torch.cos(theta), torch.sin(theta)
    # cv2.getRotationMatrix2D about (radius, radius), then its inverse (the map from kernel to line pixels)
    m13, m23 = (1 - cos) * radius - sin * radius, sin * radius + (1 - cos) * radius
    det = 1 / (cos * cos + sin * sin)
    a11, a12, a21, a22 = cos * det, -sin * det, sin * det, cos * det
    b1, b2 = -a11 * m13 - a12 * m23, -a21 * m13 - a22 * m23
    grid = torch.arange(size, dtype=torch.float64)
    x, y = grid[None, None, :], grid[None, :, None]
    # OpenCV: round(a * x * 1024) + round((b * y + c) * 1024) + 16, shifted right by 5 bits: 1/32 pixel units
    u = torch.floor((torch.round(a11 * x * 1024) + torch.round((a12 * y + b1) * 1024) + 16) / 32) / 32
    v = torch.floor((torch.round(a21 * x * 1024) + torch.round((a22 * y + b2) * 1024) + 16) / 32) / 32
    u0, v0 = u.floor(), v.floor()
    fu, fv = u - u0, v - v0
    row_weight = (1 - fv) * (v0 == radius) + fv * (v0 + 1 == radius)
    col_weight = (1 - fu) * ((u0 >= 0) & (u0 <= size - 1)) + fu * ((u0 + 1 >= 0) & (u0 + 1 <= size - 1))
    kernels = row_weight * col_weight
    return (kernels / kernels.sum(dim=(-2, -1), keepdim=True)).float().to(device)


# --------------------------------------------------------------------------------------------------------
# Corruptions

@corruption("defocus_blur", "blur", ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)))
def defocus_blur(images: Tensor, level: tuple[float, float], generator: torch.Generator) -> Tensor:
    """An out-of-focus lens: convolve with a disk of the given radius (pixels) and anti-aliasing blur."""
    radius, alias_blur = level
    return filter2d(images, disk_kernel(radius, alias_blur, images.device))


@corruption("motion_blur", "blur", ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)))
def motion_blur(images: Tensor, level: tuple[int, float], generator: torch.Generator) -> Tensor:
    """Camera shake: average along a line of ``2 * radius + 1`` pixels at a random angle in [-45, 45]
    degrees, drawn per image.

    The level is ImageNet-C's (radius, sigma). The original drew the blur with ImageMagick, weighting the
    line by a gaussian of std sigma; the reference (corrupt-tta's OpenCV port) and we use a uniform line
    through the centre and ignore sigma.
    """
    radius, _sigma = level
    angles = torch.rand(images.shape[0], generator=generator, device=images.device) * 90 - 45
    return filter2d(images, motion_kernels(int(radius), angles))


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
    """Frosted glass: blur, shuffle pixels locally, blur again. The level is (sigma, max_delta, iterations).

    The shuffle is ImageNet-C's: ``iterations`` passes over the interior pixels (``max_delta`` from the
    border) in raster order, each swapping its pixel with the one offset by (dy, dx), both uniform
    integers in [-max_delta, max_delta - 1]. Because the swaps run in order, a pixel can be carried along
    several times, so pixels travel further than max_delta. ``glass_permutation`` computes exactly this
    permutation (see there), batched; it is then applied to all channels by one gather. The only
    difference from the reference: it stores the first blur as uint8 (rounding down, ~0.5/255 darker);
    we keep floats.
    """
    sigma, max_delta, iterations = level
    blurred = gaussian_filter(images, sigma)
    batch, channels, height, width = blurred.shape
    shuffled = torch.empty_like(blurred).flatten(2)
    for start in range(0, batch, _GLASS_CHUNK):  # the schedule's index buffers grow with the batch
        part = blurred[start:start + _GLASS_CHUNK]
        source = glass_permutation(part.shape[0], height, width, int(max_delta), int(iterations), generator,
                                   images.device)
        torch.gather(part.flatten(2), 2, source[:, None, :].expand(-1, channels, -1),
                     out=shuffled[start:start + _GLASS_CHUNK])
    return gaussian_filter(shuffled.view_as(blurred), sigma)


_GLASS_CHUNK = 32  # images shuffled at once: the index buffers take ~40 bytes per image, pass and pixel


def glass_permutation(batch: int, height: int, width: int, max_delta: int, iterations: int,
                      generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                      offsets: Sequence[tuple[Tensor, Tensor]] | None = None) -> Tensor:
    """The pixel shuffle of glass blur, as (batch, height * width) indices: output pixel i of image b takes
    the (flattened) input pixel ``result[b, i]``.

    The reference swaps one pixel at a time in raster order, each pixel (r, c) of the interior
    ``[d, H - d) x [d, W - d)`` with (r + dy, c + dx), dy and dx uniform in [-d, d - 1] (d = max_delta), in
    ``iterations`` passes; in Python that takes ~50 ms per pass per image. The order matters only between
    swaps that can touch a common pixel, i.e. steps less than 2d apart in both row and column. So we run the
    steps in wavefronts ``t = 2d * r + c``: steps on one wavefront are at least 2d columns apart, so they
    touch disjoint pixels and can run at once, and any two steps that could touch a common pixel run in
    raster order. Later passes follow a fixed number of wavefronts behind the one before, once it is out of
    reach. That is about (H - 2d) * 2d + W batched gather-scatter steps in all, and gives exactly the
    reference's permutation for the same offsets.

    ``offsets`` (for tests) gives each pass's (dy, dx), each (batch, H, W), instead of drawing them.
    """
    device = torch.device(device)
    d = max_delta
    if d < 1 or iterations < 1 or height <= 2 * d or width <= 2 * d:
        return torch.arange(height * width, device=device).repeat(batch, 1)
    # pixel-major (H * W, batch) map of source pixels: one step of all images touches neighbouring memory,
    # and a wavefront's working set (a few image rows) stays in cache
    source = torch.arange(height * width, device=device)[:, None].repeat(1, batch)
    pixel, position, blocks = (t.to(device) if isinstance(t, Tensor) else t
                               for t in _glass_layout(height, width, d, iterations))
    if offsets is not None:  # the tests' offsets come in pass-major raster order; put them in step order
        r, c = torch.meshgrid(torch.arange(d, height - d), torch.arange(d, width - d), indexing="ij")
        raster = torch.stack([(dy[:, r, c] * width + dx[:, r, c]).reshape(batch, -1)
                              for dy, dx in offsets[:iterations]], 1).reshape(batch, -1).T.to(device)
        moves = torch.empty(raster.shape, dtype=raster.dtype, device=device).index_copy_(0, position, raster * batch)
    else:  # the offsets are independent, so draw them straight in step order; one draw per (dy, dx) pair
        pair = _draw_below(4 * d * d, pixel.numel() * batch, generator, device)
        steps = torch.arange(4 * d * d, device=device)
        table = ((steps // (2 * d) - d) * width + (steps % (2 * d) - d)) * batch  # (dy * W + dx) in map rows
        moves = table.index_select(0, pair).view(-1, batch)
    # flat indices into the map: each step's pixel, and its partner, for every image
    here = (pixel * batch)[:, None] + torch.arange(batch, device=device)
    there = moves.add_(here)
    flat = source.view(-1)
    for start, stop in blocks:  # the steps of one wavefront touch disjoint pixels: swap them all at once
        mine, theirs = here[start:stop].view(-1), there[start:stop].view(-1)
        partner_values = flat.index_select(0, theirs)
        flat.scatter_(0, theirs, flat.index_select(0, mine))
        flat.scatter_(0, mine, partner_values)
    return source.T


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


@functools.lru_cache(maxsize=8)
def _glass_layout(height: int, width: int, d: int, iterations: int) -> tuple[Tensor, Tensor, list]:
    """The image-independent schedule of ``glass_permutation``, on the CPU.

    Every step (pass i, interior pixel (r, c)) runs at time ``2d * r + c + i * lag``. Returns the steps
    sorted by time (within a time: earlier passes first, then by row) as the pixel each moves, the sorted
    position of each step given in pass-major raster order, and the (start, stop) positions of each time.
    """
    # Steps that can touch a common pixel are under 2d apart in row and column, so their wavefronts differ by
    # at most (2d - 1) * 2d + (2d - 1): one pass running ``lag`` behind the one before finds those done.
    stride, lag = 2 * d, (2 * d - 1) * (2 * d + 1) + 1
    r, c = torch.meshgrid(torch.arange(d, height - d), torch.arange(d, width - d), indexing="ij")
    r, c = r.reshape(1, -1), c.reshape(1, -1)
    passes = torch.arange(iterations)[:, None]
    time = (r * stride + c + passes * lag).reshape(-1)
    step_pass = passes.expand(-1, r.shape[1]).reshape(-1)
    sizes = torch.bincount(time)
    starts = torch.cumsum(sizes, 0) - sizes

    def first_row(i: Tensor) -> Tensor:  # the first interior row with a pass-i step at each step's time
        return (time - i * lag - (width - d - 1) + stride - 1).div(stride, rounding_mode="floor").clamp(min=d)

    def members(i: Tensor) -> Tensor:    # how many pass-i steps share each step's time
        last = (time - i * lag - d).div(stride, rounding_mode="floor").clamp(max=height - d - 1)
        return (last - first_row(i) + 1).clamp(min=0)

    # rank of each step within its time (earlier passes first, then by row): a closed form, no sort
    rank = r.expand(iterations, -1).reshape(-1) - first_row(step_pass)
    for i in range(1, iterations):
        rank += members(torch.full_like(step_pass, i - 1)) * (step_pass >= i)
    position = starts[time] + rank
    pixel = torch.empty_like(position)
    pixel[position] = (r * width + c).expand(iterations, -1).reshape(-1)
    blocks = [(a, a + n) for a, n in zip(starts.tolist(), sizes.tolist()) if n]
    return pixel, position, blocks
