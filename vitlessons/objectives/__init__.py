"""Training objectives: each turns a batch into a loss and the numbers worth logging (``vitlessons.train.fit``)."""

from vitlessons.objectives.base import Objective, StepOutput
from vitlessons.objectives.classification import Classification

__all__ = ["Classification", "Objective", "StepOutput"]
