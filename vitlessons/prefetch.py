"""Fetch everything the paper-scale chapters need, once, so a classroom can then work offline.

    vitlessons prefetch --all            # every hub model and the stimuli (cue conflict, edges, silhouettes)
    vitlessons prefetch resnet50 deit_s  # just these models
    vitlessons prefetch --lab            # warm what lab scale uses and train the lab models (Binder's postBuild)

Weights land in the Hugging Face cache (``HF_HOME``), the stimuli in ``VITLESSONS_DATA``, the trained lab
models in ``VITLESSONS_CACHE``; copy the folders to the classroom machines, or point the variables at a shared
folder.
"""

from __future__ import annotations

import argparse
import sys

from vitlessons.config import hub_cache_dir
from vitlessons.data import photos
from vitlessons.data.download import SETS, FetchError, fetch_stimuli
from vitlessons.models.hub import WeightsUnavailable
from vitlessons.models.registry import REGISTRY, load_model

HUB_MODELS = tuple(name for name, spec in REGISTRY.items() if spec.hub_files is not None)


def warm_lab() -> None:
    """Load everything lab scale reads from disk once and train the course's lab models (a few minutes on a
    CPU), so a fresh session (Binder, a classroom) starts fast and no chapter waits for training."""
    import matplotlib.font_manager  # noqa: F401  (builds the font cache on first import)

    from vitlessons import zoo

    load_model("efficientnet_lite0", device="cpu")
    photos.photos()
    for name in photos.TEXTURES:
        photos.texture(name)
    photos.horse_mask()
    for split in zoo.CHAPTER_1_SPLITS:
        for name in zoo.LAB_MODELS:
            print(zoo.cue_world_model(name, split, device="cpu").summary())
    for name, split, options in zoo.VARIANTS:
        print(zoo.cue_world_model(name, split, device="cpu", **options).summary(), options)
    print(zoo.dino_model(device="cpu").summary())
    for options in zoo.COLLAPSE.values():
        print(zoo.dino_model(device="cpu", **options).summary(), options)
    print("shape token:", zoo.shape_token_model(device="cpu").summary())
    for name, auxiliary in zoo.ROTATION_MODELS:
        print("rotation:", zoo.rotation_model(name, auxiliary=auxiliary, device="cpu")[0].summary(), {"auxiliary": auxiliary})
    print("CLIP:", zoo.clip_model(device="cpu")[0].summary())
    print("CLIP's supervised twin:", zoo.cue_world_model("lab_vit", zoo.CLIP_SPLIT, device="cpu").summary())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitlessons prefetch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help=f"model names, from: {', '.join(HUB_MODELS)}")
    parser.add_argument("--all", action="store_true", help="every hub model and the stimuli")
    parser.add_argument("--stimuli", action="store_true", help="the stimuli: 1,280 cue-conflict images, 160 edges, 160 silhouettes")
    parser.add_argument("--lab", action="store_true",
                        help="load what lab scale uses (EfficientNet-Lite0, the photos), build matplotlib's font cache "
                             "and train the lab models into the cache")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Load each model once (which caches its weights) and fetch the stimuli; report what failed."""
    args = _parser().parse_args(argv)
    unknown = [name for name in args.models if name not in HUB_MODELS]
    if unknown:
        print(f"unknown or offline-only model(s) {unknown}; hub models are: {', '.join(HUB_MODELS)}", file=sys.stderr)
        return 2
    models = HUB_MODELS if args.all else tuple(args.models)
    if not models and not (args.all or args.stimuli or args.lab):
        _parser().print_help()
        return 2
    failed = []
    if args.lab:
        try:
            warm_lab()
            print("lab scale: ready")
        except (WeightsUnavailable, OSError, RuntimeError) as error:
            failed.append("lab")
            print(f"lab scale: failed: {error}", file=sys.stderr)
    for name in models:
        try:
            load_model(name, device="cpu")  # the libraries cache the weights; CLIP also caches its zero-shot head
            print(f"{name}: ready (cache: {hub_cache_dir()})")
        except (WeightsUnavailable, OSError, RuntimeError) as error:
            failed.append(name)
            print(f"{name}: failed: {error}", file=sys.stderr)
    if args.all or args.stimuli:
        for name in SETS:
            try:
                fetch_stimuli(name)
            except FetchError as error:
                failed.append(f"{name} stimuli")
                print(f"{name} stimuli: failed: {error}", file=sys.stderr)
    if failed:
        print(f"Not fetched: {', '.join(failed)}.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
