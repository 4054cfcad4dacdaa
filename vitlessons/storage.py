"""Files in our cache are written whole or not at all, so a crash or a full disk never leaves half a file to be read."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_atomically(obj: Any, path: Path) -> None:
    """``torch.save`` to a private temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save(obj, out)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
