"""ImageNet-C as defined by its own code, run image by image: the reference the corruption tests and the benchmark use.

The definition is ``ImageNet-C/create_c/make_imagenet_c.py`` in hendrycks/robustness. It needs Wand (ImageMagick)
and only handles 224 px images, so most corruptions run through ``imagecorruptions`` 1.1.2 (PyPI, bethgelab), a
packaging of the same functions for any image size that keeps the original's code and parameters (glass blur's
"swap" that copies, fog's decays, spatter's water and mud, the frost photos byte for byte) except that

* its motion blur (``motion_blur``, and the streaks of ``snow``) is a NumPy copy of ImageMagick's
  ``MotionBlurImage`` (2r+1 one-sided taps along the direction, Gaussian weights) in place of the Wand call;
  it agrees with ImageMagick within one grey level; we round ``motion_blur``'s output to 8 bits as ImageMagick's
  PNG does;
* its ``snow`` zooms the noise without trimming it back to the image's size before the blur (the original trims
  the centre, which at 64 px shifts the snow by a pixel or two against imagecorruptions'), and leaves out the
  original's 8-bit truncation of the layer before the blur, so the original's is written out below
  (``original_snow``, with imagecorruptions' NumPy motion blur);
* its ``elastic_transform`` is another corruption altogether (smaller displacements, no affine step), so the
  original's is written out below (``original_elastic_transform``);
* its ``frost`` enlarges the frost photo by 1.1 before cropping, and its ``pixelate`` scales back up with
  NEAREST (the same pixels as BOX at 64 and 224 px, not at every size); the original crops the photo as it is
  and scales back up with BOX, as written out below.

At 224 px the elastic transform, frost and pixelate written out here give exactly the original's pixels (checked
against its source under the same seeds). imagecorruptions is installed without its dependencies (they would add
``opencv-python`` beside the ``opencv-python-headless`` this project already has): ``pip install --no-deps
imagecorruptions==1.1.2``. It was written for 2019's libraries, so ``_patched`` adapts it, without touching the
installed files, to

* setuptools without ``pkg_resources`` (it only uses ``resource_filename`` to find its frost photos),
* NumPy 2, which dropped ``np.float_`` (the plasma fractal of ``fog`` allocates with it),
* current scikit-image, whose ``gaussian`` takes ``channel_axis=-1`` where it took ``multichannel=True``,
* current scikit-image, whose ``random_noise`` draws from its own ``np.random.Generator``, not NumPy's global
  state (``impulse_noise`` would ignore ``np.random.seed``); it now gets a seed drawn from that global state,
* SciPy, which deprecates (and will remove) ``scipy.ndimage.interpolation``.

The original saves every corrupted image as ``np.uint8(image)`` (then as JPEG, quality 85, a step of the dataset's
storage that we leave out), so the reference truncates to 8 bits as well.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import types
import warnings

import numpy as np
import pytest
import torch

INSTALL = "pip install --no-deps imagecorruptions==1.1.2"  # as .ci/run does
SKIP_REASON = f"{INSTALL}, as .ci/run does: the ImageNet-C reference"

# the original's (alpha, sigma, affine) per severity: 244 where 224 was meant, as the original says itself
ELASTIC_LEVELS = (
    (244 * 2, 244 * 0.7, 244 * 0.1),
    (244 * 2, 244 * 0.08, 244 * 0.2),
    (244 * 0.05, 244 * 0.01, 244 * 0.02),
    (244 * 0.07, 244 * 0.01, 244 * 0.02),
    (244 * 0.12, 244 * 0.01, 244 * 0.02),
)
FROST_LEVELS = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))
PIXELATE_LEVELS = (0.6, 0.5, 0.4, 0.3, 0.25)
SNOW_LEVELS = (
    (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
    (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
    (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
    (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
    (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
)
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")  # as shipped


# ----------------------------------------------------------------------------------- loading imagecorruptions

def _with_numpy_float_() -> types.ModuleType:
    """A stand-in for the ``numpy`` module that also answers ``float_`` (NumPy 2 removed it); numpy stays as it is."""
    shim = types.ModuleType("numpy_with_float_")
    shim.__getattr__ = lambda name: getattr(np, name)  # module-level __getattr__: everything else is numpy's
    shim.float_ = np.float64
    return shim


def _gaussian_with_multichannel(gaussian):
    """skimage's ``gaussian`` that still takes the ``multichannel`` flag of scikit-image < 0.21."""

    @functools.wraps(gaussian)
    def patched(image, *args, multichannel=None, **kwargs):
        if multichannel:
            kwargs["channel_axis"] = -1
        return gaussian(image, *args, **kwargs)

    return patched


