"""What the testbed renderers share: a discrete factor grid, rendered continuously.

The field's ground-truth data sets (3D Shapes, dSprites) are the full product of a few factors, each
with a fixed number of values. A renderer here draws any point of the *continuous* box spanned by
the grid (``render_units``: every factor in [0, 1], 0 its first value and 1 its last; a categorical
factor such as shape blends its neighbours' outlines), so it can be

- a data set: ``sample_grid`` draws factor indices uniformly from the grid, as the real data sets
  hold them (``render_indices``), which is what the project's GANs are trained on;
- a generator: like ``sprites``, z ~ N(0, I_D) drives the factors through a fixed random orthonormal
  mixing, ``unit_i = sigmoid(1.6 * (M z)_i)`` (``sigmoid(1.6 u)`` ~ the normal CDF, so each factor is
  about uniform over its range), so the rows of M are the true factor directions (``known_factors``).
"""

from __future__ import annotations

import torch

from ganzoo_directions import defaults
from ganzoo_directions.interfaces import FactorReadout, GeneratorAdapter, KnownFactors, Option


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor | float, v: torch.Tensor) -> torch.Tensor:
    """Hue, saturation, value of the same shape ``(...)`` -> RGB ``(..., 3)`` in [0, 1], differentiable."""
    n = torch.tensor([5.0, 3.0, 1.0], device=h.device)
    k = torch.remainder(n + 6.0 * h[..., None], 6.0)  # (..., 3)
    ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    s = torch.as_tensor(s, device=h.device)
    s = s[..., None] if s.dim() else s
    return v[..., None] * (1.0 - s * ramp)


def soft_mask(sdf: torch.Tensor, size: int) -> torch.Tensor:
    """A signed distance (image units, negative inside) -> coverage in [0, 1] with a ~1 px soft edge."""
    return torch.sigmoid(-sdf * size / 0.7)


def category_weights(unit: torch.Tensor, count: int) -> torch.Tensor:
    """``(B,)`` unit values of a categorical factor -> ``(B, count)`` blend weights (hat functions):
    exactly one-hot on the grid's values, a linear blend of the two neighbours between them."""
    pos = unit.clamp(0, 1) * (count - 1)  # (B,)
    return torch.relu(1 - (pos[:, None] - torch.arange(count, device=unit.device)).abs())


class GridRenderer(GeneratorAdapter):
    """Base of the testbed renderers. Subclasses set ``name``, ``summary``, ``factors`` (name -> number
    of values), ``image_channels`` and implement :meth:`render_units`."""

    factors: dict[str, int] = {}
    default_size = 64
    recommended_steps = 2000

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        f = len(cls.factors)
        cls.options = {
            "latent_dim": Option(
                f,
                f"latent dimension D (>= {f}; dimensions beyond {f} change nothing)",
                minimum=f,
                maximum=defaults.MAX_LATENT_DIM,
            ),
            "mixing_seed": Option(0, "seed of the random orthonormal mixing of factors into z"),
            "image_size": Option(
                cls.default_size, "image height and width in pixels", minimum=16, maximum=512
            ),
        }

    def __init__(self, weights: str | None = None, **options) -> None:
        super().__init__(weights, **options)  # takes no weights: the base refuses --weights
        dim, size = self.config["latent_dim"], self.config["image_size"]
        gen = torch.Generator().manual_seed(self.config["mixing_seed"])
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen))
        self.register_buffer("mixing", q[: len(self.factors)].contiguous())  # (F, D), orthonormal rows
        self.register_buffer("levels", torch.tensor(list(self.factors.values())))  # (F,)
        coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        self.register_buffer("xx", xx.reshape(1, size * size))  # (1, P), 0 left .. 1 right
        self.register_buffer("yy", yy.reshape(1, size * size))  # (1, P), 0 top .. 1 bottom

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(self.factors)

    @property
    def latent_dim(self) -> int:
        return self.config["latent_dim"]

    @property
    def image_size(self) -> int:
        return self.config["image_size"]

    # -- the data set ------------------------------------------------------------------------------
    def sample_grid(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, F)`` factor indices drawn uniformly from the grid (on ``self.device``)."""
        u = torch.rand(n, len(self.factors), generator=generator, device=self.mixing.device)
        return (u * self.levels).long().clamp_max(self.levels - 1)

    def units_of(self, indices: torch.Tensor) -> torch.Tensor:
        """``(n, F)`` grid indices -> ``(n, F)`` unit values (index / (levels - 1))."""
        return indices.float() / (self.levels - 1).clamp_min(1)

    def render_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """``(n, F)`` grid indices -> ``(n, C, S, S)`` images of the data set, in [-1, 1]."""
        return self.render_units(self.units_of(indices))

    def render_units(self, units: torch.Tensor) -> torch.Tensor:
        """``(n, F)`` factor values in [0, 1] -> ``(n, C, S, S)`` images in [-1, 1] (differentiable)."""
        raise NotImplementedError

    # -- the generator -----------------------------------------------------------------------------
    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.mixing.device)

    def projection_start(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sample_latents(n, generator)

    def unit_factors(self, latents: torch.Tensor) -> torch.Tensor:
        """``(n, D)`` latents -> ``(n, F)`` factor values in [0, 1]."""
        return torch.sigmoid(1.6 * latents @ self.mixing.t())

    def render(self, latents: torch.Tensor) -> torch.Tensor:
        return self.render_units(self.unit_factors(latents))

    def latent_weights(self) -> torch.Tensor:
        return self.mixing  # (F, D): u = M z is the only use of the latent

    def known_factors(self) -> KnownFactors:
        return KnownFactors(self.factor_names, self.mixing.clone())

    def factor_readout(self) -> FactorReadout | None:
        from .readout import factor_readout  # the shipped classifier, where trained

        return factor_readout(self.name, self.device, self.image_size)
