"""Ranking the directions of a set: strongest first.

With K = 128, most directions of a trained set are weak or duplicates. A set's ranking is stored in
its file (``spec["ranking"]``: ``order``, ``scores``, ``by``, ``magnitude``); ``traverse`` and the
README picture show the strongest directions first, and the MIG/DCI protocol takes its top-k from it.

``image_change`` (the default, any direction set): the mean absolute pixel change of
G(z + s_k(+-m)) against G(z), s_k moving the latent a distance m along direction k (the same
equal-distance shift as the factor score; m is half the run's eps-max). ``rca`` (sets with a
reconstructor): how often the reconstructor recovers direction k from fresh pairs. docs/results.md
measures which of the two follows the true factors' changes better: for the paper's trained sets,
per-direction RCA does (Spearman 0.4-0.7 against -0.4-0.1 for image change, whose largest changes are
the MLP paths that leave the images' manifold); for closed-form sets image change does (0.93-0.97).
So `discover` ranks a set that has a reconstructor by ``rca`` and any other set by ``image_change``.
"""

from __future__ import annotations

from typing import Any

import torch

from . import defaults
from .directions import DirectionSet
from .interfaces import GeneratorAdapter
from .metrics import pieces


@torch.no_grad()
def equal_distance_shift(dset: DirectionSet, k: int, magnitude: float, n: int) -> torch.Tensor:
    """``(n, D)``: A(k, magnitude) rescaled to latent length |magnitude| (the sign kept)."""
    shift = dset.shift(k, magnitude, n=n)
    return shift * (abs(magnitude) / shift.norm(dim=-1, keepdim=True).clamp_min(1e-12))


@torch.no_grad()
def image_change(
    generator: GeneratorAdapter,
    dset: DirectionSet,
    *,
    samples: int = 64,
    magnitude: float = 3.0,
    seed: int = 1234,
    render_batch: int | None = None,
) -> torch.Tensor:
    """``(K,)``: per direction, the mean |G(z + s_k(+-m)) - G(z)| over pixels, samples and both signs;
    rendered ``render_batch`` latents at a time (default all ``samples``)."""
    rng = torch.Generator(generator.device).manual_seed(seed)
    z = generator.sample_latents(samples, rng)  # (n, D)
    scores = torch.zeros(dset.num_directions)
    for (zp,) in pieces(render_batch, z):
        base = generator.render(zp).float()
        for k in range(dset.num_directions):
            for sign in (1.0, -1.0):
                moved = generator.render_shifted(zp, equal_distance_shift(dset, k, sign * magnitude, len(zp)))
                scores[k] += (moved.float() - base).abs().sum().item() / (
                    2 * base.numel() / len(zp) * samples
                )
    return scores


def ranking_record(scores: torch.Tensor, by: str, **details: Any) -> dict[str, Any]:
    """The ranking record stored in a direction file: indices by descending score."""
    order = torch.argsort(scores, descending=True, stable=True)
    return {"by": by, "order": order.tolist(), "scores": scores.tolist(), **details}


def ranking_samples(num_directions: int, renders: int = defaults.RANKING_RENDERS) -> int:
    """Latents :func:`rank_by_image_change` draws for a set of ``num_directions``: each costs 2K + 1
    renders, so 64 while that stays within ``renders`` (every set up to 32 directions), fewer for
    larger sets, at least 8. At 64 samples StyleGAN2's 128 SeFa directions would take 16,448 renders:
    hours on a CPU at 256 px, minutes on a GPU at 1024."""
    per_sample = 2 * num_directions + 1
    return max(defaults.RANKING_MIN_SAMPLES, min(defaults.RANKING_SAMPLES, renders // per_sample))


def rank_by_image_change(
    generator: GeneratorAdapter,
    dset: DirectionSet,
    *,
    samples: int | None = None,
    magnitude: float = 3.0,
    render_batch: int | None = None,
) -> dict[str, Any]:
    """:func:`ranking_record` by :func:`image_change` (rendered ``render_batch`` at a time) over
    ``samples`` latents (default: :func:`ranking_samples`)."""
    if samples is None:
        samples = ranking_samples(dset.num_directions)
    scores = image_change(generator, dset, samples=samples, magnitude=magnitude, render_batch=render_batch)
    return ranking_record(scores, "image_change", magnitude=magnitude, samples=samples)


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two ``(K,)`` score vectors (ties broken by position)."""
    ra = torch.argsort(torch.argsort(a.double())).double()
    rb = torch.argsort(torch.argsort(b.double())).double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp_min(1e-12))
