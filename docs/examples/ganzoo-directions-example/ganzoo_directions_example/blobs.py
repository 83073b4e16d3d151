"""``blobs``: a tiny procedural generator, to show what a GeneratorAdapter needs."""

from __future__ import annotations

import torch

from ganzoo_directions.interfaces import GeneratorAdapter, Option


class BlobsGenerator(GeneratorAdapter):
    """One soft blob; position, radius and colour are sigmoids of a random linear map of z ~ N(0, I)."""

    name = "blobs"
    summary = "example plugin: one soft coloured blob, 32 px, 6-d latent"
    options = {"seed": Option(0, "seed of the random mixing matrix")}
    recommended_steps = 300

    def __init__(self, weights: str | None = None, **options) -> None:
        super().__init__(weights, **options)
        gen = torch.Generator().manual_seed(self.config["seed"])
        self.register_buffer("mixing", torch.randn(6, 6, generator=gen) / 6**0.5)  # (params, D)
        coords = (torch.arange(32, dtype=torch.float32) + 0.5) / 32
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        self.register_buffer("grid", torch.stack([xx, yy])[None])  # (1, 2, 32, 32)

    latent_dim = 6
    image_size = 32

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, 6, generator=generator, device=self.mixing.device)

    def render(self, latents: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(latents @ self.mixing.t())  # (B, 6) in (0, 1)
        centre = 0.2 + 0.6 * p[:, :2, None, None]  # (B, 2, 1, 1)
        radius = 0.08 + 0.15 * p[:, 2, None, None]  # (B, 1, 1)
        dist2 = ((self.grid - centre) ** 2).sum(1)  # (B, 32, 32)
        mask = torch.exp(-dist2 / (2 * radius**2))[:, None]  # (B, 1, 32, 32)
        colour = p[:, 3:6, None, None]  # (B, 3, 1, 1)
        return (mask * colour) * 2 - 1  # (B, 3, 32, 32) in [-1, 1]
