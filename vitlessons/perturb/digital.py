"""Digital corruptions: brightness, contrast, saturate, elastic_transform, pixelate, jpeg_compression.

Batched versions of the ImageNet-C digital corruptions (Hendrycks & Dietterich, 2019), with the per-severity
parameters of the original code (``make_imagenet_c.py`` in hendrycks/robustness). Every function takes a float (B, 3, H, W) batch
in [0, 1] and works on the batch's device. Spatial parameters (elastic_transform's displacements) are in
pixels, published for 224 px images, and kept as they are at other sizes.

* brightness and saturate change one HSV channel and keep the other two. With hue and saturation fixed, the
  RGB channels are proportional to the value V, so "V + c" is a per-pixel rescaling of RGB; with hue and
  value fixed, each channel's distance below V is proportional to S, so "S * c0 + c1" rescales that distance.
  Both are therefore exact HSV edits done without a full colour-space round trip (``rgb_to_hsv`` and
  ``hsv_to_rgb`` are here too, and the tests check the shortcut against them).
* contrast pulls every channel towards its own image mean.
* elastic_transform: ImageNet-C's original (make_imagenet_c.py, whose constants are 244 times a fraction where
  224 was meant): a random affine warp (three control points moved by up to c2 pixels, mirrored border) followed
  by a smooth random displacement field (uniform noise smoothed by a Gaussian of c1 pixels, scaled by c0), both
  resampled bilinearly with ``grid_sample``.
* pixelate: Pillow's BOX resize down to a fraction of the size and BOX resize back up, reproduced exactly: a
  resampling matrix per axis down, nearest-pixel copies up.
* jpeg_compression: a real JPEG round trip at the published quality with libjpeg, through torchvision when it
  is already imported (it is the faster) and through Pillow otherwise, on the CPU whatever the batch's device:
  libjpeg gives exactly the reference's (Pillow's) pixels, while torchvision's CUDA codec (nvJPEG) differs from
  them by about 5/255 on average.
"""

from __future__ import annotations

import functools
import io
import sys
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from vitlessons.perturb.blur import gaussian_filter
from vitlessons.perturb.registry import corruption

__all__ = ["rgb_to_hsv", "hsv_to_rgb"]


# ----------------------------------------------------------------------------------------------- colour

