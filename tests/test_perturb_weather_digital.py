"""The weather and digital corruptions: contract, determinism, severity order, and agreement with ImageNet-C's own
code (``corruption_reference``: imagecorruptions 1.1.2 and the original's steps)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from corruption_reference import imagecorruptions, reference, reference_function

from vitlessons.data.photos import photos
from vitlessons.perturb import SEVERITIES, corrupt, get_corruption, list_corruptions
from vitlessons.perturb.blur import gaussian_filter
from vitlessons.perturb.digital import hsv_to_rgb, rgb_to_hsv
from vitlessons.perturb.weather import (
    FROST_FILES, canny_edges, chamfer_distance, equalize_hist, frost_photos, plasma_fractal,
)

WEATHER = ("snow", "frost", "fog", "spatter")
DIGITAL = ("brightness", "contrast", "saturate", "elastic_transform", "pixelate", "jpeg_compression")
OURS = WEATHER + DIGITAL
DETERMINISTIC = ("brightness", "contrast", "saturate", "pixelate", "jpeg_compression")
RANDOM = tuple(name for name in OURS if name not in DETERMINISTIC)

# severities whose clean-image PSNR must fall strictly along each chain; the published levels are not monotone
# everywhere (saturate's level 3 boosts colour mildly, elastic_transform's levels 1-2 are a different regime,
# frost's level 4 keeps less image but adds no more frost than level 3, fog's levels 3 and 4 are about equal)
ORDER = {
    "snow": ((1, 2, 4, 5), (1, 3, 4, 5)),
    "frost": ((1, 2, 3), (1, 2, 4, 5)),
    "fog": ((1, 2, 3, 5), (1, 2, 4, 5)),
    "spatter": ((1, 2, 3, 4, 5),),
    "brightness": ((1, 2, 3, 4, 5),),
    "contrast": ((1, 2, 3, 4, 5),),
    "saturate": ((1, 2), (3, 4, 5)),
    "elastic_transform": ((1, 2), (3, 4, 5)),
    "pixelate": ((1, 2, 3, 4, 5),),
    "jpeg_compression": ((1, 2, 3, 4, 5),),
}
# images the reference and we each corrupt per severity, for the PSNR comparison: the random corruptions vary a lot
# from one draw to the next (spatter's PSNR has a spread of about 5 dB), so they need many
SAMPLES = {"spatter": 200, "elastic_transform": 100, "fog": 100, "frost": 60, "snow": 20}
MAX_GAP_DB, MAX_MAD = 1.5, 3 / 255


def quantised(images: torch.Tensor) -> torch.Tensor:
    """The pixels the reference sees: 8-bit values."""
    return (images * 255).round() / 255


@pytest.fixture(scope="module")
def small() -> torch.Tensor:
    return quantised(photos(size=64))


def psnr(corrupted: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per image, capped at 60 dB as in the benchmark."""
    return -10 * torch.log10(((corrupted - clean) ** 2).flatten(1).mean(1).clamp_min(1e-6))


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered_with_five_levels() -> None:
    assert set(WEATHER) <= set(list_corruptions("weather"))
    assert set(DIGITAL) <= set(list_corruptions("digital"))
    for name in OURS:
        assert len(get_corruption(name).levels) == len(SEVERITIES)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", OURS)
def test_shape_dtype_and_range(name: str, size: int) -> None:
    images = quantised(photos(("chelsea", "rocket"), size=size))
    for severity in SEVERITIES:
        out = corrupt(images, name, severity, seeded())
        assert out.shape == images.shape and out.dtype == images.dtype
        assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
        assert not torch.equal(out, images), f"{name} {severity} left the images unchanged"


@pytest.mark.parametrize("name", OURS)
def test_double_precision_and_odd_sizes(name: str) -> None:
    images = photos(("coffee",), size=80)[..., 3:-2, :].double()  # 75 x 80
    out = corrupt(images, name, 3, torch.Generator().manual_seed(1))
    assert out.dtype == torch.float64 and out.shape == images.shape and 0 <= out.min() <= out.max() <= 1


