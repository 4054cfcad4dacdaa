"""What a model costs: its parameters and the floating-point operations of one forward pass at its input size."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from vitlessons.models.wrapper import Model


def parameters_and_gflops(model: Model) -> tuple[int, float]:
    """(parameters, forward GFLOPs for one image at the model's input size), counted by torch's FLOP counter."""
    device = next(model.parameters()).device
    size = model.preprocessing.size
    image = torch.full((1, 3, size, size), 0.5, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(image)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 1e9
