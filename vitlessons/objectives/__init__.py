"""Training objectives: each turns a batch into a loss and the numbers worth logging (``vitlessons.train.fit``)."""

from vitlessons.objectives.base import Objective, StepOutput
from vitlessons.objectives.classification import Classification
from vitlessons.objectives.contrastive import Contrastive
from vitlessons.objectives.dino import Dino
from vitlessons.objectives.distillation import ShapeDistillation
from vitlessons.objectives.rotation import Rotation

__all__ = ["Classification", "Contrastive", "Dino", "Objective", "Rotation", "ShapeDistillation", "StepOutput"]
