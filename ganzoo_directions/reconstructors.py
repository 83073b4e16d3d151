"""Reconstructors R: from an image pair, predict the direction index (logits over K) and the magnitude.

Both see the two images concatenated along channels (6 input channels for RGB), as in Voynov &
Babenko and the paper: a LeNet-style network for images up to 64 px, a ResNet-18 (torchvision, not
pretrained) for larger ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import defaults
from .errors import DirectionFileError, GanzooError
from .files import atomic_write_bytes

RECONSTRUCTORS = defaults.RECONSTRUCTORS


def input_size(requested: int, image_size: int) -> int | None:
    """The side R's inputs are resized to, or ``None`` (R sees the images as they are): ``requested``
    pixels (0: :data:`defaults.RECONSTRUCTOR_SIZE`) when the images are larger."""
    size = requested or defaults.RECONSTRUCTOR_SIZE
    return size if image_size > size else None


def fit(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """``(B, C, H, W)`` resized (anti-aliased bilinear) to ``size`` when they are larger."""
    if size is None or images.shape[-1] <= size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)


class LeNetReconstructor(nn.Module):
    """Three 5x5 conv layers with batch norm and max pooling, global average, two heads.

    Needs at least 32 px; smaller images are upsampled (bilinear) to 32 px first. ``norm="group"``
    (kind ``lenet-gn``) replaces batch norm by group / layer norm, so that no output depends on the
    rest of the batch: data-parallel runs then equal single-process runs exactly.
    """

    min_size = 32

    def __init__(self, num_directions: int, channels: int = 3, width: int = 2, norm: str = "batch") -> None:
        super().__init__()
        self.kind = "lenet" if norm == "batch" else "lenet-gn"
        c1, c2, c3, hidden = 3 * width, 8 * width, 60 * width, 42 * width

        def norm2d(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if norm == "batch" else nn.GroupNorm(1, c)

        def norm1d(c: int) -> nn.Module:
            return nn.BatchNorm1d(c) if norm == "batch" else nn.LayerNorm(c)

        self.features = nn.Sequential(
            nn.Conv2d(2 * channels, c1, 5), norm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), norm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 5), norm2d(c3), nn.ReLU(),
        )  # fmt: skip
        self.direction_head = nn.Sequential(
            nn.Linear(c3, hidden), norm1d(hidden), nn.ReLU(), nn.Linear(hidden, num_directions)
        )
        self.magnitude_head = nn.Sequential(
            nn.Linear(c3, hidden), norm1d(hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    input_size: int | None = None  # larger inputs are resized to it (build_reconstructor)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x0, x1: (B, C, H, W) -> logits (B, K), eps_hat (B,)
        pair = fit(torch.cat([x0, x1], dim=1), self.input_size)  # (B, 2C, H', W')
        if min(pair.shape[-2:]) < self.min_size:
            pair = F.interpolate(pair, size=self.min_size, mode="bilinear", align_corners=False)
        features = self.features(pair).mean(dim=(2, 3))  # (B, c3)
        return self.direction_head(features), self.magnitude_head(features).squeeze(1)


class ResNetReconstructor(nn.Module):
    """torchvision's ResNet-18 (random init) with a 6-channel stem and two linear heads."""

    kind = "resnet18"

    def __init__(self, num_directions: int, channels: int = 3) -> None:
        super().__init__()
        from torchvision.models import resnet18

        backbone = resnet18(weights=None)
        backbone.conv1 = nn.Conv2d(2 * channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(backbone.conv1.weight, mode="fan_out", nonlinearity="relu")
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.direction_head = nn.Linear(512, num_directions)
        self.magnitude_head = nn.Linear(512, 1)

    input_size: int | None = None  # larger inputs are resized to it (build_reconstructor)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(fit(torch.cat([x0, x1], dim=1), self.input_size))  # (B, 512)
        return self.direction_head(features), self.magnitude_head(features).squeeze(1)


class SiameseReconstructor(nn.Module):
    """A reconstructor that sees only the *change* between the images, in a learned feature space.

    One encoder E (LeNet's conv trunk, with group norm, on a single image) maps each image to K
    features; the variation v = E(x1) - E(x0) is all the heads see. Direction k must move feature k
    more than the others: logits_k = s * |v_k| / |v| (a learned scale s), so the class is read from
    *which* feature moved, whatever the sign of eps or where the pair starts; eps_hat is a learned
    multiple a_k of v_k, averaged under the predicted class probabilities.

    This is the "variation space" of DisCo (Ren et al., ICLR 2022) with its domination idea (each
    variation dominated by one dimension) built into the classifier: a direction that changes
    several factors moves several features, so it is recognisable only if it changes them in the same
    proportion from every starting point; one that changes a single factor is. docs/results.md
    measures what this does to the factors found.
    """

    kind = "siamese"
    min_size = 32

    def __init__(self, num_directions: int, channels: int = 3, width: int = 2) -> None:
        super().__init__()
        c1, c2, c3 = 3 * width, 8 * width, 60 * width
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, c1, 5), nn.GroupNorm(1, c1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.GroupNorm(1, c2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 5), nn.GroupNorm(1, c3), nn.ReLU(),
        )  # fmt: skip
        self.features = nn.Linear(c3, num_directions)
        self.log_scale = nn.Parameter(torch.tensor(2.0))
        self.magnitude = nn.Parameter(torch.ones(num_directions))

    input_size: int | None = None  # larger inputs are resized to it (build_reconstructor)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, H, W) -> (B, K)
        x = fit(x, self.input_size)
        if min(x.shape[-2:]) < self.min_size:
            x = F.interpolate(x, size=self.min_size, mode="bilinear", align_corners=False)
        return self.features(self.encoder(x).mean(dim=(2, 3)))

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x0, x1: (B, C, H, W) -> logits (B, K), eps_hat (B,)
        both = self.encode(torch.cat([x0, x1]))  # (2B, K): one encoder pass for both images
        v = both[len(x0) :] - both[: len(x0)]  # (B, K) the variation
        logits = self.log_scale.exp() * v.abs() / v.norm(dim=1, keepdim=True).clamp_min(1e-6)
        eps_hat = (logits.softmax(dim=1) * self.magnitude * v).sum(dim=1)
        return logits, eps_hat


