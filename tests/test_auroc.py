"""AUROC on hand-worked cases and against torchmetrics."""

import pytest
import torch
from torchmetrics.classification import BinaryAUROC

from vitlessons.metrics import auroc


def test_hand_worked_cases() -> None:
    assert auroc(torch.tensor([0.1, 0.2]), torch.tensor([0.8, 0.9])) == 1.0  # every anomaly above every normal input
    assert auroc(torch.tensor([0.8, 0.9]), torch.tensor([0.1, 0.2])) == 0.0
    assert auroc(torch.tensor([0.5, 0.5]), torch.tensor([0.5])) == 0.5  # a score that cannot tell them apart
    # pairs (normal, anomalous): (1, 2) yes, (1, 0) no, (3, 2) no, (3, 0) no -> 1 of 4
    assert auroc(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 0.0])) == 0.25
    # a tie across the two kinds counts one half: (1, 1) half, (1, 4) yes, (2, 1) no, (2, 4) yes -> 2.5 of 4
    assert auroc(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0])) == 0.625


def test_agrees_with_torchmetrics_with_and_without_ties() -> None:
    g = torch.Generator().manual_seed(0)
    for rounding in (None, 1):
        normal, anomalous = torch.randn(300, generator=g), torch.randn(200, generator=g) + 0.7
        if rounding is not None:
            normal, anomalous = normal.round(decimals=rounding), anomalous.round(decimals=rounding)
        reference = BinaryAUROC()(torch.cat([normal, anomalous]), torch.cat([torch.zeros(300), torch.ones(200)]).long())
        assert auroc(normal, anomalous) == pytest.approx(reference.item(), abs=1e-6)


def test_needs_both_kinds_and_finite_scores() -> None:
    with pytest.raises(ValueError, match="both kinds"):
        auroc(torch.tensor([]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="finite"):
        auroc(torch.tensor([float("nan")]), torch.tensor([1.0]))
