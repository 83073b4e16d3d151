"""Deformators: the maps A(k, eps) from a direction index and a magnitude to a latent shift.

They are building blocks shared by methods and by the direction-file format (a saved direction set
names its deformator's kind and config, so it can be applied without the method's plugin):

``linear``  A(k, eps) = eps * a_k, a_k the columns of a free D x K matrix (Voynov & Babenko).
``unit``    the same with unit-norm columns.
``ortho``   the same with orthonormal columns: the first K columns of expm(S - S^T) (Voynov & Babenko's
            default); needs K <= D.
``mlp``     the paper's deformator: 3 fully connected layers (hidden width 1024) on the input
            e_k * eps, with A(0) = 0 enforced by subtracting the network's output at 0.

The linear kinds take ``init``: ``"identity"`` (the first K latent axes, or near them for ``ortho``)
or ``"random"`` (a random basis: Gaussian columns, or expm of a random skew matrix for ``ortho``);
:meth:`Deformator.start_from` sets them to given directions instead (a closed-form method's).
The MLP takes ``unit_shift``: when true the network chooses only the direction of a shift, and its
length is |eps| (``A(k, eps) = |eps| f(e_k eps) / |f(e_k eps)|``, f with f(0) subtracted).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from . import defaults
from .errors import GanzooError


class Deformator(nn.Module):
    """Base class: ``forward(k, eps)`` with ``k`` ``(B,)`` long and ``eps`` ``(B,)`` float -> ``(B, D)``."""

    kind: ClassVar[str]
    linear: ClassVar[bool] = True  # A(k, eps) = eps * a_k for a fixed vector a_k

    def __init__(self, num_directions: int, latent_dim: int) -> None:
        super().__init__()
        self.num_directions = num_directions
        self.latent_dim = latent_dim

    def config(self) -> dict[str, Any]:
        """Everything besides the weights that rebuilds this deformator."""
        return {"kind": self.kind, "num_directions": self.num_directions, "latent_dim": self.latent_dim}

    def direction_matrix(self) -> torch.Tensor:
        """``(D, K)`` matrix whose column k is a_k (linear kinds only)."""
        raise NotImplementedError

    @torch.no_grad()
    def start_from(self, directions: torch.Tensor) -> None:
        """Start training from ``(K, D)`` unit directions (e.g. a closed-form method's), linear kinds only."""
        raise GanzooError(f"the {self.kind!r} deformator cannot start from given directions")

    def forward(self, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        # k: (B,) long, eps: (B,) -> (B, D)
        return scaled_one_hot(k, eps, self.num_directions) @ self.direction_matrix().t()

    @torch.no_grad()
    def unit_directions(
        self, eps_max: float = defaults.EPS_MAX, eps_min: float = defaults.EPS_MIN
    ) -> torch.Tensor:
        """``(K, D)`` unit vectors: a_k / |a_k| for linear kinds, the sign-aligned centroid otherwise."""
        if self.linear:
            return F.normalize(self.direction_matrix().t(), dim=1)
        return direction_centroids(self, eps_max, eps_min)


INITS = ("identity", "random")


def _check_init(init: str) -> None:
    if init not in INITS:
        raise GanzooError(f"unknown deformator init {init!r}; valid: {', '.join(INITS)}")


class LinearDeformator(Deformator):
    """A free D x K matrix: the first K columns of the identity (``init="identity"``, Voynov &
    Babenko's) or unit Gaussian columns (``init="random"``)."""

    kind = "linear"

    def __init__(self, num_directions: int, latent_dim: int, init: str = "identity") -> None:
        super().__init__(num_directions, latent_dim)
        _check_init(init)
        self.init = init
        if init == "identity":
            weight = torch.eye(latent_dim, num_directions)
        else:
            weight = F.normalize(torch.randn(latent_dim, num_directions), dim=0)
        self.weight = nn.Parameter(weight)  # (D, K)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "init": self.init}

    def direction_matrix(self) -> torch.Tensor:
        return self.weight

    @torch.no_grad()
    def start_from(self, directions: torch.Tensor) -> None:
        self.weight.copy_(F.normalize(directions.to(self.weight), dim=1).t())


class UnitDeformator(LinearDeformator):
    """Columns normalised to unit length at every use, so only their direction is learned."""

    kind = "unit"

    def direction_matrix(self) -> torch.Tensor:
        return F.normalize(self.weight, dim=0)


class OrthoDeformator(Deformator):
    """Orthonormal columns: the first K columns of expm(S - S^T), S a free D x D matrix."""

    kind = "ortho"

    def __init__(self, num_directions: int, latent_dim: int, init: str = "identity") -> None:
        if num_directions > latent_dim:
            raise GanzooError(f"the 'ortho' deformator needs K <= D, got K={num_directions} > D={latent_dim}")
        super().__init__(num_directions, latent_dim)
        _check_init(init)
        self.init = init
        # identity: near zero, so it starts near the latent axes (Voynov & Babenko's scale 1e-3);
        # random: scale 1, a random rotation (their random_init)
        scale = 1e-3 if init == "identity" else 1.0
        self.log_mat_half = nn.Parameter(scale * torch.randn(latent_dim, latent_dim))
        # a fixed rotation the learned one is applied to (identity unless started from given directions)
        self.register_buffer("base", torch.eye(latent_dim))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "init": self.init}

    def direction_matrix(self) -> torch.Tensor:
        skew = self.log_mat_half - self.log_mat_half.t()
        return (self.base @ torch.linalg.matrix_exp(skew))[:, : self.num_directions]  # (D, K)

    @torch.no_grad()
    def start_from(self, directions: torch.Tensor) -> None:
        """base = the given K directions completed to an orthonormal basis; the learned rotation restarts
        near the identity (1e-3), so training starts at the given directions."""
        given = directions.to(self.base).t()  # (D, K)
        q, r = torch.linalg.qr(torch.cat([given, torch.eye(self.latent_dim).to(given)], dim=1))
        q = q[:, : self.latent_dim] * torch.sign(
            torch.diagonal(r)[: self.latent_dim]
        )  # first K columns = given
        self.base.copy_(q)
        self.log_mat_half.copy_(1e-3 * torch.randn_like(self.log_mat_half))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        state_dict.setdefault(prefix + "base", torch.eye(self.latent_dim))  # files written before `base`
        super()._load_from_state_dict(state_dict, prefix, *args)


class SpanDeformator(OrthoDeformator):
    """Orthonormal columns confined to a K-dimensional subspace: the first K columns of ``base``
    rotated among themselves, ``base[:, :K] @ expm(S - S^T)`` with S a free K x K matrix.

    Started from given directions (``-p init=sefa``), it can only turn them within their span; at
    ``init="identity"`` it turns the first K latent axes among themselves. A closed form that finds
    the right subspace but not the right axes in it is refined this way without leaving it (nor
    escaping to directions the generator ignores)."""

    kind = "span"

    def __init__(self, num_directions: int, latent_dim: int, init: str = "identity") -> None:
        # the parent's D x D draw is kept (and replaced): the measured runs' random streams follow it
        super().__init__(num_directions, latent_dim, init)
        scale = 1e-3 if init == "identity" else 1.0
        self.log_mat_half = nn.Parameter(scale * torch.randn(num_directions, num_directions))

    def direction_matrix(self) -> torch.Tensor:
        skew = self.log_mat_half - self.log_mat_half.t()  # (K, K)
        return self.base[:, : self.num_directions] @ torch.linalg.matrix_exp(skew)  # (D, K)


class MLPDeformator(Deformator):
    """The paper's A: Linear(K, H) - ELU - Linear(H, H) - ELU - Linear(H, D) on e_k * eps.

    The network's output at 0 is subtracted so that a zero magnitude is no shift: A(k, 0) = 0. With
    ``unit_shift`` the output is rescaled to length |eps|: the network bends the path, eps sets how far.
    """

    kind = "mlp"
    linear = False

    def __init__(
        self, num_directions: int, latent_dim: int, hidden: int = 1024, unit_shift: bool = False
    ) -> None:
        super().__init__(num_directions, latent_dim)
        self.hidden = hidden
        self.unit_shift = unit_shift
        self.fc1 = nn.Linear(num_directions, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, latent_dim)
        self.act = nn.ELU()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "hidden": self.hidden, "unit_shift": self.unit_shift}

    def _trunk(self, h1: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act(self.fc2(self.act(h1))))

    def forward(self, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        x = scaled_one_hot(k, eps, self.num_directions)  # (B, K)
        both = self._trunk(self.fc1(torch.cat([x, torch.zeros_like(x[:1])])))  # (B + 1, D)
        shift = both[:-1] - both[-1:]  # (B, D)
        if self.unit_shift:
            shift = F.normalize(shift, dim=1) * eps.abs()[:, None]
        return shift


def scaled_one_hot(k: torch.Tensor, eps: torch.Tensor, num_directions: int) -> torch.Tensor:
    """The deformator input e_k * eps: ``(B, K)``.

    A matrix product with it is deterministic on multi-threaded CPUs, unlike the backward of row
    indexing (an accumulating scatter whose float additions run in a thread-dependent order).
    """
    return F.one_hot(k, num_directions).to(eps.dtype) * eps[:, None]


DEFORMATORS: dict[str, type[Deformator]] = {
    cls.kind: cls
    for cls in (LinearDeformator, UnitDeformator, OrthoDeformator, SpanDeformator, MLPDeformator)
}


def build_deformator(kind: str, num_directions: int, latent_dim: int, **config: Any) -> Deformator:
    """Build a deformator of ``kind`` (one of :data:`DEFORMATORS`)."""
    if kind not in DEFORMATORS:
        raise GanzooError(f"unknown deformator {kind!r}; valid: {', '.join(DEFORMATORS)}")
    return DEFORMATORS[kind](num_directions, latent_dim, **config)


def magnitude_grid(eps_max: float, eps_min: float, n: int = 8) -> torch.Tensor:
    """``(2n,)`` magnitudes spread over the training range, both signs."""
    half = torch.linspace(eps_min, eps_max, n)
    return torch.cat([-half.flip(0), half])


@torch.no_grad()
def direction_centroids(deformator: Deformator, eps_max: float, eps_min: float) -> torch.Tensor:
    """``(K, D)``: for each k, the normalised mean of the unit, sign-aligned codes sign(eps) A(k, eps)
    over a grid of magnitudes in the training range."""
    device = next(deformator.parameters()).device
    grid = magnitude_grid(eps_max, eps_min).to(device)  # (M,)
    K, M = deformator.num_directions, grid.numel()
    k = torch.arange(K, device=device).repeat_interleave(M)  # (K*M,)
    eps = grid.repeat(K)  # (K*M,)
    codes = F.normalize(deformator(k, eps), dim=1) * eps.sign()[:, None]  # (K*M, D)
    return F.normalize(codes.view(K, M, -1).mean(1), dim=1)


def sample_magnitudes(
    shape: tuple[int, ...],
    eps_max: float,
    eps_min: float,
    generator: torch.Generator | None,
    device: torch.device,
) -> torch.Tensor:
    """eps ~ U[-eps_max, eps_max], then pushed out to |eps| >= eps_min (Voynov & Babenko's law)."""
    eps = (2 * torch.rand(shape, generator=generator, device=device) - 1) * eps_max
    return torch.where(eps.abs() < eps_min, eps_min * torch.where(eps < 0, -1.0, 1.0), eps)
