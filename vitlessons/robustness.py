"""The corruption sweep: every model on every image under every corruption and severity, spread over processes.

``corruption_sweep(models, data)`` counts correct answers per (model, corruption, severity) and on the clean images,
in one pass over the data: each batch is loaded once, corrupted once per condition, and every model sees that batch.
The noise of a batch depends only on (seed, corruption, severity, batch index), so the counts are the same however
the batches are shared out: under ``torch.distributed`` rank r takes batches r, r + world_size, ... and the counts
are summed at the end. With ``cache`` each process records its finished batches as it goes, and a rerun after a
crash or a lost machine does only the rest.

The command runs it on the cue world (lab models) or an ImageNet-style folder (ImageNet models), on one process or
many, and prints accuracy per model and corruption (and ImageNet-C's mCE when all 15 corruptions were run):

    python -m vitlessons.robustness --models lab_vit lab_cnn --data cueworld:aligned:600
    torchrun --nproc_per_node=8 -m vitlessons.robustness --models resnet50 vit_b16 --data folder:VAL --cache sweeps/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from vitlessons import config
from vitlessons.data import cueworld
from vitlessons.metrics import RESNET50_MCE, mce, relative_mce
from vitlessons.models.registry import get_spec, load_model
from vitlessons.models.wrapper import Classifier
from vitlessons.perturb import IMAGENET_C, SEVERITIES, corrupt, get_corruption, list_corruptions
from vitlessons.storage import save_atomically
from vitlessons.zoo import LAB_MODELS, cue_world_model

CLEAN = ("clean", 0)  # the condition of the uncorrupted images
Data = Dataset | tuple[Tensor, Tensor]
Cell = tuple[str, str, int]  # (model, corruption, severity)


@dataclass(frozen=True)
class SweepResult:
    """Correct answers per (model, corruption, severity), the clean images as ("clean", 0), each out of ``total``.

    Counts rather than accuracies, so that the shards of a distributed sweep add up exactly.
    """

    models: tuple[str, ...]
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    correct: dict[Cell, int]
    total: int  # images behind every count

    def accuracy(self, model: str, corruption: str | None = None, severity: int | None = None) -> float:
        """Clean accuracy, a corruption's accuracy averaged over its severities, or one severity's."""
        if corruption is None and severity is not None:
            raise ValueError(f"severity {severity} needs a corruption; got corruption=None (the clean images)")
        if corruption in (None, CLEAN[0]):
            conditions = [CLEAN]
        else:
            conditions = [(corruption, s) for s in self.severities] if severity is None else [(corruption, severity)]
        missing = [(model, *c) for c in conditions if (model, *c) not in self.correct]
        if missing:
            raise KeyError(f"no counts for {missing[0]}; the sweep ran models {self.models}, corruptions "
                           f"{self.corruptions} and severities {self.severities}")
        return sum(self.correct[(model, *c)] for c in conditions) / (len(conditions) * self.total)

    def errors(self, model: str) -> dict[str, list[float]]:
        """Per-severity top-1 errors per corruption, the input of ``metrics.mce``."""
        return {c: [1 - self.accuracy(model, c, s) for s in self.severities] for c in self.corruptions}

    def by_family(self) -> dict[str, pd.DataFrame]:
        """Per corruption family, accuracy against severity (0 is clean) averaged over its corruptions, per model."""
        families: dict[str, list[str]] = {}
        for corruption in self.corruptions:
            families.setdefault(get_corruption(corruption).family, []).append(corruption)
        return {family: pd.DataFrame({m: {0: self.accuracy(m), **{s: sum(self.accuracy(m, c, s) for c in members)
                                                                   / len(members) for s in self.severities}}
                                      for m in self.models}).rename_axis("severity")
                for family, members in families.items()}

    def table(self) -> pd.DataFrame:
        """Accuracy per model (rows) on the clean images and per corruption, averaged over severities (columns)."""
        columns = (CLEAN[0], *self.corruptions)
        rows = [[self.accuracy(m, None if c == CLEAN[0] else c) for c in columns] for m in self.models]
        return pd.DataFrame(rows, index=pd.Index(self.models, name="model"), columns=list(columns))

    def to_json(self) -> str:
        """The counts as JSON: per model, the clean count and each corruption's counts by severity."""
        correct = {m: {CLEAN[0]: self.correct[(m, *CLEAN)],
                       **{c: [self.correct[(m, c, s)] for s in self.severities] for c in self.corruptions}}
                   for m in self.models}
        return json.dumps({"models": self.models, "corruptions": self.corruptions, "severities": self.severities,
                           "total": self.total, "correct": correct}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> SweepResult:
        """The result that ``to_json`` wrote."""
        raw = json.loads(text)
        severities = tuple(raw["severities"])
        correct: dict[Cell, int] = {}
        for model, counts in raw["correct"].items():
            correct[(model, *CLEAN)] = counts.pop(CLEAN[0])
            correct.update({(model, c, s): n for c, per in counts.items()
                            for s, n in zip(severities, per, strict=True)})
        return cls(tuple(raw["models"]), tuple(raw["corruptions"]), severities, correct, raw["total"])


def tensors(data: Dataset, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """A dataset's first ``limit`` images and labels as two tensors, for the probes that take a batch in memory."""
    items = [data[i] for i in range(min(len(data), limit or len(data)))]
    return torch.stack([image for image, _ in items]), torch.tensor([label for _, label in items])


def corruption_sweep(models: Mapping[str, Classifier], data: Data, *, corruptions: Sequence[str] | None = None,
                     severities: Sequence[int] = SEVERITIES, batch_size: int = 64, seed: int = 0,
                     to_classes: Mapping[str, Callable[[Tensor], Tensor]] | None = None,
                     cache: Path | str | None = None, progress: bool = True,
                     device: torch.device | str | None = None) -> SweepResult:
    """Accuracy of every model on ``data``, clean and under every corruption at every severity, in one pass.

    ``data`` is a map-style dataset of (image (3, H, W) in [0, 1], label) or a pair (images, labels).
    ``to_classes[name]`` maps a model's softmax probabilities to the data's labels (as ``evaluate.decisions`` does);
    the decision is the argmax after it. Models are moved to ``device`` (default: the first model's) and put in
    eval mode. Under ``torch.distributed`` every rank returns the same, whole result. ``cache`` (a folder) keeps each
    rank's finished batches, keyed by the sweep's settings but not by the models' weights or the images themselves:
    use one folder per experiment.
    """
    names, corruptions, severities = _checked_settings(models, corruptions, severities, batch_size, to_classes)
    conditions = [CLEAN, *((c, s) for c in corruptions for s in severities)]
    size = _length(data)
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    device = torch.device(device) if device is not None else next(models[names[0]].parameters()).device
    nets = [models[n].to(device).eval() for n in names]
    mappings = [(to_classes or {}).get(n) for n in names]
    key = {"models": names, "images": size, "corruptions": corruptions, "severities": severities, "seed": seed,
           "batch_size": batch_size, "world_size": world, "rank": rank}
    path = Path(cache) / f"sweep-{_digest(key)}.pt" if cache is not None else None
    mine = range(rank, -(-size // batch_size), world)
    counts, done = _load_partial(path, key, len(names) * len(conditions) + 1, mine, size, batch_size)
    todo = [b for b in mine if b not in done]
    shown = f"{len(names)} models x {len(conditions)} conditions" + (f", rank 0 of {world}" if world > 1 else "")
    with tqdm(total=sum(len(_batch_range(b, size, batch_size)) for b in todo), unit="img", unit_scale=True,
              desc=shown, disable=not progress or rank != 0) as bar, torch.inference_mode():
        for b, images, labels in _batches(data, todo, size, batch_size):
            hits = _score(nets, mappings, images.to(device), labels.to(device), conditions, seed, b)
            counts[:-1] += hits.flatten().cpu()
            counts[-1] += len(labels)
            done.add(b)
            if path is not None:
                save_atomically({"key": key, "counts": counts, "done": sorted(done)}, path)
            bar.update(len(labels))
    if world > 1:
        counts = _summed(counts, device)
    correct = counts[:-1].view(len(names), len(conditions)).tolist()
    return SweepResult(names, corruptions, severities,
                       {(n, *c): correct[i][k] for i, n in enumerate(names) for k, c in enumerate(conditions)},
                       int(counts[-1]))


def _checked_settings(models: Mapping[str, Classifier], corruptions: Sequence[str] | None, severities: Sequence[int],
                      batch_size: int, to_classes: Mapping[str, Callable] | None
                      ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
    """The sweep's models, corruptions and severities, refused early and clearly rather than after an hour of work."""
    if not models:
        raise ValueError("corruption_sweep needs at least one model, got none")
    corruptions = tuple(list_corruptions() if corruptions is None else corruptions)
    for name in corruptions:
        get_corruption(name)
    severities = tuple(severities)
    if not severities or any(isinstance(s, bool) or s not in SEVERITIES for s in severities):
        raise ValueError(f"severities must be ints from 1 to 5, got {severities}")
    if len(set(corruptions)) != len(corruptions) or len(set(severities)) != len(severities):
        raise ValueError(f"corruptions and severities must not repeat, got {corruptions} and {severities}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    unknown = sorted(set(to_classes or {}) - set(models))
    if unknown:
        raise ValueError(f"to_classes names {unknown}, which are not among the models {sorted(models)}")
    return tuple(models), corruptions, severities


def _length(data: Data) -> int:
    """How many images the data holds, checking that a pair of tensors describes the same images."""
    if isinstance(data, tuple):
        images, labels = data
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"data must be images (N, 3, H, W) and labels (N,), got shapes {tuple(images.shape)} "
                             f"and {tuple(labels.shape)}")
        return len(images)
    return len(data)


def _batch_range(batch: int, size: int, batch_size: int) -> range:
    """The items of batch ``batch``: fixed by its index, whichever process runs it."""
    return range(batch * batch_size, min((batch + 1) * batch_size, size))


def _batches(data: Data, batches: list[int], size: int, batch_size: int) -> Iterator[tuple[int, Tensor, Tensor]]:
    """Each batch's index, images and labels, loaded once."""
    for b in batches:
        items = _batch_range(b, size, batch_size)
        if isinstance(data, tuple):
            yield b, data[0][items.start:items.stop], data[1][items.start:items.stop].long()
        else:
            pairs = [data[i] for i in items]
            yield b, torch.stack([image for image, _ in pairs]), torch.tensor([int(label) for _, label in pairs])


def _score(nets: list[Classifier], mappings: list[Callable[[Tensor], Tensor] | None], images: Tensor, labels: Tensor,
           conditions: list[tuple[str, int]], seed: int, batch: int) -> Tensor:
    """Correct answers (models, conditions) on one batch: each condition corrupts once and serves every model."""
    hits = torch.zeros(len(nets), len(conditions), dtype=torch.long, device=images.device)
    for k, (name, severity) in enumerate(conditions):
        seen = images if (name, severity) == CLEAN else corrupt(images, name, severity,
                                                                _generator(seed, name, severity, batch, images.device))
        for i, (net, mapping) in enumerate(zip(nets, mappings)):
            logits = net(seen)
            decisions = (mapping(logits.softmax(-1)) if mapping else logits).argmax(-1)
            hits[i, k] = (decisions == labels).sum()
    return hits


def _generator(seed: int, corruption: str, severity: int, batch: int, device: torch.device) -> torch.Generator:
    """A generator seeded from the sweep's seed, the condition and the batch alone, through a stable digest (Python's
    ``hash`` of a string changes from process to process), so a batch gets the same noise on any rank."""
    digest = hashlib.blake2b(f"{seed}/{corruption}/{severity}/{batch}".encode(), digest_size=8).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest, "little") >> 1)


def _digest(key: dict) -> str:
    """A short name for the sweep's settings, so that a partial file is found again only by the same sweep."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def _load_partial(path: Path | None, key: dict, length: int, mine: range, size: int,
                  batch_size: int) -> tuple[Tensor, set[int]]:
    """This rank's counts and finished batches from an earlier, interrupted run, or a fresh start.

    A file that cannot be read, was written by other settings, or whose counts do not add up to its batches is
    warned about and ignored: a wrong count would silently bias every accuracy after it.
    """
    fresh = torch.zeros(length, dtype=torch.long), set()
    if path is None or not path.exists():
        return fresh
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        counts, done = stored["counts"], set(stored["done"])
        if stored["key"] != key:
            raise ValueError("it was written by a sweep with other settings")
        if counts.dtype != torch.long or counts.shape != (length,):
            raise ValueError(f"its counts have shape {tuple(counts.shape)} and dtype {counts.dtype}, "
                             f"expected ({length},) and torch.int64")
        if not done <= set(mine):
            raise ValueError(f"it lists batches {sorted(done - set(mine))[:5]} that are not this rank's")
        seen = sum(len(_batch_range(b, size, batch_size)) for b in done)
        if counts[-1] != seen or counts.min() < 0 or counts[:-1].max() > seen:
            raise ValueError(f"its counts do not fit its {len(done)} finished batches of {seen} images")
        return counts, done
    except Exception as error:  # truncated, foreign or tampered with: never trusted
        warnings.warn(f"ignoring the partial sweep in {path} and starting again: {type(error).__name__}: {error}",
                      stacklevel=3)
        return fresh


def _summed(counts: Tensor, device: torch.device) -> Tensor:
    """Every rank's counts added up, on the device (NCCL reduces only GPU tensors), back on the CPU."""
    total = counts.to(device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.cpu()


# The command.

def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = torch.device(args.device or config.device())
    if device.type == "cuda" and device.index is None and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        rank = dist.get_rank() if world > 1 else 0
        data, imagenet_classes = _dataset(args.data, args.limit)
        models = _load_models(args.models, imagenet_classes, device, rank)
        result = corruption_sweep(models, data, corruptions=args.corruptions, severities=args.severities,
                                  batch_size=args.batch_size, seed=args.seed, cache=args.cache,
                                  progress=not args.quiet, device=device)
        if rank == 0:
            _report(result, args.out)
    finally:
        if world > 1:
            dist.destroy_process_group()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vitlessons.robustness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, metavar="NAME",
                        help=f"lab models ({', '.join(LAB_MODELS)}: the course's, trained on the aligned cue world) "
                             "for cue-world data, registered ImageNet models (vitlessons.models) for folder data")
    parser.add_argument("--data", type=_data_spec, default=("cueworld", "aligned", 600),
                        help="cueworld[:SPLIT[:N]] (default cueworld:aligned:600, seed 1) or folder:PATH "
                             "(an ImageNet-style folder of class folders named by WordNet id)")
    parser.add_argument("--corruptions", type=_corruption_names, default=None,
                        help="all (default), imagenet-c (the 15 of mCE) or NAME,NAME,...")
    parser.add_argument("--severities", type=_severity_list, default=SEVERITIES, help="1-5 (default) or 1,3,5")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--seed", type=int, default=0, help="seeds the corruptions' noise")
    parser.add_argument("--cache", type=Path, default=None, help="folder of partial results, to resume a sweep")
    parser.add_argument("--out", type=Path, default=None, help="write the counts here as JSON")
    parser.add_argument("--device", default=None, help="default: cuda:LOCAL_RANK under torchrun, else the fastest")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _data_spec(text: str) -> tuple[str, str, int | None]:
    """``cueworld[:SPLIT[:N]]`` or ``folder:PATH``, parsed and checked before any work starts."""
    kind, _, rest = text.partition(":")
    if kind == "folder" and rest:
        return kind, rest, None
    split, _, count = rest.partition(":")
    if kind != "cueworld" or (split and split not in cueworld.SPLITS) or (count and not count.isdigit()):
        raise argparse.ArgumentTypeError(f"expected cueworld[:SPLIT[:N]] with SPLIT one of {', '.join(cueworld.SPLITS)}"
                                         f" and N a number of images, or folder:PATH; got {text!r}")
    return kind, split or "aligned", int(count or 600)


def _corruption_names(text: str) -> tuple[str, ...]:
    """``all``, ``imagenet-c`` or a comma-separated list of registered corruptions."""
    names = {"all": tuple(list_corruptions()), "imagenet-c": IMAGENET_C}.get(text) or tuple(text.split(","))
    unknown = [n for n in names if n not in list_corruptions()]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown corruption {unknown[0]!r}; expected all, imagenet-c or names "
                                         f"from {', '.join(list_corruptions())}")
    return names


def _severity_list(text: str) -> tuple[int, ...]:
    """``1-5`` (a range) or ``1,3,5``."""
    low, dash, high = text.partition("-")
    try:
        values = tuple(range(int(low), int(high) + 1)) if dash else tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or any(v not in SEVERITIES for v in values):
        raise argparse.ArgumentTypeError(f"expected severities from 1 to 5 as 1-5 or 1,3,5; got {text!r}")
    return values


def _dataset(spec: tuple[str, str, int | None], limit: int | None) -> tuple[Data, tuple[int, ...] | None]:
    """The images and labels, and the ImageNet class of each label (None for the cue world's own classes)."""
    kind, where, count = spec
    if kind == "folder":
        from vitlessons.data.imagenet import ImageFolderSet  # only folder sweeps need it
        folder = ImageFolderSet(where, limit=limit)
        return folder, tuple(folder.imagenet_classes)
    split = cueworld.make_split(where, count, seed=1)
    return (split.images[:limit], split.labels[:limit]), None


def _load_models(names: list[str], imagenet_classes: tuple[int, ...] | None, device: torch.device,
                 rank: int) -> dict[str, Classifier]:
    """The models by name, rank 0 first: a lab model is trained, or hub weights fetched, once rather than per rank."""
    if rank > 0:
        dist.barrier()
    models = {name: _load_model(name, imagenet_classes, device, rank == 0) for name in names}
    if rank == 0 and dist.is_initialized():
        dist.barrier()
    return models


def _load_model(name: str, imagenet_classes: tuple[int, ...] | None, device: torch.device,
                verbose: bool) -> Classifier:
    """A lab model for the cue world, or an ImageNet model restricted to the folder's classes."""
    if name in LAB_MODELS:
        if imagenet_classes is not None:
            raise SystemExit(f"{name} classifies the cue world's six shapes, not ImageNet images; use --data cueworld")
        return cue_world_model(name, "aligned", device=device, progress=verbose).model
    if imagenet_classes is None:
        raise SystemExit(f"{name} is not a lab model ({', '.join(LAB_MODELS)}); "
                         "ImageNet models need --data folder:PATH")
    options = {"imagenet_classes": imagenet_classes} if "imagenet_classes" in get_spec(name).builder.options() else {}
    model = load_model(name, device=device, **options)
    if not isinstance(model, Classifier):
        raise SystemExit(f"{name} is a backbone without a classifier; the sweep needs class decisions")
    return model


def _report(result: SweepResult, out: Path | None) -> None:
    """Print the accuracy table (and mCE, if ImageNet-C was run in full) and write the counts as JSON."""
    print(f"accuracy on {result.total} images, averaged over severities {', '.join(map(str, result.severities))}:")
    print(result.table().round(3).to_string())
    if set(IMAGENET_C) <= set(result.corruptions) and result.severities == SEVERITIES:
        print(f"mCE vs AlexNet's ImageNet-C errors (meaningful on ImageNet images; ResNet-50 scores {RESNET50_MCE}%):")
        for model in result.models:
            errors = result.errors(model)
            print(f"  {model}: mCE {mce(errors):.1f}%, relative mCE "
                  f"{relative_mce(errors, 1 - result.accuracy(model)):.1f}%")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.to_json())
        print(f"counts written to {out}")


if __name__ == "__main__":
    raise SystemExit(main())
