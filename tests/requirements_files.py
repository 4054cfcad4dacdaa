"""Reading the project's dependency files: pyproject's ranges and the exact pins of requirements-style files."""

from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirement_lines(path: Path) -> list[str]:
    """The lines of a requirements-style file without comments and blanks."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def exact_pins(path: Path) -> dict[str, Version]:
    """name -> pinned version for every requirement of the file, which must all be exact (==)."""
    pins = {}
    for line in requirement_lines(path):
        if line.startswith("-"):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name} pins exact versions, got {line!r}"
        pins[requirement.name] = Version(specifier.version)
    return pins


def project_specifier(name: str) -> SpecifierSet:
    """The version range pyproject.toml gives a runtime dependency."""
    return next(Requirement(r).specifier for r in PROJECT["dependencies"] if Requirement(r).name == name)


def is_torch_pair(torch: Version, vision: Version) -> bool:
    """torchvision 0.(m + 15) is built for torch 2.m."""
    return (torch.major, vision.major, vision.minor) == (2, 0, torch.minor + 15)
