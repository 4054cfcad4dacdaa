#!/usr/bin/env python
"""Fetch Geirhos et al.'s stimuli (2019, CC BY 4.0): cue conflict, edges, silhouettes; same as `vitlessons fetch`."""

import sys
from pathlib import Path

# Let the script run from a clone where the package is not installed yet.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitlessons.data.download import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