@pytest.mark.parametrize("name", OURS)
def test_seeded_determinism(name: str, small: torch.Tensor) -> None:
    first = corrupt(small, name, 3, seeded(7))
    assert torch.equal(first, corrupt(small, name, 3, seeded(7)))
    other = corrupt(small, name, 3, seeded(8))
    if name in DETERMINISTIC:
        assert torch.equal(first, other)
    else:
        assert (first - other).abs().mean() > 1e-3, f"{name} ignores its generator"


@pytest.mark.parametrize("name", RANDOM)
def test_every_image_draws_its_own_randomness(name: str, small: torch.Tensor) -> None:
    twins = small[:1].expand(2, -1, -1, -1).contiguous()
    out = corrupt(twins, name, 3, seeded())
    assert (out[0] - out[1]).abs().mean() > 1e-3


@pytest.mark.parametrize("name", OURS)
def test_psnr_falls_with_severity(name: str, small: torch.Tensor) -> None:
    images = small.repeat(2, 1, 1, 1)
    quality = {s: psnr(corrupt(images, name, s, seeded()), images).mean().item() for s in SEVERITIES}
    for chain in ORDER[name]:
        values = [quality[s] for s in chain]
        assert all(a > b for a, b in zip(values, values[1:])), f"{name}: PSNR by severity {quality}"


@pytest.mark.parametrize("name", RANDOM)
def test_psnr_matches_the_reference(name: str, small: torch.Tensor) -> None:
    images = small.repeat(SAMPLES[name] // len(small), 1, 1, 1)
    for severity in SEVERITIES:
        ours = psnr(corrupt(images, name, severity, seeded()), images).mean().item()
        theirs = psnr(reference(images, name, severity), images).mean().item()
        assert abs(ours - theirs) < MAX_GAP_DB, f"{name} {severity}: {ours:.2f} dB vs reference {theirs:.2f} dB"


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_ones_match_the_reference_pixelwise(name: str, small: torch.Tensor) -> None:
    for batch in (small, quantised(photos(("astronaut", "coffee"), size=224))):
        for severity in SEVERITIES:
            ours = corrupt(batch, name, severity, seeded())
            theirs = reference(batch, name, severity)
            mad = (ours - theirs).abs().mean().item()
            assert mad < MAX_MAD, f"{name} {severity} at {batch.shape[-1]} px: MAD {mad * 255:.2f}/255"
            gap = (psnr(ours, batch) - psnr(theirs, batch)).mean().abs().item()
            assert gap < MAX_GAP_DB


def test_hsv_round_trip_and_the_shortcuts(small: torch.Tensor) -> None:
    skimage_color = pytest.importorskip("skimage.color")
    images = torch.cat([small, torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1, 1).expand(3, 3, 64, 64)])  # greys too
    hsv = rgb_to_hsv(images)
    expected = torch.from_numpy(skimage_color.rgb2hsv(small.permute(0, 2, 3, 1).double().numpy())).permute(0, 3, 1, 2)
    assert torch.allclose(hsv[:len(small)].double(), expected, atol=1e-5)
    assert torch.allclose(hsv_to_rgb(hsv), images, atol=1e-5)
    brighter = hsv.clone()
    brighter[:, 2] = (brighter[:, 2] + 0.3).clamp(0, 1)
    assert torch.allclose(corrupt(images, "brightness", 3), hsv_to_rgb(brighter), atol=1e-5)
    saturated = hsv.clone()
    saturated[:, 1] = (saturated[:, 1] * 5 + 0.1).clamp(0, 1)
    assert torch.allclose(corrupt(images, "saturate", 4), hsv_to_rgb(saturated), atol=1e-5)


@pytest.mark.parametrize("sigma", [0.5, 2.24, 17.92, 156.8])
def test_gaussian_filter_is_scipys(sigma: float) -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    noise = torch.rand(2, 1, 40, 37, generator=seeded(), dtype=torch.float64)
    expected = np.stack([ndimage.gaussian_filter(n[0].numpy(), sigma, mode="reflect", truncate=3.0) for n in noise])
    assert np.abs(gaussian_filter(noise, sigma, 3.0, "symmetric")[:, 0].numpy() - expected).max() < 1e-5


