#!/usr/bin/env python
"""Fetch Imagenette, ImageNet-R or ImageNet-A, verified; same as `vitlessons fetch-images NAME`."""

import sys
from pathlib import Path

# Let the script run from a clone where the package is not installed yet.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitlessons.data.imagenet import main

if __name__ == "__main__":
    sys.exit(main())
