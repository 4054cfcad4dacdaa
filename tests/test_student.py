"""Student versions: stubs in place of solutions, no outputs, and a notebook that runs to its first exercise."""

import ast
from pathlib import Path

import nbformat
import pytest
import torch

from vitlessons import exercises
from vitlessons.cli import main
from vitlessons.student import chapter_notebooks, stub_source, student_notebook

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = chapter_notebooks(ROOT / "notebooks")

SOLUTION = '''import math


def area(radius: float) -> float:
    """The area of a circle."""
    squared = radius ** 2
    return math.pi * squared


@staticmethod
def perimeter(radius: float,
              scale: float = 1.0) -> float:
    return 2 * math.pi * radius * scale
'''


def _solutions(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in notebook.cells if "solution" in c.metadata.get("tags", [])]


def test_stub_keeps_signature_docstring_and_imports() -> None:
    stub = stub_source(SOLUTION, "Exercise 9.1")
    assert "import math" in stub and '"""The area of a circle."""' in stub
    assert "def perimeter(radius: float,\n              scale: float = 1.0) -> float:" in stub and "@staticmethod" in stub
    assert "squared" not in stub and "2 * math.pi" not in stub, "the solution's body leaked into the stub"
    namespace: dict = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="Exercise 9.1: area is yours to write"):
        namespace["area"](1.0)


def test_a_solution_cell_holds_only_imports_and_functions() -> None:
    with pytest.raises(ValueError, match="only imports and function definitions.*Assign on line 1"):
        stub_source("answer = 42\n", "Exercise 9.2")


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_student_version_of_each_chapter(path: Path) -> None:
    teacher = nbformat.read(path, as_version=4)
    student = student_notebook(teacher)
    assert len(student.cells) == len(teacher.cells)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in student.cells if c.cell_type == "code")
    assert "widgets" not in student.metadata and student.metadata["vitlessons"] == {"version": "student"}
    for theirs, mine in zip(_solutions(teacher), _solutions(student)):
        assert mine.source != theirs.source and "raise NotImplementedError" in mine.source
        defined = [n.name for n in ast.parse(theirs.source).body if isinstance(n, ast.FunctionDef)]
        assert defined == [n.name for n in ast.parse(mine.source).body if isinstance(n, ast.FunctionDef)]
    assert teacher.cells[0].source == student.cells[0].source, "prose is unchanged"
    assert any(c.get("outputs") for c in teacher.cells), "the instructor notebook itself was not modified"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_checkers_call_a_stub_unfinished(path: Path) -> None:
    """Each exercise's checker, run on the student's stub, says it is not done yet (and names the function)."""
    cells = student_notebook(nbformat.read(path, as_version=4)).cells
    for index, cell in enumerate(cells):
        if "solution" not in cell.metadata.get("tags", []):
            continue
        namespace = {"torch": torch}
        exec(cell.source, namespace)
        checker_cell = next(c for c in cells[index + 1:] if c.cell_type == "code")
        for statement in ast.parse(checker_cell.source).body:
            call = getattr(statement, "value", None)
            if isinstance(call, ast.Call) and getattr(call.func, "id", "").startswith("check_"):
                checker = getattr(exercises, call.func.id)
                with pytest.raises(exercises.ExerciseFailed, match="not implemented yet"):
                    checker(*(namespace[a.id] for a in call.args))


def test_command_writes_student_versions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notebooks", "--student", str(tmp_path / "out"), *map(str, CHAPTERS)]) == 0
    written = sorted((tmp_path / "out").glob("*.ipynb"))
    assert [p.name for p in written] == [p.name for p in CHAPTERS]
    assert "wrote" in capsys.readouterr().out
    assert nbformat.read(written[0], as_version=4).metadata["vitlessons"]["version"] == "student"


def test_command_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no such notebook"):
        main(["notebooks", "--student", str(tmp_path), str(tmp_path / "missing.ipynb")])
    with pytest.raises(SystemExit, match="refusing to overwrite"):
        main(["notebooks", "--student", str(CHAPTERS[0].parent), str(CHAPTERS[0])])
    plain = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), plain)
    with pytest.raises(SystemExit, match="no cell tagged 'solution'"):
        main(["notebooks", "--student", str(tmp_path / "out"), str(plain)])


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_student_version_runs_to_the_first_exercise(path: Path, tmp_path: Path, notebook_caches: dict) -> None:
    """What a student sees on reaching the first exercise: the checker says it is unfinished, nothing crashes.

    Every code cell before the first exercise is the instructor's own, which nbval runs top to bottom, so a fresh
    kernel here runs only the setup (the cells up to ``vitlessons.setup``), the first stub and its checker,
    rather than the chapter's experiments a second time.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    teacher = nbformat.read(path, as_version=4)
    student = student_notebook(teacher)
    first = next(i for i, c in enumerate(student.cells) if "solution" in c.metadata.get("tags", []))
    checker = next(i for i in range(first + 1, len(student.cells)) if student.cells[i].cell_type == "code")
    assert all(s.source == t.source for s, t in zip(student.cells[:first], teacher.cells[:first])), \
        "a cell before the first exercise differs from the instructor's, so nbval's run does not cover it"
    setup = next(i for i, c in enumerate(student.cells) if c.cell_type == "code" and "vitlessons.setup(" in c.source)
    student.cells = [c for c in student.cells[:setup + 1] if c.cell_type == "code"] + student.cells[first:checker + 1]
    client = NotebookClient(student, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError, match="ExerciseFailed.*not implemented yet"):
        client.execute()
    ran = [c for c in student.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in ran), "a cell before the first checker did not run"
    errors = [i for i, c in enumerate(ran) if any(o.output_type == "error" for o in c.outputs)]
    assert errors == [len(ran) - 1], f"cells {errors} failed; only the first checker should"
