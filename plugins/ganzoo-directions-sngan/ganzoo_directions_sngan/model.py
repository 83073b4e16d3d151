"""The SNGAN ResNet generator (Miyato et al. 2018) as trained by Voynov & Babenko for SN-Anime/SN-MNIST.

Module and parameter names reproduce their checkpoint layout (a wrapper whose ``model`` is one
``nn.Sequential``), so their ``generator.pt`` loads strictly:

    model.0                 Linear(z_dim, 4 * 4 * c0)
    model.1                 reshape to (c0, 4, 4)
    model.2 .. model.{n+1}  residual up-blocks c_i -> c_{i+1} (each doubles the resolution)
    model.{n+2}             BatchNorm2d(c_n), then ReLU
    model.{n+4}             Conv2d(c_n, image_channels, 3), then tanh

A block is BN - ReLU - upsample x2 (nearest) - conv3x3 - BN - ReLU - conv3x3, plus a bypass: upsample
(and a conv3x3 when the width changes). Its convs are registered twice (``conv1`` and ``model.3``),
as in the original, so a state dict has both names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ResNetGeneratorConfig:
    """Widths of the generator: ``channels[0]`` at 4 x 4, then one up-block per following width."""

    channels: tuple[int, ...]
    latent_dim: int = 128
    image_channels: int = 3
    seed_size: int = 4

    @property
    def image_size(self) -> int:
        return self.seed_size * 2 ** (len(self.channels) - 1)


ARCHITECTURES: dict[str, tuple[int, ...]] = {
    "sn_resnet64": (1024, 512, 256, 128, 64),  # SN-Anime 64 x 64
    "sn_resnet32": (256, 256, 256, 256),  # SN-MNIST 32 x 32
}


class ResBlockGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1)
        nn.init.xavier_uniform_(self.conv1.weight, 2**0.5)
        nn.init.xavier_uniform_(self.conv2.weight, 2**0.5)
        self.model = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            self.conv1,
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            self.conv2,
        )
        if in_channels == out_channels:
            self.bypass: nn.Module = nn.Upsample(scale_factor=2)
        else:
            self.bypass = nn.Sequential(
                nn.Upsample(scale_factor=2), nn.Conv2d(in_channels, out_channels, 3, 1, 1)
            )
            nn.init.xavier_uniform_(self.bypass[1].weight, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.bypass(x)


class Reshape(nn.Module):
    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], *self.shape)


class ResNetGenerator(nn.Module):
    """z ``(B, z_dim)`` -> image ``(B, image_channels, S, S)`` in [-1, 1]."""

    def __init__(self, config: ResNetGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        c, s = config.channels, config.seed_size
        dense = nn.Linear(config.latent_dim, s * s * c[0])
        nn.init.xavier_uniform_(dense.weight, 1.0)
        final = nn.Conv2d(c[-1], config.image_channels, 3, 1, padding=1)
        nn.init.xavier_uniform_(final.weight, 1.0)
        blocks = [ResBlockGenerator(c[i], c[i + 1]) for i in range(len(c) - 1)]
        self.model = nn.Sequential(
            dense, Reshape(c[0], s, s), *blocks, nn.BatchNorm2d(c[-1]), nn.ReLU(), final, nn.Tanh()
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)

    def block_aliases(self) -> dict[str, str]:
        """``{conv1 name: model.3 name}`` for every block: the same tensor under its two names."""
        aliases = {}
        for i in range(2, 2 + len(self.config.channels) - 1):
            for conv, index in (("conv1", 3), ("conv2", 6)):
                for p in ("weight", "bias"):
                    aliases[f"model.{i}.{conv}.{p}"] = f"model.{i}.model.{index}.{p}"
        return aliases
