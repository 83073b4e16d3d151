"""The built-in procedural generator: known factors, deterministic, differentiable."""

from __future__ import annotations

import torch
from ganzoo_directions_sprites import FACTORS


def test_render_shapes_range_and_determinism(sprites):
    z = sprites.sample_latents(16, torch.Generator().manual_seed(0))
    assert z.shape == (16, sprites.latent_dim)
    x = sprites.render(z)
    assert x.shape == (16, 3, 64, 64)
    assert x.min() >= -1 and x.max() <= 1 and torch.isfinite(x).all()
    assert torch.equal(x, sprites.render(z.clone()))
    assert not torch.equal(x[0], x[1])


def test_factor_directions_are_orthonormal_and_not_axes(sprites):
    factors = sprites.known_factors()
    assert factors.names == FACTORS and len(FACTORS) >= 6
    m = factors.directions
    assert torch.allclose(m @ m.t(), torch.eye(len(FACTORS)), atol=1e-5)
    assert m.abs().max() < 0.99  # no latent axis is a factor


def test_shift_along_a_factor_changes_that_factor_only(sprites):
    z = sprites.sample_latents(32, torch.Generator().manual_seed(1))
    m = sprites.known_factors().directions
    base = sprites.factor_values(z)
    for i in range(len(FACTORS)):
        change = (sprites.factor_values(z + 1.5 * m[i]) - base).abs().mean(0)
        assert change[i] > 0.01
        others = torch.cat([change[:i], change[i + 1 :]])
        assert others.max() < 1e-5


def test_render_is_differentiable_in_the_latent(sprites):
    z = sprites.sample_latents(4, torch.Generator().manual_seed(2)).requires_grad_(True)
    sprites.render(z).square().mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_mixing_seed_changes_the_fingerprint(registry):
    cls = registry.generator("sprites").cls
    assert cls().fingerprint == cls().fingerprint
    assert cls().fingerprint != cls(mixing_seed=1).fingerprint
