"""binder/ stays consistent with pyproject.toml, and its postBuild really runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirement_lines() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in _requirement_lines():
        if line.startswith("-"):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"binder pins exact versions, got {line!r}"
        pins[requirement.name] = Version(specifier.version)
    return pins


def _project_specifier(name: str) -> SpecifierSet:
    return next(Requirement(r).specifier for r in PROJECT["dependencies"] if Requirement(r).name == name)


def test_binder_uses_cpu_torch_that_the_project_accepts() -> None:
    lines, pins = _requirement_lines(), _pins()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines, "binder must use PyTorch's CPU index"
    for name in ("torch", "torchvision"):
        assert pins[name].local == "cpu", f"binder must pin the CPU build of {name}, got {pins[name]}"
        base = Version(pins[name].public)
        assert base in _project_specifier(name), f"binder's {name} {base} is outside pyproject's {_project_specifier(name)}"
    torch, vision = Version(pins["torch"].public), Version(pins["torchvision"].public)
    assert (vision.major, vision.minor) == (0, torch.minor + 15), f"torchvision {vision} is not the pair of torch {torch}"


def test_binder_installs_the_package_itself() -> None:
    assert "-e ." in _requirement_lines() or "." in _requirement_lines(), "binder must install the package (-e .)"


def test_binder_python_satisfies_the_project() -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", runtime)
    assert match, f"runtime.txt must read python-X.Y, got {runtime!r}"
    assert Version(match[1]) in SpecifierSet(PROJECT["requires-python"])


def test_binder_scripts_are_executable_and_name_real_files() -> None:
    for name in ("postBuild", "start"):
        script = BINDER / name
        assert os.access(script, os.X_OK), f"binder/{name} must be executable"
        assert script.read_text().startswith("#!/usr/bin/env bash"), f"binder/{name} must be a bash script"
    for called in re.findall(r"python (\S+\.py)", (BINDER / "postBuild").read_text()):
        assert (ROOT / called).is_file(), f"binder/postBuild calls {called}, which does not exist"
    assert 'exec "$@"' in (BINDER / "start").read_text(), "binder/start must hand over to the session command"


def test_binder_start_defaults_to_lab_scale_but_respects_a_choice() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VITLESSONS_SCALE"}
    default = subprocess.run([BINDER / "start", "sh", "-c", "echo $VITLESSONS_SCALE"], env=env,
                             capture_output=True, text=True, check=True)
    chosen = subprocess.run([BINDER / "start", "sh", "-c", "echo $VITLESSONS_SCALE"],
                            env={**env, "VITLESSONS_SCALE": "paper"}, capture_output=True, text=True, check=True)
    assert (default.stdout.strip(), chosen.stdout.strip()) == ("lab", "paper")


def test_binder_post_build_runs() -> None:
    """The build step itself, offline: it must load everything lab scale needs."""
    done = subprocess.run(["bash", str(BINDER / "postBuild")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "lab scale: ready" in done.stdout
