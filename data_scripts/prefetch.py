#!/usr/bin/env python
"""Prefetch hub weights and the cue-conflict stimuli for a classroom: see ``vitlessons.prefetch``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works from a clone without installing

from vitlessons.prefetch import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
