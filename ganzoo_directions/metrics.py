"""Metrics on direction sets. Pure functions of their inputs (and an explicit seed)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .interfaces import GeneratorAdapter

ShiftFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (k (B,), eps (B,)) -> (B, D)


@torch.no_grad()
def reconstructor_accuracy(
    generator: GeneratorAdapter,
    shift: ShiftFn,
    reconstructor: nn.Module,
    num_directions: int,
    *,
    pairs: int = 2000,
    batch_size: int = 64,
    eps_max: float = 6.0,
    eps_min: float = 0.5,
    seed: int = 1234,
) -> float:
    """RCA: how often R recovers k from fresh pairs (G(z), G(z + A(k, eps))).

    Pairs follow the training shift law (k uniform, eps ~ U[-eps_max, eps_max] with |eps| >= eps_min),
    drawn from a generator seeded with ``seed``, so two calls agree. R runs in eval mode. Chance level
    is ``1 / num_directions``.
    """
    from .training import sample_magnitudes

    device = generator.device
    rng = torch.Generator(device).manual_seed(seed)
    was_training = reconstructor.training
    reconstructor.eval()
    correct, seen = 0, 0
    while seen < pairs:
        b = min(batch_size, pairs - seen)
        z = generator.sample_latents(b, rng)  # (b, D)
        k = torch.randint(0, num_directions, (b,), generator=rng, device=device)
        eps = sample_magnitudes((b,), eps_max, eps_min, rng, device)
        logits, _ = reconstructor(generator.render(z), generator.render_shifted(z, shift(k, eps)))
        correct += int((logits.argmax(1) == k).sum())
        seen += b
    reconstructor.train(was_training)
    return correct / seen


def alignment_matrix(directions: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``(K, F)`` absolute cosines between ``(K, D)`` directions and ``(F, D)`` reference directions."""
    return (F.normalize(directions.float(), dim=1) @ F.normalize(reference.float(), dim=1).t()).abs()


def factor_alignment(directions: torch.Tensor, true_directions: torch.Tensor) -> dict[str, float]:
    """How well directions match known factor directions (sign ignored).

    ``factor_recall``: mean over true factors of the best |cos| any direction reaches (1 = every
    factor has a direction exactly along it). ``direction_precision``: mean over directions of their
    best |cos| with a factor (1 = every direction is a pure factor).
    """
    cos = alignment_matrix(directions, true_directions)  # (K, F)
    return {
        "factor_recall": cos.max(dim=0).values.mean().item(),
        "direction_precision": cos.max(dim=1).values.mean().item(),
    }


def random_directions(num: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``(num, dim)`` random orthonormal directions (for num <= dim), the control every method must beat."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, max(num, dim), generator=gen))
    return q.t()[:num] if num <= dim else F.normalize(torch.randn(num, dim, generator=gen), dim=1)
