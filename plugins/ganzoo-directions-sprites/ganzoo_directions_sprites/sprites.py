"""``sprites``: a differentiable procedural generator with known factors of variation.

One isosceles triangle on a grey background. Eight factors (position x and y, scale, rotation,
aspect, hue, lightness of the shape, background brightness) are smooth monotone functions of eight
projections of the latent z ~ N(0, I_D):

    u = M z                      M: (F, D) with orthonormal rows, drawn once from ``mixing_seed``
    factor_i = lo_i + (hi_i - lo_i) * sigmoid(1.6 * u_i)     (sigmoid(1.6 u) ~ the normal CDF)

so no latent axis is a factor, but the rows of M are exactly the factor directions: the ground truth a
discovery method should find. Latent dimensions beyond F (``latent_dim > 8``) change nothing.
"""

from __future__ import annotations

import math

import torch

from ganzoo_directions import defaults
from ganzoo_directions.interfaces import FactorReadout, GeneratorAdapter, KnownFactors, Option

#: factor name -> (low, high) in the renderer's units (image fractions, radians, HSV values)
FACTOR_RANGES: dict[str, tuple[float, float]] = {
    "x": (0.3, 0.7),
    "y": (0.3, 0.7),
    "scale": (0.22, 0.42),
    "rotation": (-math.pi / 2, math.pi / 2),
    "aspect": (0.5, 1.1),
    "hue": (0.0, 0.75),
    "lightness": (0.55, 1.0),
    "background": (0.0, 0.4),
}
FACTORS: tuple[str, ...] = tuple(FACTOR_RANGES)
_SATURATION = 0.85


def _hsv_to_rgb(h: torch.Tensor, s: float, v: torch.Tensor) -> torch.Tensor:
    """(B,) hue in [0, 1), saturation, (B,) value -> (B, 3) RGB, differentiable."""
    n = torch.tensor([5.0, 3.0, 1.0], device=h.device)
    k = torch.remainder(n[None] + 6.0 * h[:, None], 6.0)  # (B, 3)
    ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    return v[:, None] * (1.0 - s * ramp)


class SpritesGenerator(GeneratorAdapter):
    """Procedural sprites: the built-in generator that needs no download (see module docstring)."""

    name = "sprites"
    summary = "procedural triangle sprites, 64 px, 8 known factors mixed into z (no weights)"
    options = {
        "latent_dim": Option(
            8,
            "latent dimension D (>= 8; dimensions beyond 8 change nothing)",
            minimum=8,
            maximum=defaults.MAX_LATENT_DIM,
        ),
        "mixing_seed": Option(0, "seed of the random orthonormal mixing of factors into z"),
        "image_size": Option(64, "image height and width in pixels", minimum=8, maximum=1024),
    }
    recommended_steps = 2000

    def __init__(self, weights: str | None = None, **options) -> None:
        super().__init__(weights, **options)  # takes no weights: the base refuses --weights
        dim, size = self.config["latent_dim"], self.config["image_size"]
        gen = torch.Generator().manual_seed(self.config["mixing_seed"])
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen))
        self.register_buffer("mixing", q[: len(FACTORS)].contiguous())  # (F, D), orthonormal rows
        lo, hi = zip(*FACTOR_RANGES.values(), strict=True)
        self.register_buffer("low", torch.tensor(lo))  # (F,)
        self.register_buffer("high", torch.tensor(hi))  # (F,)
        coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        self.register_buffer("grid", torch.stack([xx, yy], dim=-1).view(1, size * size, 2))

    @property
    def latent_dim(self) -> int:
        return self.config["latent_dim"]

    @property
    def image_size(self) -> int:
        return self.config["image_size"]

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.mixing.device)

    def projection_start(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sample_latents(n, generator)  # draws of the prior; the projector keeps the best

    def latent_weights(self) -> torch.Tensor:
        return self.mixing  # (F, D): u = M z is the only use of the latent

    def factor_readout(self) -> FactorReadout:
        from .regressor import factor_readout  # the shipped regressor: reads factors off images

        return factor_readout(self.device, self.image_size)

    def known_factors(self) -> KnownFactors:
        return KnownFactors(FACTORS, self.mixing.clone())

    def factor_values(self, latents: torch.Tensor) -> torch.Tensor:
        """``(n, D)`` latents -> ``(n, F)`` factor values in the renderer's units."""
        u = latents @ self.mixing.t()  # (n, F)
        return self.low + (self.high - self.low) * torch.sigmoid(1.6 * u)

    def unit_factors(self, latents: torch.Tensor) -> torch.Tensor:
        """``(n, D)`` latents -> ``(n, F)`` factor values scaled to [0, 1] over their ranges."""
        return torch.sigmoid(1.6 * latents @ self.mixing.t())

    def render(self, latents: torch.Tensor) -> torch.Tensor:
        B, size = latents.shape[0], self.image_size
        x, y, scale, rot, aspect, hue, light, bg = self.factor_values(latents).unbind(1)  # (B,) each
        # pixel positions in the shape's frame: rotate by -rot around the centre, divide by scale
        rel = self.grid - torch.stack([x, y], dim=1)[:, None, :]  # (B, P, 2)
        cos, sin = torch.cos(rot)[:, None], torch.sin(rot)[:, None]
        qx = (cos * rel[..., 0] + sin * rel[..., 1]) / scale[:, None]  # (B, P)
        qy = (-sin * rel[..., 0] + cos * rel[..., 1]) / scale[:, None]
        # triangle: apex (0, -0.6), base corners (+-aspect/2, 0.4); signed distance to each edge
        half = aspect[:, None] / 2
        norm = torch.sqrt(1.0 + half**2)
        d_base = qy - 0.4
        d_right = (qx - half * qy - 0.6 * half) / norm
        d_left = (-qx - half * qy - 0.6 * half) / norm
        dist = torch.maximum(d_base, torch.maximum(d_right, d_left)) * scale[:, None]  # image units
        mask = torch.sigmoid(-dist * size / 0.7)  # (B, P), ~1 px soft edge
        fg = _hsv_to_rgb(hue, _SATURATION, light)  # (B, 3)
        img = bg[:, None, None] * (1 - mask[..., None]) + fg[:, None, :] * mask[..., None]  # (B, P, 3)
        return (img * 2 - 1).permute(0, 2, 1).reshape(B, 3, size, size)
