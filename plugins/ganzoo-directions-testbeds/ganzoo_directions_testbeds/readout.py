"""Factor readouts of the testbeds: a small classifier per renderer that reads every factor off an image.

``FactorClassifier`` has one softmax head per factor over that factor's grid values; trained on renders
of the grid with their labels (``scripts/train_testbed_readout.py``), shipped as fp16 safetensors in
``weights/readout-<renderer>.safetensors``. Images are resized to 32 x 32 (area averaging) first, so
it reads the 64 px renderer and the 32 px GANs alike. As a :class:`FactorReadout` it returns each
factor's expected grid position scaled to [0, 1] (smooth under small image changes, which the factor
score needs); ``classify`` gives the most likely grid index.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo_directions.errors import GanzooError
from ganzoo_directions.interfaces import FactorReadout

INPUT_SIZE = 32


def weights_file(renderer: str) -> str:
    return f"readout-{renderer}.safetensors"


class FactorClassifier(nn.Module):
    """(n, C, H, W) in [-1, 1] -> (n, sum(levels)) logits: conv stages down to 4 x 4, two linear layers."""

    def __init__(self, levels: tuple[int, ...], channels: int = 3, width: int = 32) -> None:
        super().__init__()
        self.levels = tuple(levels)
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(channels, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 16
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 4
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * w * 16, 256), nn.ReLU(), nn.Linear(256, sum(self.levels))
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != INPUT_SIZE:
            mode = "area" if images.shape[-1] > INPUT_SIZE else "bilinear"
            images = F.interpolate(images, size=INPUT_SIZE, mode=mode)
        return self.head(self.features(images))

    def split(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(n, sum(levels))`` -> one ``(n, levels[i])`` block of logits per factor."""
        return torch.split(logits, list(self.levels), dim=1)

    def loss(self, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over factors of ``(n, F)`` grid indices."""
        blocks = self.split(self(images))
        return sum(F.cross_entropy(b, indices[:, i]) for i, b in enumerate(blocks)) / len(blocks)

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """``(n, F)`` most likely grid index of each factor."""
        return torch.stack([b.argmax(1) for b in self.split(self(images))], dim=1)

    @torch.no_grad()
    def expected_units(self, images: torch.Tensor) -> torch.Tensor:
        """``(n, F)`` expected grid position of each factor, scaled to [0, 1]."""
        out = []
        for block, n in zip(self.split(self(images)), self.levels, strict=True):
            grid = torch.linspace(0, 1, n, device=block.device) if n > 1 else block.new_zeros(1)
            out.append(block.softmax(1) @ grid)
        return torch.stack(out, dim=1)


@cache
def shipped(renderer: str) -> FactorClassifier:
    """The shipped classifier of ``renderer`` (read once per process)."""
    from safetensors import safe_open

    path = files("ganzoo_directions_testbeds").joinpath("weights", weights_file(renderer))
    if not path.is_file():
        raise GanzooError(f"no factor readout shipped for {renderer!r} (scripts/train_testbed_readout.py)")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k).float() for k in f.keys()}  # noqa: SIM118
    model = FactorClassifier(tuple(json.loads(meta["levels"])), int(meta["channels"]))
    model.load_state_dict(state)
    return model.eval().requires_grad_(False)


def factor_readout(renderer: str, device: torch.device | str = "cpu", image_size: int = 64) -> FactorReadout:
    """The shipped classifier of ``renderer`` as a :class:`FactorReadout`. Its labelled real images are
    renders of the grid at ``image_size`` with their factor values, each on its grid (``levels``)."""
    from .dsprites import DSpritesGenerator
    from .shapes3d import Shapes3DGenerator

    renderer_cls = {"shapes3d": Shapes3DGenerator, "dsprites": DSpritesGenerator}[renderer]
    model = shipped(renderer).to(device)
    data = renderer_cls(image_size=image_size).to(device)

    @torch.no_grad()
    def predict(images: torch.Tensor) -> torch.Tensor:
        return model.expected_units(images.to(next(model.parameters()).device).float())

    @torch.no_grad()
    def labelled(n: int, rng: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        indices = data.sample_grid(n, rng)  # (n, F)
        return data.render_indices(indices), data.units_of(indices)

    return FactorReadout(data.factor_names, predict, labelled, levels=tuple(data.factors.values()))
