"""vitlessons: the companion package of a course on how Vision Transformers and CNNs see."""

from vitlessons.config import device, setup

__version__ = "0.1.0"
__all__ = ["device", "setup", "__version__"]