def test_plasma_fractal_is_the_reference_diamond_square(monkeypatch: pytest.MonkeyPatch) -> None:
    corruptions = imagecorruptions()  # the original's plasma fractal, unchanged
    ours = plasma_fractal(1, 32, 1.7, seeded(3))[0].double()
    generator = seeded(3)

    def same_draws(low: float, high: float, shape: tuple[int, ...]) -> np.ndarray:
        # we draw U(-wibble**2, wibble**2) where the reference draws wibble * U(-wibble, wibble)
        unit = torch.rand(shape, generator=generator).double()
        return ((unit * 2 * high * high - high * high) / high).numpy()

    monkeypatch.setattr(np.random, "uniform", same_draws)
    theirs = torch.from_numpy(corruptions.plasma_fractal(mapsize=32, wibbledecay=1.7))
    assert (ours - theirs).abs().max() < 1e-5


class Replay:
    """Stand-ins for np.random.normal / uniform / randint that return the numbers our code draws from a torch
    generator, in the order it draws them, so the reference runs on the same randomness as we do.

    The order for one image: fog's plasma fractal level by level (squares, then the two diamond sets); snow's
    noise field (only the centre it zooms into), then its angle; spatter's noise field; elastic_transform's
    three affine offsets as a (3, 2) draw, then both displacement fields together as one (2, H, W) draw; frost's
    photo, then the crop's corner (row, column) as one (1, 2) uniform draw."""

    def __init__(self, seed: int) -> None:
        self.generator = seeded(seed)
        self.pending: list[np.ndarray] = []
        self.corner: list[float] = []

    def randint(self, low: int, high: int | None = None) -> int:
        if high is None:  # frost's photo
            return int(torch.randint(0, low, (1,), generator=self.generator))
        if not self.corner:  # frost's crop: both coordinates in one draw, the row first
            self.corner = torch.rand(1, 2, generator=self.generator)[0].tolist()[::-1]
        return low + int(self.corner.pop() * (high - low))

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: tuple[int, ...] = ()) -> np.ndarray:
        return (torch.randn(size, generator=self.generator).double() * scale + loc).numpy()

    def uniform(self, low: float = 0.0, high: float = 1.0, size: tuple[int, ...] | None = None) -> np.ndarray:
        if self.pending:  # the second displacement field of elastic_transform, drawn with the first
            return self.pending.pop()
        if (low, high) == (-1, 1) and size is not None and len(size) == 2:  # elastic_transform's two fields, one draw
            dx, dy = (torch.rand(2, *size, generator=self.generator).double() * (high - low) + low).numpy()
            self.pending.append(dy)
            return dx
        if size is None:
            return float(torch.rand((), generator=self.generator)) * (high - low) + low
        return (torch.rand(size, generator=self.generator).double() * (high - low) + low).numpy()


def snow_replay(replay: Replay, image_size: int, zoom: float) -> None:
    """We draw only the centre of the snow field that the reference zooms into: put it where the reference looks."""
    draw = replay.normal

    def centred(loc: float, scale: float, size: tuple[int, ...]) -> np.ndarray:
        crop = int(np.ceil(image_size / zoom))
        field = np.zeros(size)
        start = (image_size - crop) // 2
        field[start:start + crop, start:start + crop] = draw(loc, scale, (crop, crop))
        return field

    replay.normal = centred


REPLAYED = [(name, severity) for name in ("fog", "elastic_transform", "snow", "spatter", "frost")
            for severity in SEVERITIES]