def _random_noise_from_global_numpy(random_noise):
    """skimage's ``random_noise`` drawing its seed from NumPy's global generator, as scikit-image < 0.19 drew its
    noise from it, so that ``np.random.seed`` decides the output."""

    @functools.wraps(random_noise)
    def patched(image, mode="gaussian", rng=None, clip=True, **kwargs):
        if rng is None:
            rng = np.random.randint(2**32, dtype=np.uint64)
        return random_noise(image, mode=mode, rng=int(rng), clip=clip, **kwargs)

    return patched


@functools.cache
def _patched() -> types.ModuleType:
    """``imagecorruptions.corruptions`` imported and patched for today's libraries (see the module's docstring);
    skips the calling test, naming the install command, when it is not installed."""
    missing_pkg_resources = importlib.util.find_spec("pkg_resources") is None
    if missing_pkg_resources:  # only for the import: the frost photos' path is replaced right after
        stub = types.ModuleType("pkg_resources")
        stub.resource_filename = lambda package, name: os.path.join(
            os.path.dirname(sys.modules[package].__file__), name)
        sys.modules["pkg_resources"] = stub
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # scipy.ndimage.interpolation
            try:
                importlib.import_module("scipy.ndimage.interpolation")
            except ImportError:  # SciPy 2 removes the old namespace: point it at scipy.ndimage
                sys.modules["scipy.ndimage.interpolation"] = importlib.import_module("scipy.ndimage")
            corruptions = pytest.importorskip("imagecorruptions.corruptions", reason=SKIP_REASON)
    finally:
        if missing_pkg_resources:
            del sys.modules["pkg_resources"]
    here = os.path.dirname(corruptions.__file__)
    corruptions.resource_filename = lambda package, name: os.path.join(here, name)
    corruptions.np = _with_numpy_float_()
    corruptions.gaussian = _gaussian_with_multichannel(corruptions.gaussian)
    skimage_shim = types.ModuleType("skimage_shim")
    skimage_shim.color = corruptions.sk.color
    skimage_shim.util = types.SimpleNamespace(random_noise=_random_noise_from_global_numpy(
        corruptions.sk.util.random_noise))
    corruptions.sk = skimage_shim
    return corruptions


def imagecorruptions() -> types.ModuleType:
    """The patched ``imagecorruptions.corruptions`` module; skips the calling test when it is not installed."""
    return _patched()


def available() -> bool:
    """Whether imagecorruptions is installed (for scripts, which cannot skip)."""
    return importlib.util.find_spec("imagecorruptions") is not None


# ----------------------------------------------------------------------------------- the original's own steps

