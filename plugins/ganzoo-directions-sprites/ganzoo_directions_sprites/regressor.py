"""The factor regressor: reads the eight sprite factors off an image (for evaluation only).

A small CNN trained on renders of `sprites` with their labels (``scripts/train_factor_regressor.py``);
its weights ship with this plugin (``weights/factor-regressor.safetensors``). Images of any size are
resized to 32 x 32 (area averaging) first. Outputs are each factor scaled to [0, 1] over its range.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo_directions.interfaces import FactorReadout

from .sprites import FACTORS, SpritesGenerator

WEIGHTS = "factor-regressor.safetensors"
INPUT_SIZE = 32


class FactorRegressor(nn.Module):
    """(n, 3, H, W) in [-1, 1] -> (n, 8) in [0, 1]: three conv stages to 4 x 4, then two linear layers."""

    def __init__(self, width: int = 32, factors: int = len(FACTORS)) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * w * 16, 64), nn.ReLU(), nn.Linear(64, factors))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != INPUT_SIZE:
            images = F.interpolate(images, size=INPUT_SIZE, mode="area")
        return torch.sigmoid(self.head(self.features(images)))


@cache
def _shipped() -> FactorRegressor:
    from safetensors.torch import load

    data = files("ganzoo_directions_sprites").joinpath("weights", WEIGHTS).read_bytes()
    model = FactorRegressor()
    model.load_state_dict({k: v.float() for k, v in load(data).items()})
    return model.eval().requires_grad_(False)


def factor_readout(device: torch.device | str = "cpu", image_size: int = 64) -> FactorReadout:
    """The shipped regressor as a :class:`FactorReadout`; its labelled real images are renderer images
    at ``image_size`` with their true factors."""
    model = _shipped().to(device)
    renderer = SpritesGenerator(latent_dim=len(FACTORS), image_size=image_size).to(device)

    @torch.no_grad()
    def predict(images: torch.Tensor) -> torch.Tensor:
        return model(images.to(next(model.parameters()).device).float())

    @torch.no_grad()
    def labelled(n: int, rng: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        z = renderer.sample_latents(n, rng)  # (n, 8)
        return renderer.render(z), renderer.unit_factors(z)

    return FactorReadout(FACTORS, predict, labelled)
