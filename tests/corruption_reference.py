"""The reference CPU implementation (corrupt-tta) run on a batch, as the corruption tests compare against it."""

import numpy as np
import pytest
import torch


def reference(images: torch.Tensor, name: str, severity: int) -> torch.Tensor:
    """corrupt-tta on each image (image i under np.random.seed(i)), as a batch in [0, 1]."""
    corrupt_tta = pytest.importorskip("corrupt_tta")
    outputs = []
    for index, image in enumerate(images):
        np.random.seed(index)
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        out = corrupt_tta.corrupt(array, severity=severity, corruption_name=name)
        outputs.append(torch.from_numpy(np.asarray(out, dtype=np.float32) / 255).permute(2, 0, 1))
    return torch.stack(outputs).clamp(0, 1)
