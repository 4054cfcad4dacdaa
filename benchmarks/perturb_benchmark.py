"""Our batched corruptions against ImageNet-C's own code (fidelity) and imagecorruptions (speed), in one run.

The reference is ``tests/corruption_reference.py``, the same one the tests use: the original
``make_imagenet_c.py`` of hendrycks/robustness, run through imagecorruptions 1.1.2 (a packaging of it for any
image size) where that keeps the original, and through the original's own steps where it does not
(elastic_transform, frost, pixelate; motion blur rounded to 8 bits as ImageMagick writes it). Install it with
``pip install --no-deps imagecorruptions==1.1.2``, as .ci/run does.

For every corruption it prints throughput (images per second) of ours and of imagecorruptions as it stands (the
speed peer: the CPU implementation people use) and the ratio, the fidelity gap to ImageNet-C (mean PSNR of
corrupted vs clean, ours minus reference, per severity) and, for corruptions that are deterministic given their
parameters, the mean absolute difference between the two outputs; with a CUDA device, our images per second on it
too. It saves a figure of one photo under every corruption at severity 3, ours beside the reference.

Ours is timed on the whole batch, the median of a few identical runs (the steady state of perturbing a
dataset batch after batch); imagecorruptions one image at a time, as it works. The PSNR gap of a random
corruption averages several draws per image for both (more where the reference is cheap), since one draw
of spatter varies by ~5 dB.

    python benchmarks/perturb_benchmark.py [--batch 32] [--reference-images 4] [--draws 8] [--repeats 3]

Targets on a 2-core CPU, batch 32: the whole sweep at least 20x faster per image than imagecorruptions, no
corruption slower, every PSNR gap to ImageNet-C within 1.5 dB, and MAD under 3/255 for the deterministic ones.
The benchmark reports misses; it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from vitlessons.data.photos import PHOTOS, photos
from vitlessons.perturb import SEVERITIES, corrupt, list_corruptions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import corruption_reference  # the tests' reference: the benchmark and the tests measure against the same thing

DETERMINISTIC = ("contrast", "brightness", "saturate", "pixelate", "jpeg_compression",
                 "defocus_blur", "zoom_blur", "gaussian_blur")
TARGET_SPEEDUP, TARGET_DB, TARGET_MAD = 20.0, 1.5, 3 / 255


def photo_batch(size: int, count: int) -> torch.Tensor:
    """``count`` distinct real 224 px images: crops and mirror images of the bundled photos, quantised to 8 bits."""
    big = photos(PHOTOS, size=size + 32)
    generator = torch.Generator().manual_seed(0)
    crops = []
    for index in range(count):
        top, left = torch.randint(0, 33, (2,), generator=generator).tolist()
        crop = big[index % len(big), :, top:top + size, left:left + size]
        crops.append(crop.flip(-1) if (index // len(big)) % 2 else crop)
    return (torch.stack(crops) * 255).round() / 255  # the reference reads uint8, so both see the same pixels


def psnr(corrupted: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB, capped at 60 dB for identical images."""
    mse = ((corrupted - clean) ** 2).flatten(1).mean(1).clamp_min(1e-6)
    return -10 * torch.log10(mse)


def reference(images: torch.Tensor, name: str, severity: int, draw: int = 0) -> tuple[torch.Tensor, float]:
    """ImageNet-C's output for each image (NumPy seeded per image and draw), and its mean seconds per image."""
    start = time.perf_counter()
    out = corruption_reference.reference(images, name, severity, seed=1000 * draw)
    return out, (time.perf_counter() - start) / len(images)


def peer(images: torch.Tensor, name: str, severity: int) -> float:
    """imagecorruptions' mean seconds per image (its output is only timed)."""
    start = time.perf_counter()
    corruption_reference.imagecorruptions_as_is(images, name, severity)
    return (time.perf_counter() - start) / len(images)


