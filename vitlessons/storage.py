"""Files in our cache are written whole or not at all, so a crash or a full disk never leaves half a file to be read;
weights are stored with the key they were made from and a checksum, so a stale or altered file is never used."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vitlessons.tensors import tensor_bytes


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


class CacheDamaged(ValueError):
    """A cache file that must not be used: unreadable, made from other inputs, or altered since it was written."""


def state_checksum(*states: dict[str, Tensor]) -> str:
    """SHA-256 over every tensor's name, shape, dtype and bytes, so an altered weight is caught on load."""
    digest = hashlib.sha256()
    for state in states:
        for name, value in sorted(state.items()):
            digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
            digest.update(tensor_bytes(value))
    return digest.hexdigest()


def save_checked(path: Path, key: Any, states: dict[str, dict[str, Tensor]], **extra: Any) -> None:
    """Save weights atomically with the key they were made from and their checksum."""
    save_atomically({"key": key, "states": states, "checksum": state_checksum(*states.values()), **extra}, path)


def load_checked(path: Path, key: Any, mismatch: str) -> dict[str, Any]:
    """What ``save_checked`` wrote for this ``key``, or ``CacheDamaged`` saying why it cannot be used."""
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored["key"] != key:
            raise CacheDamaged(mismatch)
        if stored["checksum"] != state_checksum(*stored["states"].values()):
            raise CacheDamaged("its weights fail their checksum")
        return stored
    except CacheDamaged:
        raise
    except Exception as error:  # truncated, overwritten or foreign: never used, always rebuilt
        raise CacheDamaged(f"{type(error).__name__}: {error}") from error
