"""Every chapter notebook follows the course template, opens on Colab, and keeps outputs of one clean run."""

import re
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import nbformat
import pytest

from vitlessons import exercises
from vitlessons.student import chapter_notebooks

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = chapter_notebooks(ROOT / "notebooks")
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def test_there_are_chapters() -> None:
    assert CHAPTERS, "no chapter notebooks (notebooks/NN_name.ipynb) found"


@pytest.fixture(params=CHAPTERS, ids=[p.stem for p in CHAPTERS])
def chapter(request: pytest.FixtureRequest) -> tuple[Path, nbformat.NotebookNode]:
    return request.param, nbformat.read(request.param, as_version=4)


def _code(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in notebook.cells if c.cell_type == "code"]


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return cell.metadata.get("tags", [])


def test_title_goals_and_run_time(chapter) -> None:
    path, notebook = chapter
    first = notebook.cells[0]
    number = int(path.name[:2])
    assert first.cell_type == "markdown" and first.source.startswith(f"# Chapter {number} · "), \
        f"{path.name}: the first cell must be the title '# Chapter {number} · ...'"
    assert "**What you will learn**" in first.source, f"{path.name}: the title cell must list the learning goals"
    assert "**Run time.**" in first.source, f"{path.name}: the title cell must state the run time"


def test_colab_badge_and_install_cell(chapter) -> None:
    path, notebook = chapter
    badge = f"https://colab.research.google.com/github/{REPOSITORY.removeprefix('https://github.com/')}" \
            f"/blob/main/notebooks/{path.name}"
    assert badge in notebook.cells[0].source, f"{path.name}: no Open-in-Colab badge pointing at {badge}"
    install = _code(notebook)[0]
    assert "colab" in _tags(install), f"{path.name}: the first code cell must be the Colab install cell (tag 'colab')"
    assert 'if "google.colab" in sys.modules:' in install.source, f"{path.name}: the install must run only on Colab"
    assert f"git+{REPOSITORY}" in install.source, f"{path.name}: the install cell must install from {REPOSITORY}"


def test_setup_cell_comes_first(chapter) -> None:
    path, notebook = chapter
    setup = _code(notebook)[1]
    assert re.search(r"\bvitlessons\.setup\(", setup.source), \
        f"{path.name}: the code cell after the install cell must call vitlessons.setup()"


def test_every_exercise_has_a_solution_and_a_checker(chapter) -> None:
    path, notebook = chapter
    cells = notebook.cells
    solutions = [i for i, c in enumerate(cells) if "solution" in _tags(c)]
    assert solutions, f"{path.name}: no exercise (a code cell tagged 'solution')"
    for index in solutions:
        following = next(c for c in cells[index + 1:] if c.cell_type == "code")
        called = re.findall(r"\b(check_\w+)\(", following.source)
        assert called, f"{path.name}: the solution in cell {index} is not followed by a checker cell"
        for name in called:
            assert callable(getattr(exercises, name, None)), f"{path.name}: vitlessons.exercises has no {name}"
        assert following.source.startswith("# NBVAL_CHECK_OUTPUT"), \
            f"{path.name}: checker cell after cell {index} must be marked # NBVAL_CHECK_OUTPUT"
    headings = [c.source for c in cells if c.cell_type == "markdown"]
    assert len(re.findall(r"### Exercise \d+\.\d+", "\n".join(headings))) == len(solutions), \
        f"{path.name}: each solution needs its '### Exercise N.M' heading"


def test_takeaways_and_references(chapter) -> None:
    path, notebook = chapter
    text = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    for heading in ("## Takeaways", "## References"):
        assert heading in text, f"{path.name}: missing '{heading}'"
    assert text.rindex("## Takeaways") > text.rindex("### Exercise"), f"{path.name}: takeaways come after the exercises"


def test_stored_outputs_come_from_one_clean_run(chapter) -> None:
    path, notebook = chapter
    counts = [c.execution_count for c in _code(notebook)]
    if not any(counts):
        return  # a notebook without stored outputs is fine
    assert counts == list(range(1, len(counts) + 1)), \
        f"{path.name}: execution counts {counts} are not 1..n: re-run the notebook top to bottom on a fresh kernel"
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{path.name}: cell {index} stores an error: {output.get('ename')}"
            assert not (output.output_type == "stream" and "Traceback" in output.text), \
                f"{path.name}: cell {index} prints a traceback"


def test_claims_are_checked_as_verdicts(chapter) -> None:
    """A cell marked # NBVAL_CHECK_OUTPUT prints one verdict per claim; the code cell before it prints the evidence."""
    path, notebook = chapter
    code = _code(notebook)
    verdict_cells = [i for i, c in enumerate(code) if ".verdicts()" in c.source]
    assert len(verdict_cells) == 1, f"{path.name}: needs exactly one cell that prints the claims' verdicts"
    index = verdict_cells[0]
    assert code[index].source.startswith("# NBVAL_CHECK_OUTPUT"), f"{path.name}: the verdict cell must be checked by nbval"
    assert ".evidence()" in code[index - 1].source, f"{path.name}: the cell before the verdicts must print the evidence"
    printed = "".join(o.get("text", "") for o in code[index].get("outputs", []) if o.output_type == "stream")
    if code[index].execution_count:
        lines = printed.strip().splitlines()
        assert lines and all(re.match(r"(reproduced|NOT reproduced) +\S", line) for line in lines), \
            f"{path.name}: the verdict cell printed {printed!r}, not one verdict per line"
