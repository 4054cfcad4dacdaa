"""vitlessons: the companion package of a course on how Vision Transformers and CNNs see."""

from vitlessons.config import device
from vitlessons.session import PaperScale, setup

__version__ = "0.1.0"
__all__ = ["PaperScale", "device", "setup", "__version__"]
