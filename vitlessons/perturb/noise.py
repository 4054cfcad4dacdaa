"""ImageNet-C noise corruptions as batched tensor operations: gaussian, shot, impulse and speckle noise.

Each function takes a float (B, 3, H, W) batch in [0, 1], the parameter of one severity and a
``torch.Generator`` on the batch's device, and draws every random number from that generator, so a seeded
generator gives the same output again (on the same device). The parameters are the published ones
(Hendrycks & Dietterich, 2019); the code is written for batches, not per image, and noise is independent
per pixel and per channel, as in the original.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from vitlessons.perturb.registry import corruption
from vitlessons.tensors import work_dtype

__all__ = ["gaussian_noise", "impulse_noise", "poisson", "shot_noise", "speckle_noise"]


def _normal(images: Tensor, generator: torch.Generator) -> Tensor:
    """Standard normal noise of the batch's shape, in the working precision."""
    return torch.randn(images.shape, generator=generator, device=images.device, dtype=work_dtype(images))


@corruption("gaussian_noise", "noise", (0.08, 0.12, 0.18, 0.26, 0.38))
def gaussian_noise(images: Tensor, scale: float, generator: torch.Generator) -> Tensor:
    """Add zero-mean normal noise with standard deviation ``scale`` (sensor read noise)."""
    return _normal(images, generator).mul_(scale).add_(images).to(images.dtype)  # in place: no temporaries


@corruption("shot_noise", "noise", (60, 25, 12, 5, 3))
def shot_noise(images: Tensor, photons: float, generator: torch.Generator) -> Tensor:
    """Photon counting noise: a Poisson count with mean ``photons * x``, divided by ``photons``.

    Fewer photons per unit of brightness (higher severity) means relatively more noise.
    """
    rates = images.to(work_dtype(images)) * photons  # poisson() clips them to [0, photons]
    return (poisson(rates, generator, top=photons) / photons).to(images.dtype)


@corruption("impulse_noise", "noise", (0.03, 0.06, 0.09, 0.17, 0.27))
def impulse_noise(images: Tensor, amount: float, generator: torch.Generator) -> Tensor:
    """Salt-and-pepper noise: each value (pixel and channel) is replaced with probability ``amount``,
    by 0 or 1 with equal chance, as scikit-image's ``random_noise(mode='s&p', amount=amount)``."""
    draw = torch.rand(images.shape, generator=generator, device=images.device, dtype=work_dtype(images))
    # draw < amount / 2: pepper (0); amount / 2 <= draw < amount: salt (1); otherwise the pixel is kept
    return torch.where(draw < amount, (draw >= amount / 2).to(images.dtype), images)


@corruption("speckle_noise", "noise", (0.15, 0.2, 0.35, 0.45, 0.6))
def speckle_noise(images: Tensor, scale: float, generator: torch.Generator) -> Tensor:
    """Multiplicative noise: add ``x * n`` with n normal of standard deviation ``scale``."""
    return _normal(images, generator).mul_(scale).add_(1).mul_(images).to(images.dtype)  # x + x * n, in place


# --------------------------------------------------------------------------------------------------------
# Poisson sampling. torch.poisson is exact but slow on a CPU (one value at a time, no faster than the
# reference's NumPy), so we invert the Poisson CDF with lookup tables instead: a handful of vectorised
# operations per value, on any device. The means are split as lam = r * step + delta on a grid of G steps up
# to the largest mean: Poisson(lam) = Poisson(r * step) + Poisson(delta), the two independent. The first is
# drawn by inverting a tabulated CDF (row r of the table), started from a guide table indexed by the uniform
# so that it rarely needs a step more; the second has a tiny mean (delta < step) and is drawn by inversion
# over its first three values, unless every mean lies on the grid (within 1/1000 of a step, as 8-bit images
# do), when it is left out. The probabilities left out otherwise (the far tail of the table, four or more
# counts from delta) are below 1e-7, about the resolution of float32 uniforms, so the counts follow the
# Poisson law to float precision.

_GRID = 2040            # table rows: means 0, step, ..., G * step = top; 2040 = 8 * 255 puts 8-bit levels on it
_GUIDE = 256            # guide-table bins of the uniform per row
_LARGEST = 1000.0       # larger means go to torch.poisson


