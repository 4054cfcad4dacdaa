"""The corruption sweep's throughput against the same model's plain inference, measured in one run.

The sweep (``vitlessons.robustness.corruption_sweep``) evaluates every image under all 19 corruptions x 5 severities,
plus once clean; its throughput counts image x corruption x severity evaluations per second. The peer is the model's
plain inference on clean images already on the device, at the same batch size: the sweep can at best approach it,
so the ratio says what corrupting costs on top of classifying. The corruptions are then timed alone on the same
batches, for each one's share of the corruption time. The model is built by timm with random weights
(pretrained=False), so the benchmark runs offline; the images are cue-world images rendered at ``--size``.

    python benchmarks/sweep_benchmark.py [--device cuda] [--model resnet50] [--images 1024] [--batch 128]

Defaults: on a GPU resnet50, 1024 images in batches of 128; on a CPU mobilenetv3_small_100, 8 images in one batch
(about 20 s on two idle cores). Target: at least 5,000 evaluations per second for the 19 x 5 sweep at 224 px with
resnet50 on one modern GPU. The benchmark reports against it; it asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from vitlessons.data import cueworld
from vitlessons.models.wrapper import Classifier, Preprocessing
from vitlessons.perturb import SEVERITIES, corrupt, list_corruptions
from vitlessons.robustness import corruption_sweep

TARGET = 5000  # evaluations per second, 19 x 5 at 224 px, resnet50, one modern GPU
DEFAULTS = {"cuda": {"model": "resnet50", "images": 1024, "batch": 128},
            "cpu": {"model": "mobilenetv3_small_100", "images": 8, "batch": 8}}


def timed(work: Callable[[], object], device: torch.device) -> float:
    """Seconds that ``work`` takes, waiting for the device to finish it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def classifier(name: str, size: int, device: torch.device) -> Classifier:
    """A timm ImageNet architecture with random weights, wrapped like the course's models."""
    net = timm.create_model(name, pretrained=False)
    preprocessing = Preprocessing(size, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    return Classifier(name, net, preprocessing, [str(i) for i in range(net.num_classes)]).to(device).eval()


def plain_inference(model: Classifier, batches: list[torch.Tensor], device: torch.device) -> float:
    """Images per second of the model alone, on clean batches already on the device."""
    with torch.inference_mode():
        model(batches[0]).argmax(-1)  # warm-up: kernels chosen, memory allocated
        seconds = timed(lambda: [model(x).argmax(-1) for x in batches], device)
    return sum(len(x) for x in batches) / seconds


def corruption_seconds(batches: list[torch.Tensor], device: torch.device) -> dict[str, float]:
    """Seconds each corruption takes alone over all batches and severities, after one untimed call (frost's photos,
    kernels)."""
    def run(name: str) -> list[torch.Tensor]:
        generator = torch.Generator(device=device).manual_seed(0)
        return [corrupt(x, name, s, generator) for x in batches for s in SEVERITIES]

    seconds = {}
    for name in list_corruptions():
        corrupt(batches[0][:2], name, 1)
        seconds[name] = timed(lambda: run(name), device)  # noqa: B023 (timed calls it at once)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default=None,
                        help="a timm architecture (default: resnet50 on a GPU, mobilenetv3_small_100 on a CPU)")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    defaults = DEFAULTS["cuda" if device.type == "cuda" else "cpu"]
    name, count, batch = (args.model or defaults["model"], args.images or defaults["images"],
                          args.batch or defaults["batch"])
    split = cueworld.make_split("aligned", count, seed=1, size=args.size)
    model = classifier(name, args.size, device)
    batches = [x.to(device) for x in split.images.split(batch)]
    evaluations = count * len(list_corruptions()) * len(SEVERITIES)
    print(f"{name} at {args.size} px on {device} ({torch.get_num_threads()} CPU threads), {count} images in batches "
          f"of {batch}, {len(list_corruptions())} corruptions x {len(SEVERITIES)} severities", flush=True)

    plain = plain_inference(model, batches, device)
    print(f"plain inference (peer): {plain:9.1f} images/s", flush=True)
    shares = corruption_seconds(batches, device)  # also warms every corruption up for the sweep
    sweep = timed(lambda: corruption_sweep({name: model}, (split.images, split.labels), batch_size=batch,
                                           progress=False, device=device), device)
    rate = evaluations / sweep
    print(f"sweep:                  {rate:9.1f} evaluations/s (image x corruption x severity; the clean pass is "
          f"overhead), {rate / plain:.2f}x plain inference")
    corrupting = sum(shares.values())
    print(f"of the sweep's {sweep:.1f} s: corrupting {corrupting:.1f} s ({corrupting / sweep:.0%}), "
          f"{len(SEVERITIES) * len(list_corruptions()) + 1} model passes over the images "
          f"{(evaluations + count) / plain:.1f} s at the peer's rate")
    print("share of the corruption time:")
    for corruption, seconds in sorted(shares.items(), key=lambda item: -item[1]):
        print(f"  {corruption:18s} {seconds:7.2f} s {seconds / corrupting:6.1%}  "
              f"{count * len(SEVERITIES) / seconds:9.1f} images/s")
    comparable = device.type == "cuda" and name == "resnet50" and args.size == 224
    verdict = ("met" if rate >= TARGET else "missed") if comparable else "not the target's setting"
    print(f"target (not asserted): >= {TARGET:,} evaluations/s for the 19 x 5 sweep at 224 px, resnet50, on one modern "
          f"GPU; this run ({name}, {args.size} px, {device.type}): {rate:,.0f}, {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
