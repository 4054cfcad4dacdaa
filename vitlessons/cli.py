"""The ``vitlessons`` command, which every install has (a pip or Colab install has no ``data_scripts/``).

    vitlessons fetch                     download the stimuli: cue conflict, edges, silhouettes
    vitlessons fetch-images imagenette   download Imagenette, ImageNet-R or ImageNet-A (chapter 5 at paper scale)
    vitlessons sweep --models ...        the corruption sweep, on one process or under torchrun
    vitlessons prefetch --all            fetch hub weights and stimuli once, for offline use
    vitlessons notebooks --student OUT/  write the student versions of the chapters
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from vitlessons.student import chapter_notebooks, write_student_versions


def _chapter_notebooks(given: list[Path]) -> list[Path]:
    """The notebooks named, or every chapter in ./notebooks; a clear error when there are none."""
    if given:
        missing = [str(p) for p in given if not p.is_file()]
        if missing:
            raise SystemExit(f"no such notebook: {', '.join(missing)}")
        return given
    found = chapter_notebooks(Path("notebooks"))
    if not found:
        raise SystemExit("no chapter notebooks in ./notebooks; run from the repository root or name the notebooks")
    return found


# Subcommands that hand their arguments to a module's own command line.
DELEGATED = {
    "fetch": ("vitlessons.data.download", "download the cue-conflict, edge and silhouette stimuli (checksummed, resumable)"),
    "fetch-images": ("vitlessons.data.imagenet", "download Imagenette, ImageNet-R or ImageNet-A (pinned, checksummed)"),
    "prefetch": ("vitlessons.prefetch", "fetch hub weights and the stimuli once, for a classroom or offline use"),
    "sweep": ("vitlessons.robustness", "accuracy under every corruption and severity, on one process or many"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        return importlib.import_module(DELEGATED[argv[0]][0]).main(argv[1:])
    parser = argparse.ArgumentParser(prog="vitlessons", description="Tools for the vitlessons course.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, about) in DELEGATED.items():
        commands.add_parser(name, help=f"{about} (see vitlessons {name} --help)", add_help=False)
    notebooks = commands.add_parser("notebooks", help="write the student versions of the chapter notebooks")
    notebooks.add_argument("--student", type=Path, required=True, metavar="OUT",
                           help="folder for the student notebooks (solutions replaced by stubs, outputs cleared)")
    notebooks.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/NN_*.ipynb)")
    args = parser.parse_args(argv)
    try:
        written = write_student_versions(_chapter_notebooks(args.paths), args.student)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