def poisson(rates: Tensor, generator: torch.Generator, top: float | None = None) -> Tensor:
    """Poisson counts with the given non-negative means (any shape, float), drawn from ``generator``.

    Exact in distribution up to float32 resolution; the counts come back as floats of the rates' dtype.
    ``top``, if given, bounds the means (larger ones are clipped to it) and lets the tables be reused;
    negative means count as 0.
    """
    flat = rates.detach().reshape(-1).float()
    if not flat.numel():
        return rates.clone()
    given = top is not None
    top = max(float(top if given else flat.max()), 1e-6)
    flat = flat.clamp(0, top)
    if top > _LARGEST:  # the table would be too wide
        return torch.poisson(flat, generator).reshape(rates.shape).to(rates.dtype)
    tables = _poisson_tables if given else _poisson_tables.__wrapped__  # cache only the fixed tops
    cdf, guide = tables(top, str(flat.device))
    counts = torch.empty_like(flat)
    # on a CPU, pieces of 256k values: the dozen passes over them then run in cache (~1.5x quicker)
    chunk = 1 << 18 if flat.device.type == "cpu" else flat.numel()
    for start in range(0, flat.numel(), chunk):
        counts[start:start + chunk] = _poisson_chunk(flat[start:start + chunk], top, cdf, guide, generator)
    return counts.reshape(rates.shape).to(rates.dtype)


def _poisson_chunk(flat: Tensor, top: float, cdf: Tensor, guide: Tensor, generator: torch.Generator) -> Tensor:
    """``poisson`` on a flat float32 piece, with the tables of ``top``."""
    width = cdf.numel() // (_GRID + 1)
    u = torch.rand(flat.shape, generator=generator, device=flat.device)
    # int32 indices and in-place steps keep the memory traffic down
    scaled = flat * (_GRID / top)
    row = scaled.round()
    on_grid = bool((scaled - row).abs_().max() <= 1e-3)  # e.g. 8-bit images: no Poisson(delta) part
    if not on_grid:
        row = scaled.floor().clamp_(0, _GRID)
        delta = scaled.sub_(row).mul_(top / _GRID).clamp_(0, top / _GRID)
    row = row.clamp_(0, _GRID).to(torch.int32)
    k = guide.index_select(0, (u * _GUIDE).to(torch.int32).clamp_(max=_GUIDE - 1).add_(row, alpha=_GUIDE))
    base = row * width
    # step up while F(k) <= u, on the few values the guide left short: two steps, then a binary search of
    # the whole CDF row for the last few (mostly from the top guide bin, whose k range is long)
    short = (cdf.index_select(0, base + k) <= u).nonzero().squeeze(1)
    for _ in range(2):
        if not short.numel():
            break
        k[short] += 1
        short = short[cdf.index_select(0, base[short] + k[short]) <= u[short]]
    table = cdf.view(_GRID + 1, width)
    for part in short.split(1 << 16):
        rows = table.index_select(0, row[part])
        k[part] = torch.searchsorted(rows, u[part, None], right=True).squeeze(1).clamp_(max=width - 1).to(k.dtype)
    counts = k.to(torch.float32)
    if not on_grid:  # add Poisson(delta), by inversion over 0, 1, 2, 3: thresholds p0, p0 + p1, p0 + p1 + p2
        v = torch.rand(flat.shape, generator=generator, device=flat.device)
        threshold = torch.exp(-delta)
        term = threshold * delta
        counts += v >= threshold
        counts += v >= threshold.add_(term)
        counts += v >= threshold.add_(term.mul_(delta).mul_(0.5))
    return counts


@functools.lru_cache(maxsize=16)
def _poisson_tables(top: float, device: str) -> tuple[Tensor, Tensor]:
    """The CDF table F[r, k] = P(Poisson(r * top / G) <= k) for r = 0..G (last column forced to 1) and the
    guide table, the smallest k with F[r, k] > j / J for each row r and bin j, both flattened row by row.
    Built in float64 on the CPU (some accelerators have no float64), then moved to ``device``."""
    width = int(top + 8 * math.sqrt(top) + 16)
    means = torch.arange(_GRID + 1, dtype=torch.float64) * (top / _GRID)
    k = torch.arange(width, dtype=torch.float64)
    log_pmf = torch.special.xlogy(k[None], means[:, None]) - means[:, None] - torch.lgamma(k + 1)[None]
    cdf = torch.exp(log_pmf).cumsum(1)
    cdf[:, -1] = 1.0
    cdf = cdf.float().contiguous()
    bins = (torch.arange(_GUIDE, dtype=torch.float32) / _GUIDE).expand(_GRID + 1, -1).contiguous()
    guide = torch.searchsorted(cdf, bins, right=True).clamp_(max=width - 1)
    return cdf.reshape(-1).to(device), guide.reshape(-1).to(torch.int32).to(device)
