"""The ``vitlessons`` command: ``vitlessons notebooks --student OUT/`` writes the student versions."""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vitlessons", description="Tools for the vitlessons course.")
    commands = parser.add_subparsers(dest="command", required=True)
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
