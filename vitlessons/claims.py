"""A chapter's key claims as verdicts: the evidence (numbers that vary by machine) in one cell, and one line
per claim, *reproduced* or *not reproduced*, in the next, a cell marked ``# NBVAL_CHECK_OUTPUT``.

A verdict that changes then fails CI, while the numbers may move. So each claim states its margin: a
comparison that machine noise cannot flip.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Claim:
    """One statement, whether it held, and the numbers that decided it."""

    statement: str
    holds: bool
    evidence: str

    @property
    def verdict(self) -> str:
        return "reproduced" if self.holds else "NOT reproduced"


@dataclass
class Claims:
    """The claims of one chapter, collected as the experiments run."""

    items: list[Claim] = field(default_factory=list)

    def above(self, statement: str, value: float, threshold: float, what: str = "value") -> Claim:
        """The claim that ``value`` exceeds ``threshold``."""
        return self._add(statement, value > threshold, f"{what} {value:.3f}, needs > {threshold:.3f}")

    def below(self, statement: str, value: float, threshold: float, what: str = "value") -> Claim:
        """The claim that ``value`` stays under ``threshold``."""
        return self._add(statement, value < threshold, f"{what} {value:.3f}, needs < {threshold:.3f}")

    def exceeds(self, statement: str, value: float, reference: float, by: float,
                names: tuple[str, str] = ("value", "reference")) -> Claim:
        """The claim that ``value`` is larger than ``reference`` by more than the margin ``by``."""
        gap = value - reference
        return self._add(statement, gap > by,
                         f"{names[0]} {value:.3f} - {names[1]} {reference:.3f} = {gap:+.3f}, needs > {by:+.3f}")

    def _add(self, statement: str, holds: bool, evidence: str) -> Claim:
        if any(c.statement == statement for c in self.items):
            raise ValueError(f"the claim {statement!r} is already stated")
        claim = Claim(statement, bool(holds), evidence)
        self.items.append(claim)
        return claim

    def evidence(self) -> str:
        """Each claim with its numbers: print this in the cell before the verdicts."""
        return "\n".join(f"{c.statement}\n    {c.evidence}" for c in self.items)

    def verdicts(self) -> str:
        """One line per claim, with no numbers, so that the cell's output changes only when a verdict does."""
        if not self.items:
            raise ValueError("no claims were stated")
        width = max(len(c.verdict) for c in self.items)
        return "\n".join(f"{c.verdict:<{width}}  {c.statement}" for c in self.items)