def ours(images: torch.Tensor, name: str, severity: int, draw: int = 0, repeats: int = 1) -> tuple[torch.Tensor, float]:
    """Our output for the batch, and the median seconds per image over ``repeats`` identical runs."""
    times = []
    for _ in range(repeats):
        generator = torch.Generator(device=images.device).manual_seed(draw)
        if images.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = corrupt(images, name, severity, generator)
        if images.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return out.cpu(), float(np.median(times)) / len(images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reference-images", type=int, default=4, help="images the (slow) reference corrupts")
    parser.add_argument("--draws", type=int, default=8,
                        help="least random draws per image behind each PSNR gap of a random corruption")
    parser.add_argument("--fidelity-seconds", type=float, default=1.0,
                        help="reference time to spend on more draws per (corruption, severity), up to 64 draws")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of our batch (the median counts)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args(argv)
    if not corruption_reference.available():
        print(f"the reference needs imagecorruptions: {corruption_reference.INSTALL}")
        return 1
    batch = photo_batch(args.size, args.batch)
    subset = batch[:args.reference_images]
    gpu = batch.cuda() if torch.cuda.is_available() else None
    print(f"batch {args.batch} x {args.size} px, {torch.get_num_threads()} threads; imagecorruptions timed on "
          f"{len(subset)} images, ours the median of {args.repeats} runs; PSNR gaps to ImageNet-C of random "
          f"corruptions over {args.draws}-64 draws per image")
    print(f"{'corruption':18s} {'ours img/s':>10s} {'peer img/s':>10s} {'ratio':>7s}  "
          f"{'PSNR gap per severity (dB)':30s} {'max MAD':>8s}" + ("  GPU img/s" if gpu is not None else ""))
    total_ours = total_peer = 0.0
    misses, shown = [], {}
    for name in list_corruptions():
        t_ours = t_peer = gpu_seconds = 0.0
        gaps, mads = [], []
        ours(batch[:2], name, 1)  # warm-up: one-off setup (kernels, frost photos) is not throughput
        for severity in SEVERITIES:
            out, seconds = ours(batch, name, severity, repeats=args.repeats)
            ref, ref_seconds = reference(subset, name, severity)
            # where the reference is imagecorruptions' own function, its run is the peer's too
            peer_seconds = peer(subset, name, severity) if name in corruption_reference.ORIGINAL else ref_seconds
            t_ours, t_peer = t_ours + seconds, t_peer + peer_seconds
            if severity == 3:
                shown[name] = (out[0], ref[0])
            if name in DETERMINISTIC:
                mads.append((out[:len(subset)] - ref).abs().mean().item())
            psnr_ours, psnr_reference = [psnr(out[:len(subset)], subset)], [psnr(ref, subset)]
            # one draw of spatter varies by ~5 dB per image, so cheap random corruptions get more draws
            affordable = int(args.fidelity_seconds / (ref_seconds * len(subset)))
            draws = 1 if name in DETERMINISTIC else min(64, max(args.draws, affordable))
            for draw in range(1, draws):  # fresh noise for both, on the same images
                psnr_ours.append(psnr(ours(subset, name, severity, draw)[0], subset))
                psnr_reference.append(psnr(reference(subset, name, severity, draw)[0], subset))
            gaps.append((torch.cat(psnr_ours).mean() - torch.cat(psnr_reference).mean()).item())
            if gpu is not None:
                gpu_seconds += ours(gpu, name, severity, repeats=args.repeats)[1]
        total_ours, total_peer = total_ours + t_ours, total_peer + t_peer
        ratio = t_peer / t_ours
        mad = f"{max(mads) * 255:6.2f}/255" if mads else ""
        gpu_text = f"  {len(SEVERITIES) / gpu_seconds:9.0f}" if gpu is not None else ""
        print(f"{name:18s} {len(SEVERITIES) / t_ours:10.1f} {len(SEVERITIES) / t_peer:10.1f} {ratio:6.1f}x  "
              f"{' '.join(f'{g:+5.2f}' for g in gaps):30s} {mad:>8s}{gpu_text}", flush=True)
        if ratio < 1:
            misses.append(f"{name} is slower than imagecorruptions ({ratio:.2f}x)")
        misses += [f"{name} severity {s}: PSNR gap {g:+.2f} dB" for s, g in zip(SEVERITIES, gaps) if abs(g) > TARGET_DB]
        if mads and max(mads) >= TARGET_MAD:
            misses.append(f"{name}: MAD {max(mads) * 255:.2f}/255")
    overall = total_peer / total_ours
    print(f"\nwhole sweep, {len(list_corruptions())} corruptions x 5 severities: {overall:.1f}x faster per image "
          f"than imagecorruptions ({total_ours:.3f} s vs {total_peer:.2f} s per image)")
    if overall < TARGET_SPEEDUP:
        misses.append(f"whole sweep only {overall:.1f}x faster (target {TARGET_SPEEDUP:.0f}x)")
    print("all targets met" if not misses else "targets missed:\n  " + "\n  ".join(misses))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "corruptions_severity3.png"
    _figure(shown).savefig(path, dpi=80)
    print(f"figure: {path}")
    return 0


def _figure(shown: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> Figure:
    """Ours (top row) above ImageNet-C's reference (bottom row), one column per corruption."""
    figure = Figure(figsize=(1.6 * len(shown), 3.6))
    axes = figure.subplots(2, len(shown), squeeze=False)
    for column, (name, pair) in enumerate(shown.items()):
        for row, (image, label) in enumerate(zip(pair, ("ours", "ImageNet-C"))):
            axes[row, column].imshow(image.permute(1, 2, 0).numpy())
            axes[row, column].set_axis_off()
            axes[row, column].set_title(f"{name}\n{label}" if row == 0 else label, fontsize=7)
    figure.tight_layout()
    return figure


if __name__ == "__main__":
    raise SystemExit(main())