def original_elastic_transform(image, severity: int = 1) -> np.ndarray:
    """make_imagenet_c.py's elastic transform on an (H, W, 3) image in [0, 255], with NumPy's global generator.

    Three points around the centre (one third of the short side away) are each moved by U(-c2, c2) per axis, and
    the image is warped by the affine map taking the old points to the new ones (OpenCV, bilinear, mirrored border
    without repeating the edge). Then every pixel is displaced by c0 times a field of U(-1, 1) noise smoothed by a
    Gaussian of sigma c1 (truncated at 3 sigma, mirrored border), one field per axis, sampled bilinearly
    (``map_coordinates``, mirrored border).
    """
    cv2 = pytest.importorskip("cv2")
    from scipy.ndimage import map_coordinates
    from skimage.filters import gaussian

    alpha, sigma, affine = ELASTIC_LEVELS[severity - 1]
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    height, width = pixels.shape[:2]
    centre = np.float32((height, width)) // 2
    reach = min(height, width) // 3
    # the original pairs (row, column) coordinates with OpenCV's (x, y): kept as it is, since it is the definition
    before = np.float32([centre + reach, [centre[0] + reach, centre[1] - reach], centre - reach])
    after = before + np.random.uniform(-affine, affine, size=before.shape).astype(np.float32)
    warped = cv2.warpAffine(pixels, cv2.getAffineTransform(before, after), (width, height),
                            borderMode=cv2.BORDER_REFLECT_101)

    def field() -> np.ndarray:
        noise = np.random.uniform(-1, 1, size=(height, width))
        return (gaussian(noise, sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)

    shift_x = field()  # drawn first, as in the original
    shift_y = field()
    rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    out = np.empty_like(warped)
    for channel in range(warped.shape[2]):
        out[..., channel] = map_coordinates(warped[..., channel], (rows + shift_y, columns + shift_x),
                                            order=1, mode="reflect")
    return np.clip(out, 0, 1) * 255


def original_frost(image, severity: int = 1) -> np.ndarray:
    """make_imagenet_c.py's frost: c0 * image + c1 * a crop of one of the first five frost photos, at the photo's
    own scale. Images bigger than a photo (which the original never sees) fall back to imagecorruptions' frost."""
    cv2 = pytest.importorskip("cv2")
    corruptions = _patched()
    strength, frost_weight = FROST_LEVELS[severity - 1]
    pixels = np.asarray(image)
    state = np.random.get_state()
    chosen = FROST_FILES[np.random.randint(5)]  # the original never picks the sixth
    photo = cv2.imread(os.path.join(os.path.dirname(corruptions.__file__), "frost", chosen))
    height, width = pixels.shape[:2]
    if photo.shape[0] <= height or photo.shape[1] <= width:
        np.random.set_state(state)
        return corruptions.frost(image, severity)
    top, left = np.random.randint(0, photo.shape[0] - height), np.random.randint(0, photo.shape[1] - width)
    crop = photo[top:top + height, left:left + width][..., ::-1]  # BGR to RGB
    return np.clip(strength * pixels + frost_weight * crop, 0, 255)


def original_snow(image, severity: int = 1) -> np.ndarray:
    """make_imagenet_c.py's snow: zoomed noise (its ``clipped_zoom``, which trims to the image's size), cut below c3,
    stored as an 8-bit picture, motion-blurred by ImageMagick (imagecorruptions' NumPy copy, rounded to 8 bits as
    the PNG it comes back as) and added twice, once upside down, to the whitened image."""
    cv2 = pytest.importorskip("cv2")
    from scipy.ndimage import zoom

    mean, std, factor, threshold, radius, sigma, keep = SNOW_LEVELS[severity - 1]
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    height, width = pixels.shape[:2]
    layer = np.random.normal(size=(height, width), loc=mean, scale=std)
    crop_h, crop_w = int(np.ceil(height / factor)), int(np.ceil(width / factor))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    layer = zoom(layer[top:top + crop_h, left:left + crop_w], factor, order=1)
    top, left = (layer.shape[0] - height) // 2, (layer.shape[1] - width) // 2
    layer = layer[top:top + height, left:left + width]
    layer[layer < threshold] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8) / 255.0  # the PIL 'L' picture handed to ImageMagick
    layer = _patched()._motion_blur(layer, radius=radius, sigma=sigma, angle=np.random.uniform(-135, -45))
    layer = (np.round(layer * 255) / 255.0)[..., np.newaxis]
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[..., np.newaxis]
    pixels = keep * pixels + (1 - keep) * np.maximum(pixels, grey * 1.5 + 0.5)
    return np.clip(pixels + layer + np.rot90(layer, k=2), 0, 1) * 255


def original_pixelate(image, severity: int = 1):
    """make_imagenet_c.py's pixelate: Pillow BOX resize down to a fraction of the size, and BOX resize back."""
    from PIL import Image

    factor = PIXELATE_LEVELS[severity - 1]
    width, height = image.size
    small = image.resize((int(width * factor), int(height * factor)), Image.BOX)
    return small.resize((width, height), Image.BOX)


def _rounded_motion_blur(image, severity: int = 1) -> np.ndarray:
    """imagecorruptions' motion blur, rounded to 8 bits as ImageMagick writes it out in the original."""
    return np.round(_patched().motion_blur(image, severity))


# the corruptions whose reference is not imagecorruptions' function as it stands
ORIGINAL = {
    "elastic_transform": original_elastic_transform,
    "frost": original_frost,
    "pixelate": original_pixelate,
    "motion_blur": _rounded_motion_blur,
    "snow": original_snow,
}


# ----------------------------------------------------------------------------------- on a batch

def _run(function, images: torch.Tensor, severity: int, seed: int) -> torch.Tensor:
    from PIL import Image

    outputs = []
    for index, image in enumerate(images):
        np.random.seed(seed + index)
        array = (image.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        out = np.uint8(np.asarray(function(Image.fromarray(array), severity)))  # how the original stores it
        outputs.append(torch.from_numpy(out.astype(np.float32) / 255).permute(2, 0, 1))
    return torch.stack(outputs)


def reference_function(name: str):
    """The function (PIL image, severity) -> image in [0, 255] that defines corruption ``name``."""
    corruptions = imagecorruptions()
    return ORIGINAL.get(name) or getattr(corruptions, name)


def reference(images: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """ImageNet-C's corruption ``name`` of each image of a (B, 3, H, W) batch in [0, 1] (image i under
    ``np.random.seed(seed + i)``), as a batch in [0, 1] of 8-bit values."""
    return _run(reference_function(name), images, severity, seed)


def imagecorruptions_as_is(images: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """imagecorruptions' own corruption ``name`` (only patched to run), the same way: the benchmark's speed peer."""
    return _run(getattr(imagecorruptions(), name), images, severity, seed)
