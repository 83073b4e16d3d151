"""``dsprites``: one white shape on black, on the factor grid of dSprites (Matthey et al. 2017).

Factors, in the data set's order (its constant ``color`` factor left out), with its number of values:

    shape 3          square, ellipse, heart
    scale 6          0.5 .. 1
    orientation 40   0 .. 2 pi (as in dSprites, both ends included)
    x 32, y 32       0 .. 1: the shape's centre moves over the middle 70% of the image

One channel, 64 px. Outlines are signed distance functions (the heart is Inigo Quilez's exact heart
distance), so edges are anti-aliased and a fractional shape value blends two outlines.
"""

from __future__ import annotations

import math

import torch

from .grid import GridRenderer, category_weights, soft_mask

SHAPES = ("square", "ellipse", "heart")


def _square(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Unit-size square (half side 1), exact distance."""
    qx, qy = px.abs() - 1, py.abs() - 1
    outside = torch.sqrt(qx.clamp_min(0) ** 2 + qy.clamp_min(0) ** 2)
    return outside + torch.maximum(qx, qy).clamp_max(0)


def _ellipse(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Ellipse with half axes 1.4 and 0.7 (dSprites' ellipse is elongated), first-order distance."""
    a, b = 1.4, 0.7
    k = torch.sqrt((px / a) ** 2 + (py / b) ** 2)
    # |grad k| = |(x / a^2, y / b^2)| / k lies between 1/a and 1/b; clamped, it is safe at the centre
    grad = (torch.sqrt((px / a**2) ** 2 + (py / b**2) ** 2) / k.clamp_min(1e-6)).clamp(1 / a, 1 / b)
    return (k - 1) / grad


def _heart(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Heart about 2 wide and 2 tall, point down, centred (Quilez's exact heart distance)."""
    x = px.abs() / 1.6
    y = (0.55 - py) / 1.6 + 0.1  # image y grows downward; the heart's tip at the bottom
    upper = torch.sqrt((x - 0.25) ** 2 + (y - 0.75) ** 2) - math.sqrt(2) / 4
    t = 0.5 * (x + y).clamp_min(0)
    lower = torch.sqrt(torch.minimum(x**2 + (y - 1) ** 2, (x - t) ** 2 + (y - t) ** 2)) * torch.sign(x - y)
    return torch.where(x + y > 1, upper, lower) * 1.6


class DSpritesGenerator(GridRenderer):
    """Procedural dSprites (see module docstring); the ground truth of the dSprites grid."""

    name = "dsprites"
    summary = "procedural dSprites grid (shape, scale, orientation, x, y), 64 px, one channel, no weights"
    factors = {"shape": 3, "scale": 6, "orientation": 40, "x": 32, "y": 32}
    image_channels = 1

    def render_units(self, units: torch.Tensor) -> torch.Tensor:
        B, size = units.shape[0], self.image_size
        shape, scale, orientation, x, y = units.unbind(1)  # (B,) each
        radius = (0.5 + 0.5 * scale)[:, None] * 0.12  # (B, 1): half side of the square at scale 1
        angle = (orientation * 2 * math.pi)[:, None]
        cx, cy = (0.15 + 0.7 * x)[:, None], (0.15 + 0.7 * y)[:, None]
        rx, ry = self.xx - cx, self.yy - cy  # (B, P)
        cos, sin = torch.cos(angle), torch.sin(angle)
        px = (cos * rx + sin * ry) / radius  # the shape's frame, in units of its size
        py = (-sin * rx + cos * ry) / radius
        masks = [soft_mask(sdf(px, py) * radius, size) for sdf in (_square, _ellipse, _heart)]
        weights = category_weights(shape, len(SHAPES))  # (B, 3)
        mask = sum(w[:, None] * m for w, m in zip(weights.unbind(1), masks, strict=True))  # (B, P)
        return (mask * 2 - 1).reshape(B, 1, size, size)
