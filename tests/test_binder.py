"""binder/ stays consistent with pyproject.toml, and its postBuild really runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from requirements_files import PROJECT, ROOT, exact_pins, is_torch_pair, project_specifier, requirement_lines

from vitlessons import zoo

BINDER = ROOT / "binder"


def _requirement_lines() -> list[str]:
    return requirement_lines(BINDER / "requirements.txt")


def test_binder_uses_cpu_torch_that_the_project_accepts() -> None:
    lines, pins = _requirement_lines(), exact_pins(BINDER / "requirements.txt")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines, "binder must use PyTorch's CPU index"
    for name in ("torch", "torchvision"):
        assert pins[name].local == "cpu", f"binder must pin the CPU build of {name}, got {pins[name]}"
        base = Version(pins[name].public)
        assert base in project_specifier(name), f"binder's {name} {base} is outside pyproject's {project_specifier(name)}"
    torch, vision = Version(pins["torch"].public), Version(pins["torchvision"].public)
    assert is_torch_pair(torch, vision), f"torchvision {vision} is not the pair of torch {torch}"


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


def test_binder_post_build_runs(notebook_caches: dict) -> None:
    """The build step itself, offline: it must load everything lab scale needs and train the lab models.

    It trains into the test run's shared cache, as Binder's build trains into the image's: the chapters that
    the later tests run then load those models, as a Binder session would.
    """
    done = subprocess.run(["bash", str(BINDER / "postBuild")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
                          timeout=1800)
    assert done.returncode == 0, done.stderr
    assert "lab scale: ready" in done.stdout
    trained = [line for line in done.stdout.splitlines() if line.startswith(("lab_cnn: ", "lab_vit: "))]
    assert len(trained) == len(zoo.CHAPTER_1_SPLITS) * len(zoo.LAB_MODELS) + len(zoo.VARIANTS), done.stdout
    dino = [line for line in done.stdout.splitlines() if line.startswith("lab_vit (DINO teacher): ")]
    assert len(dino) == 1 + len(zoo.COLLAPSE), done.stdout
    assert sum(line.startswith("shape token: lab_vit: ") for line in done.stdout.splitlines()) == 1, done.stdout
    assert sum(line.startswith("rotation: ") for line in done.stdout.splitlines()) == len(zoo.ROTATION_MODELS), done.stdout
    assert sum(line.startswith(("CLIP: lab_vit: ", "CLIP's supervised twin: lab_vit: ")) for line in done.stdout.splitlines()) == 2
