"""Student versions of the chapter notebooks: the same notebook with each solution replaced by a stub.

The instructor's notebook is the one source. A code cell tagged ``solution`` holds imports and function
definitions only; in the student version each function keeps its signature and docstring, gains a comment
naming the exercise, and raises ``NotImplementedError``, which the exercise's checker reports as "not
implemented yet". All outputs are cleared, so students start from a clean notebook.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

SOLUTION_TAG = "solution"
_EXERCISE = re.compile(r"Exercise\s+(\d+\.\d+)")


def stub_source(solution: str, exercise: str) -> str:
    """The stub for one solution cell: its imports, and each function reduced to signature and docstring."""
    tree = ast.parse(solution)
    lines = solution.splitlines()
    parts = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            parts.append(ast.get_source_segment(solution, node))
        elif isinstance(node, ast.FunctionDef):
            parts.append(_function_stub(node, lines, exercise))
        else:
            raise ValueError(f"{exercise}: a solution cell may hold only imports and function definitions, "
                             f"found {type(node).__name__} on line {node.lineno}")
    return "\n\n\n".join(parts) + "\n"


def _function_stub(node: ast.FunctionDef, lines: list[str], exercise: str) -> str:
    """Signature (with decorators) and docstring of ``node``, then a comment and a NotImplementedError."""
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    body = node.body[0]
    has_docstring = isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant) and isinstance(body.value.value, str)
    last = body.end_lineno if has_docstring else body.lineno - 1
    indent = " " * body.col_offset
    kept = lines[first - 1:last]
    return "\n".join([*kept,
                      f"{indent}# {exercise}: write the body of {node.name} (see the instructions above).",
                      f'{indent}raise NotImplementedError("{exercise}: {node.name} is yours to write")'])


def student_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of the instructor notebook with stubs for the solutions and no outputs."""
    student = nbformat.from_dict(notebook)
    exercise = "Exercise"
    for cell in student.cells:
        if cell.cell_type == "markdown":
            found = _EXERCISE.findall(cell.source)
            exercise = f"Exercise {found[-1]}" if found else exercise
            continue
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            cell.source = stub_source(cell.source, exercise).rstrip("\n")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    student.metadata.pop("widgets", None)  # saved widget state belongs to the instructor's run
    student.metadata["vitlessons"] = {"version": "student"}
    return student


def chapter_notebooks(folder: Path) -> list[Path]:
    """The chapter notebooks in ``folder`` (``NN_name.ipynb``), in chapter order."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))


def write_student_versions(notebooks: list[Path], out: Path) -> list[Path]:
    """Write the student version of each notebook into ``out`` under the same name."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        if not any(SOLUTION_TAG in c.metadata.get("tags", []) for c in notebook.cells):
            raise ValueError(f"{path} has no cell tagged {SOLUTION_TAG!r}; is it a chapter notebook?")
        target = out / path.name
        if target.resolve() == path.resolve():
            raise ValueError(f"refusing to overwrite the instructor notebook {path}; choose another folder")
        nbformat.write(student_notebook(notebook), target)
        written.append(target)
    return written