def choose_reconstructor(requested: str, image_size: int) -> str:
    """``auto`` picks LeNet up to 64 px and ResNet-18 above, as the paper."""
    if requested == "auto":
        return "lenet" if image_size <= 64 else "resnet18"
    if requested not in RECONSTRUCTORS:
        raise GanzooError(f"unknown reconstructor {requested!r}; valid: auto, {', '.join(RECONSTRUCTORS)}")
    return requested


def build_reconstructor(
    kind: str, num_directions: int, channels: int = 3, *, input_size: int | None = None, **config: Any
) -> nn.Module:
    """Build a reconstructor of ``kind`` (one of :data:`RECONSTRUCTORS`) whose inputs are resized
    to ``input_size`` (:func:`input_size`) when they are larger."""
    if kind == "lenet":
        model: nn.Module = LeNetReconstructor(num_directions, channels, **config)
    elif kind == "lenet-gn":
        model = LeNetReconstructor(num_directions, channels, norm="group", **config)
    elif kind == "resnet18":
        model = ResNetReconstructor(num_directions, channels)
    elif kind == "siamese":
        model = SiameseReconstructor(num_directions, channels, **config)
    else:
        raise GanzooError(f"unknown reconstructor {kind!r}; valid: {', '.join(RECONSTRUCTORS)}")
    model.input_size = input_size
    return model


#: a run folder's trained reconstructor (its RCA is measured with it)
RECONSTRUCTOR_FILE = "reconstructor.safetensors"


def save_reconstructor(path: Path, reconstructor: nn.Module, num_directions: int) -> None:
    """The trained R as safetensors (its architecture class name and K in the metadata)."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in reconstructor.state_dict().items()}
    metadata = {
        "class": type(reconstructor).__name__,
        "kind": getattr(reconstructor, "kind", ""),
        "num_directions": str(num_directions),
        "input_size": str(getattr(reconstructor, "input_size", None) or ""),  # "": images as rendered
    }
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def load_reconstructor(run_dir: Path, image_size: int, channels: int, device: str) -> nn.Module | None:
    """The run's trained reconstructor, or ``None`` when the folder has none (closed-form, Hub sets)."""
    path = run_dir / RECONSTRUCTOR_FILE
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        size = int(meta["input_size"]) if meta.get("input_size") else None  # absent in older files: none
        kind = meta.get("kind") or choose_reconstructor("auto", size or image_size)
        if not 0 < int(meta["num_directions"]) <= defaults.MAX_LATENT_DIM or not 0 < (size or 1) <= 4096:
            raise ValueError("sizes out of range")
        model = build_reconstructor(kind, int(meta["num_directions"]), channels, input_size=size)
        model.load_state_dict(state)
    except Exception as exc:  # a truncated or foreign file: one line, naming it
        raise DirectionFileError(
            f"{path}: not a reconstructor this project wrote ({str(exc).splitlines()[0][:160]}); "
            "delete it to score the set with held-out RCA only (--metrics heldout_rca)"
        ) from None
    return model.to(device).eval()