def rgb_to_hsv(images: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] to HSV with hue in [0, 1) (fraction of a turn), saturation and value in [0, 1].

    Grey pixels get hue 0 and black pixels saturation 0, as OpenCV and scikit-image do.
    """
    red, green, blue = images.unbind(1)
    value, _ = images.max(1)
    chroma = value - images.min(1).values
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    hue = torch.where(value == red, (green - blue) / safe,
                      torch.where(value == green, (blue - red) / safe + 2, (red - green) / safe + 4))
    hue = torch.where(chroma > 0, (hue / 6) % 1.0, torch.zeros_like(hue))
    saturation = torch.where(value > 0, chroma / torch.where(value > 0, value, torch.ones_like(value)),
                             torch.zeros_like(value))
    return torch.stack((hue, saturation, value), 1)


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """The inverse of ``rgb_to_hsv``: (B, 3, H, W) HSV (hue in [0, 1)) to RGB."""
    hue, saturation, value = hsv.unbind(1)
    # each channel n = value - value * saturation * clamp(min(k, 4 - k), 0, 1), k = (n + 6 * hue) mod 6
    offsets = torch.tensor([5.0, 3.0, 1.0], device=hsv.device, dtype=hsv.dtype).view(1, 3, 1, 1)
    k = (offsets + 6 * hue[:, None]) % 6
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return value[:, None] - (value * saturation)[:, None] * ramp


@corruption("brightness", "digital", (0.1, 0.2, 0.3, 0.4, 0.5))
def brightness(images: Tensor, level: float, generator: torch.Generator) -> Tensor:
    """HSV value + level (clipped at 1), hue and saturation unchanged."""
    value = images.amax(1, keepdim=True)
    brighter = (value + level).clamp(max=1.0)
    black = (value == 0).to(images.dtype)
    scale = brighter / (value + black)
    return torch.addcmul(black * brighter, images, scale)  # x * V'/V, and a black pixel turns into grey V'


@corruption("contrast", "digital", (0.4, 0.3, 0.2, 0.1, 0.05))
def contrast(images: Tensor, level: float, generator: torch.Generator) -> Tensor:
    """Each channel pulled towards its image mean: (x - mean) * level + mean."""
    means = images.mean((-2, -1), keepdim=True)
    return torch.lerp(means, images, level)


@corruption("saturate", "digital", ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2)))
def saturate(images: Tensor, level: tuple[float, float], generator: torch.Generator) -> Tensor:
    """HSV saturation * level[0] + level[1] (clipped to [0, 1]), hue and value unchanged."""
    scale, shift = level
    value = images.amax(1, keepdim=True)
    chroma = value - images.amin(1, keepdim=True)
    grey = (chroma == 0).to(images.dtype)
    target = (chroma / (value + grey) * scale + shift).clamp(0, 1) * value  # the new chroma
    gain = target / (chroma + grey)
    # x' = V - (V - x) * gain = V * (1 - gain) + x * gain
    out = torch.addcmul(value * (1 - gain), images, gain)
    out[:, 1:].sub_(grey * target)  # a grey pixel has hue 0 (red): the chroma it gains comes off green and blue
    return out


# ----------------------------------------------------------------------------------------------- geometry

@corruption("elastic_transform", "digital", (
    (244 * 2, 244 * 0.7, 244 * 0.1),  # 244 where 224 was meant, as make_imagenet_c.py itself notes: kept, since
    (244 * 2, 244 * 0.08, 244 * 0.2),  # these are the values ImageNet-C was made with
    (244 * 0.05, 244 * 0.01, 244 * 0.02),
    (244 * 0.07, 244 * 0.01, 244 * 0.02),
    (244 * 0.12, 244 * 0.01, 244 * 0.02),
))
def elastic_transform(images: Tensor, level: tuple[float, float, float], generator: torch.Generator) -> Tensor:
    """make_imagenet_c.py's elastic transform, (alpha, sigma, affine) in pixels of 224 px images, kept in pixels at
    other sizes like every spatial parameter here (the original only handles 224 px)."""
    # A random affine warp moves three control points around the centre by U(-affine, affine) per axis (OpenCV's
    # warpAffine, mirrored border); then U(-1, 1) noise smoothed by a Gaussian of std sigma (truncated at 3 sigma,
    # mirrored border) times alpha displaces each pixel, one field per axis, sampled bilinearly (map_coordinates).
    amplitude, sigma, shift = level
    batch, _, height, width = images.shape
    device, dtype = images.device, images.dtype
    # affine: control points (as the reference lays them out) and their jittered targets, in (x, y) pixels; the
    # 3 x 3 solves run in double precision on the CPU (MPS has no float64)
    half_h, half_w, side = height // 2, width // 2, min(height, width) // 3
    anchors = torch.tensor([[half_h + side, half_w + side], [half_h + side, half_w - side],
                            [half_h - side, half_w - side]], dtype=torch.float64)
    jitter = (torch.rand(batch, 3, 2, generator=generator, device=device, dtype=dtype) * 2 - 1) * shift
    targets = anchors + jitter.cpu().double()
    # the map from output pixels back to source pixels sends each target to its anchor
    homogeneous = torch.cat([targets, torch.ones(batch, 3, 1, dtype=torch.float64)], 2)
    inverse = torch.linalg.solve(homogeneous, anchors.expand(batch, 3, 2))  # (B, 3, 2): source = [x, y, 1] @ it
    # grid_sample's coordinates: -1 and 1 at the centres of the edge pixels (so 'reflection' mirrors like OpenCV's
    # BORDER_REFLECT_101); fold that normalisation into the affine map and evaluate it on the pixel grid
    inverse = inverse * torch.tensor([2 / max(width - 1, 1), 2 / max(height - 1, 1)], dtype=torch.float64)
    inverse[:, 2] -= 1
    inverse = inverse.to(device, dtype)
    columns = torch.arange(width, device=device, dtype=dtype).view(1, 1, width, 1)
    rows = torch.arange(height, device=device, dtype=dtype).view(1, height, 1, 1)
    coefficients = inverse[:, None, None]  # (B, 1, 1, 3, 2)
    grid = coefficients[..., 0, :] * columns + coefficients[..., 1, :] * rows + coefficients[..., 2, :]
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    # displacement: uniform noise in [-1, 1], smoothed and scaled, dx then dy; now -1 and 1 are the outer edges of
    # the edge pixels, so 'reflection' mirrors like SciPy's mode='reflect'
    noise = torch.rand(batch, 2, height, width, generator=generator, device=device, dtype=dtype)
    field = gaussian_filter(noise, sigma, truncate=3.0, mode="symmetric")  # smoothing commutes with 2u - 1
    scale = torch.tensor([2 * amplitude / width, 2 * amplitude / height], device=device, dtype=dtype)
    base = torch.stack([(2 * torch.arange(width, device=device, dtype=dtype) + 1) / width - 1
                        + torch.zeros(height, 1, device=device, dtype=dtype),
                        (2 * torch.arange(height, device=device, dtype=dtype)[:, None] + 1) / height - 1
                        + torch.zeros(1, width, device=device, dtype=dtype)], -1)  # (H, W, 2)
    grid = torch.addcmul(base - scale, field.permute(0, 2, 3, 1), 2 * scale)
    return F.grid_sample(warped, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@functools.lru_cache(maxsize=128)
def _box_matrix(size_in: int, size_out: int) -> Tensor:
    """Pillow's BOX resampling along one axis as a (size_out, size_in) matrix.

    Pillow centres output pixel i at (i + 0.5) * scale and averages, with equal weights, the source pixels whose
    centres lie within half a support of it (the support is max(scale, 1) source pixels wide).
    """
    scale = size_in / size_out
    filter_scale = max(scale, 1.0)
    support = 0.5 * filter_scale
    matrix = torch.zeros(size_out, size_in, dtype=torch.float64)
    for out in range(size_out):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), size_in)
        taps = [j for j in range(first, last) if -0.5 < (j - centre + 0.5) * (1.0 / filter_scale) <= 0.5]
        matrix[out, taps] = 1.0 / len(taps)
    return matrix.float()


@functools.lru_cache(maxsize=128)
def _nearest_is_box(size_in: int, size_out: int) -> bool:
    """Whether torch's 'nearest-exact' upsampling picks the same source pixels as Pillow's BOX filter."""
    picks = F.interpolate(torch.arange(size_in, dtype=torch.float32).view(1, 1, 1, -1), size=(1, size_out),
                          mode="nearest-exact").flatten().long()
    return bool(torch.equal(picks, _box_matrix(size_in, size_out).argmax(1)))


def _box_upsample(x: Tensor, height: int, width: int) -> Tensor:
    """Pillow's BOX upsampling, which copies the source pixel under each output pixel's centre."""
    if _nearest_is_box(x.shape[-2], height) and _nearest_is_box(x.shape[-1], width):
        return F.interpolate(x, size=(height, width), mode="nearest-exact")
    rows = _box_matrix(x.shape[-2], height).argmax(1).to(x.device)
    columns = _box_matrix(x.shape[-1], width).argmax(1).to(x.device)
    return x.index_select(-2, rows).index_select(-1, columns)


@corruption("pixelate", "digital", (0.6, 0.5, 0.4, 0.3, 0.25))
def pixelate(images: Tensor, level: float, generator: torch.Generator) -> Tensor:
    """BOX-downsample to ``level`` of the size, then BOX-upsample back (Pillow's resize both ways)."""
    height, width = images.shape[-2:]
    small_h, small_w = max(int(height * level), 1), max(int(width * level), 1)
    down_h = _box_matrix(height, small_h).to(images.device, images.dtype)
    down_w = _box_matrix(width, small_w).to(images.device, images.dtype)
    return _box_upsample(down_h @ (images @ down_w.T), height, width)


# ----------------------------------------------------------------------------------------------- JPEG

def _torchvision_round_trip(pixels: Tensor, quality: int) -> Tensor:
    """Encode and decode one (H, W, 3) uint8 image with torchvision's libjpeg codec; returns (3, H, W)."""
    from torchvision.io import decode_jpeg, encode_jpeg

    # libjpeg reads interleaved pixels, so the channels-first view of them spares torchvision a copy
    return decode_jpeg(encode_jpeg(pixels.permute(2, 0, 1), quality=quality))


def _pillow_round_trip(pixels: Tensor, quality: int) -> Tensor:
    """Encode and decode one (H, W, 3) uint8 image with Pillow; returns (3, H, W)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels.numpy()).save(buffer, "JPEG", quality=quality)
    decoded = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    data = torch.frombuffer(bytearray(decoded.tobytes()), dtype=torch.uint8)
    return data.view(decoded.height, decoded.width, 3).permute(2, 0, 1)


@functools.cache
def _torchvision_codec_works() -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _torchvision_round_trip(torch.zeros(8, 8, 3, dtype=torch.uint8), 50)
        return True
    except (ImportError, RuntimeError):  # torchvision without its image codecs
        return False


def _jpeg_round_trip() -> Callable[[Tensor, int], Tensor]:
    """torchvision's codec (the faster) once something has imported torchvision, else Pillow's: importing
    torchvision just for this would cost seconds. Both are libjpeg, with the same pixels out."""
    if "torchvision" in sys.modules and _torchvision_codec_works():
        return _torchvision_round_trip
    return _pillow_round_trip


@corruption("jpeg_compression", "digital", (25, 18, 15, 10, 7))
def jpeg_compression(images: Tensor, level: int, generator: torch.Generator) -> Tensor:
    """Encode as JPEG at quality ``level`` (4:2:0 chroma) and decode again, on 8-bit pixels, with libjpeg.

    One image at a time on the CPU: the codec works per image anyway, and small buffers stay in cache.
    """
    batch, channels, height, width = images.shape
    round_trip = _jpeg_round_trip()
    half = torch.tensor(0.5, dtype=images.dtype, device=images.device)
    out = torch.empty(images.shape, dtype=images.dtype, device=images.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision >= 0.29 warns that its image codecs move to TorchCodec
        if images.device.type == "cpu":
            pixels = torch.empty(height, width, channels, dtype=torch.uint8)
            for index in range(batch):
                # 8-bit interleaved pixels; adding 0.5 and truncating rounds (inputs are in [0, 1])
                pixels.copy_(torch.add(half, images[index], alpha=255).permute(1, 2, 0))
                out[index].copy_(round_trip(pixels, level))
        else:  # quantise on the device, code on the CPU, convert back on the device
            pixels = torch.empty(batch, height, width, channels, dtype=torch.uint8, device=images.device)
            pixels.copy_(torch.add(half, images, alpha=255).permute(0, 2, 3, 1))
            pixels = pixels.cpu()
            for index in range(batch):
                pixels[index].copy_(round_trip(pixels[index], level).permute(1, 2, 0))
            out.copy_(pixels.to(images.device).permute(0, 3, 1, 2))
    return out.div_(255)
