"""Linear CKA on representations with known answers (Kornblith et al., 2019)."""

import pytest
import torch

from vitlessons.metrics import cka_matrix, linear_cka


def representation(n: int = 200, d: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_a_representation_matches_itself() -> None:
    x = representation()
    assert linear_cka(x, x) == pytest.approx(1.0)


def test_invariant_to_rotation_scaling_and_shift() -> None:
    x = representation()
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(1)))
    assert linear_cka(x, x @ rotation) == pytest.approx(1.0)
    assert linear_cka(x, 7.5 * x + 3.0) == pytest.approx(1.0)
    y = representation(d=8, seed=2)
    assert linear_cka(x @ rotation * 0.1, y) == pytest.approx(linear_cka(x, y))


def test_not_invariant_to_stretching_one_direction() -> None:
    x = representation()
    stretched = x.clone()
    stretched[:, 0] *= 10  # an invertible linear map that is not a rotation changes CKA (unlike CCA)
    assert linear_cka(x, stretched) < 0.9


def test_noise_lowers_it_and_independent_representations_score_low() -> None:
    x = representation()
    noisy = [linear_cka(x, x + level * representation(seed=3)) for level in (0.1, 0.5, 1.0, 3.0)]
    assert noisy == sorted(noisy, reverse=True) and noisy[0] > 0.95 and noisy[-1] < 0.3
    assert linear_cka(x, representation(n=2000, seed=4)[:200]) < 0.15
    assert linear_cka(x, representation(seed=5)) == pytest.approx(linear_cka(representation(seed=5), x))


def test_layers_of_any_width_and_shape() -> None:
    x = representation()
    layers = [x, x @ torch.randn(16, 40, generator=torch.Generator().manual_seed(6)), representation(seed=7).reshape(200, 4, 4)]
    matrix = cka_matrix(layers, layers)
    assert matrix.shape == (3, 3) and torch.allclose(matrix.diagonal(), torch.ones(3, dtype=matrix.dtype))
    assert torch.allclose(matrix, matrix.T)
    assert matrix[0, 1] > 0.7 > 0.3 > matrix[0, 2]  # a random linear map of x stays close to x; an unrelated one does not


def test_the_gram_form_equals_the_definition() -> None:
    layers = [representation(n=30, d=d, seed=d) for d in (3, 50, 400)]  # narrower and wider than the 30 inputs
    matrix = cka_matrix(layers, layers[:2])
    expected = torch.tensor([[linear_cka(a, b) for b in layers[:2]] for a in layers])
    assert torch.allclose(matrix, expected, atol=1e-10)
    with pytest.raises(ValueError, match="numbers of inputs"):
        cka_matrix(layers, [representation(n=31)])
