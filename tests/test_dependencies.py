"""Installing the course keeps the user's torch: the package sets lower bounds, the tested pair lives in constraints.txt."""

import importlib.metadata
import re

import nbformat
from packaging.requirements import Requirement
from requirements_files import PROJECT, ROOT, exact_pins, is_torch_pair, project_specifier

from vitlessons.student import chapter_notebooks

CAPPING = ("<", "<=", "==", "===", "~=")  # operators that would make pip replace a newer release


def _caps(requirements: list[str]) -> list[str]:
    """The requirements that set an upper bound, which pip would enforce by downgrading."""
    return [r for r in requirements if any(s.operator in CAPPING for s in Requirement(r).specifier)]


def test_runtime_dependencies_have_lower_bounds_only() -> None:
    dependencies = PROJECT["dependencies"]
    assert not _caps(dependencies), f"pyproject.toml caps {_caps(dependencies)}; put tested versions in constraints.txt"
    unbounded = [r for r in dependencies if not any(s.operator == ">=" for s in Requirement(r).specifier)]
    assert not unbounded, f"give each dependency the lower bound the code needs: {unbounded}"


def test_the_installed_package_declares_no_caps() -> None:
    """What pip sees (the installed metadata), not only the file, must leave a newer torch alone."""
    declared = [r for r in importlib.metadata.requires("vitlessons") if "extra ==" not in r]
    assert not _caps(declared), f"the installed vitlessons caps {_caps(declared)}: reinstall with pip install -e ."


def test_constraints_pin_a_torch_pair_the_package_accepts() -> None:
    pins = exact_pins(ROOT / "constraints.txt")
    assert set(pins) == {"torch", "torchvision"}, f"constraints.txt should pin the tested torch pair only, got {set(pins)}"
    for name, version in pins.items():
        assert version in project_specifier(name), f"constraints.txt's {name} {version} is outside {project_specifier(name)}"
    assert is_torch_pair(pins["torch"], pins["torchvision"])


def test_ci_and_readme_install_with_the_constraints() -> None:
    assert re.search(r'pip install [^\n]*-e "\.\[dev\]" -c constraints\.txt', (ROOT / ".ci" / "run").read_text())
    assert 'pip install -e ".[dev]" -c constraints.txt' in (ROOT / "README.md").read_text()


def test_colab_install_cell_leaves_colab_torch_alone() -> None:
    """The Colab cell installs the package alone: no torch, no constraints, no forced upgrade."""
    for path in chapter_notebooks(ROOT / "notebooks"):
        install = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        command = next(line for line in install.source.splitlines() if "pip install" in line)
        assert not re.search(r"torch|--upgrade|-U\b|--force-reinstall|-c |constraints", command), f"{path.name}: {command}"
