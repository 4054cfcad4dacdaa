"""What every checker shares: the failure that carries a hint, running a stub, and the line a pass prints."""

from __future__ import annotations

from collections.abc import Callable


class ExerciseFailed(AssertionError):
    """The answer disagrees with the reference; the message says how."""


def run(function: Callable, *args):
    """Call the student's function, turning an unfinished stub into a clear message."""
    try:
        return function(*args)
    except NotImplementedError:
        raise ExerciseFailed(f"{function.__name__} is not implemented yet: replace the `raise NotImplementedError`.") from None


def passed(what: str) -> None:
    """The one line a passing checker prints, which nbval compares."""
    print(f"Passed: {what}")