@pytest.mark.parametrize(("name", "severity"), REPLAYED)
def test_same_randomness_gives_the_reference_output(name: str, severity: int, small: torch.Tensor,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    function = reference_function(name)
    image = small[2:3]
    ours = corrupt(image, name, severity, seeded(severity))
    replay = Replay(severity)
    if name == "snow":
        snow_replay(replay, image.shape[-1], get_corruption("snow").levels[severity - 1][2])
    monkeypatch.setattr(np.random, "normal", replay.normal)
    monkeypatch.setattr(np.random, "uniform", replay.uniform)
    monkeypatch.setattr(np.random, "randint", replay.randint)
    array = (image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    theirs = np.asarray(function(Image.fromarray(array), severity), dtype=np.float32)  # before 8-bit storage
    monkeypatch.undo()
    theirs = torch.from_numpy(theirs / 255).permute(2, 0, 1)[None].clamp(0, 1)
    mad = (ours - theirs).abs().mean().item()
    assert mad < 0.2 / 255, f"{name} {severity}: MAD {mad * 255:.3f}/255 on the same random numbers"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision >= 0.29 about its image codecs
def test_both_jpeg_codecs_give_the_same_pixels(small: torch.Tensor) -> None:
    pytest.importorskip("torchvision")
    from vitlessons.perturb import digital

    if not digital._torchvision_codec_works():
        pytest.skip("torchvision has no image codecs here")
    pixels = (small[0] * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()
    assert torch.equal(digital._torchvision_round_trip(pixels, 18), digital._pillow_round_trip(pixels, 18))


def test_frost_uses_the_original_photos_and_covers_big_images() -> None:
    from importlib import resources

    folder = resources.files("vitlessons.perturb") / "frost"
    originals = [torch.from_numpy(np.array(Image.open(folder / name).convert("RGB"))).permute(2, 0, 1)
                 for name in FROST_FILES]
    bank, sizes = frost_photos()
    assert len(sizes) == len(FROST_FILES) == 5  # the original draws randint(5): never its sixth photo
    for photo, size, original in zip(bank, sizes.tolist(), originals):
        assert size == list(original.shape[1:]) and torch.equal(photo[:, :size[0], :size[1]], original)
    big = torch.full((2, 3, 400, 420), 0.5)  # bigger than some photos: those are enlarged to cover it
    out = corrupt(big, "frost", 5, seeded())
    assert out.shape == big.shape and out.std() > 0.01
    bank, sizes = frost_photos("cpu", 400, 420)
    assert (sizes > torch.tensor([400, 420])).all() and (sizes[0] == torch.tensor([600, 900])).all()


def spatter_layers(count: int, height: int, width: int, severity: int) -> np.ndarray:
    """The 8-bit liquid layers of the original's water spatter (severities 1-3), drawn with NumPy."""
    from skimage.filters import gaussian

    mean, std, sigma, threshold = get_corruption("spatter").levels[severity - 1][:4]
    rng = np.random.default_rng(severity)
    layers = []
    for _ in range(count):
        layer = gaussian(rng.normal(mean, std, (height, width)), sigma=sigma)
        layer[layer < threshold] = 0
        layers.append((layer * 255).astype(np.uint8))
    return np.stack(layers)


@pytest.mark.parametrize("severity", [1, 3])
def test_spatters_opencv_steps_are_opencvs_bit_for_bit(severity: int) -> None:
    cv2 = pytest.importorskip("cv2")
    layers = spatter_layers(4, 61, 90, severity)
    edges = canny_edges(torch.from_numpy(layers).float(), 50, 150)
    expected = np.stack([cv2.Canny(layer, 50, 150) for layer in layers]) > 0
    assert expected.any() and np.array_equal(edges.numpy(), expected)
    distance = chamfer_distance(edges, 20.0)
    expected = np.stack([cv2.threshold(cv2.distanceTransform(np.where(e, 0, 255).astype(np.uint8), cv2.DIST_L2, 5),
                                       20, 20, cv2.THRESH_TRUNC)[1] for e in expected])
    assert np.array_equal(distance.numpy(), expected)
    levels = torch.from_numpy(np.floor(expected[:, :, :60] * 9))  # fine-grained 8-bit histograms
    assert np.array_equal(equalize_hist(levels).numpy(),
                          np.stack([cv2.equalizeHist(level.astype(np.uint8)) for level in levels.numpy()]))


def test_works_on_cuda_like_on_the_cpu(small: torch.Tensor) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    many = small.repeat(16, 1, 1, 1)
    for name in OURS:
        for severity in SEVERITIES:
            out = corrupt(many.cuda(), name, severity, torch.Generator(device="cuda").manual_seed(0))
            assert out.is_cuda and out.shape == many.shape and 0 <= out.min() <= out.max() <= 1
            on_cpu = corrupt(many, name, severity, seeded())
            if name in DETERMINISTIC:
                assert (out.cpu() - on_cpu).abs().mean() < MAX_MAD, f"{name} {severity}"
            else:  # other random numbers, the same corruption
                gap = (psnr(out.cpu(), many) - psnr(on_cpu, many)).mean().item()
                assert abs(gap) < 3, f"{name} {severity}: {gap:+.2f} dB"
