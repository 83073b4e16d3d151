"""The field's disentanglement protocol for discovered directions: an encoder, then MIG and DCI.

Khrulkov et al. 2021 ("Disentangled Representations from Non-Disentangled Models") and Ren et al.
2022 (DisCo) do not score a direction set's effects directly. They

1. take the top directions d_1..d_k of the set (here: its ranking, :mod:`ganzoo_directions.ranking`);
2. generate images x = G(z) labelled with the latent's coordinates along them, c_i = <z, d_i>;
3. train an encoder E (a CNN) to regress c from x;
4. encode *real* images whose true factors v are known, and score the codes E(x_real) against v with
   MIG and DCI.

A set scores high when its coordinates are each one factor: then the encoder, trained without labels
of the real data, becomes a disentangled representation of it.

The scores are pure functions of codes and factors (:func:`mig`, :func:`dci`), written from the
definitions (Chen et al. 2018 for MIG; Eastwood & Williams 2018 for DCI) with disentanglement_lib's
estimators: MIG on codes discretised into 20 equal-width bins, with scikit-learn's
``mutual_info_score``; DCI importances from scikit-learn's gradient-boosted trees. Factors are treated
as they are: where the readout gives the grid (``FactorReadout.levels``: 3D Shapes, dSprites) they are
classes, as in disentanglement_lib (MIG against the values themselves; DCI with classifiers, and
informativeness the test accuracy); continuous factors (``sprites``) are cut into the same 20 bins for
MIG, and DCI uses regressors, as in Eastwood & Williams' continuous setting (informativeness the test
R^2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .directions import DirectionSet
from .interfaces import FactorReadout, GeneratorAdapter
from .metrics import dci_scores

BINS = 20


def discretize(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    """``(n, m)`` -> ``(n, m)`` integer bins, each column cut into ``bins`` equal-width bins over its range
    (disentanglement_lib's histogram discretisation)."""
    out = np.zeros(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        edges = np.histogram(values[:, j], bins)[1]
        out[:, j] = np.digitize(values[:, j], edges[:-1])
    return out


def factor_classes(factors: np.ndarray, levels: Sequence[int]) -> np.ndarray:
    """``(n, F)`` factor values on a grid (``0, 1/(L-1), ..., 1``) -> ``(n, F)`` integer grid indices."""
    steps = np.maximum(np.asarray(levels, dtype=np.float64) - 1, 1)
    return np.rint(factors * steps).astype(np.int64)


def mig(
    codes: np.ndarray, factors: np.ndarray, bins: int = BINS, levels: Sequence[int] | None = None
) -> dict[str, Any]:
    """Mutual information gap of ``(n, k)`` codes against ``(n, F)`` factors (``levels``: discrete
    factors on a grid, taken as classes; ``None``: continuous factors, binned like the codes).

    With I[i, j] the mutual information between discretised code i and factor j and H_j the entropy of
    factor j: MIG = mean_j (I[(1), j] - I[(2), j]) / H_j, I[(1), j] >= I[(2), j] the two largest over
    codes. 1 when each factor is captured by one code and by no other; 0 when the best two codes know
    equally much about it. A single code has a gap of its full information.
    """
    from sklearn.metrics import mutual_info_score

    c = discretize(codes, bins)
    v = discretize(factors, bins) if levels is None else factor_classes(factors, levels)
    info = np.array(
        [[mutual_info_score(v[:, j], c[:, i]) for j in range(v.shape[1])] for i in range(c.shape[1])]
    )
    entropy = np.array([mutual_info_score(v[:, j], v[:, j]) for j in range(v.shape[1])])
    top = np.sort(info, axis=0)[::-1]  # (k, F), descending per factor
    second = top[1] if len(top) > 1 else np.zeros(top.shape[1])
    gaps = (top[0] - second) / np.maximum(entropy, 1e-12)
    return {"mig": float(gaps.mean()), "mig_per_factor": gaps.tolist()}


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    seed: int = 0,
    train_fraction: float = 0.5,
    levels: Sequence[int] | None = None,
) -> dict[str, Any]:
    """DCI of ``(n, k)`` codes against ``(n, F)`` factors (Eastwood & Williams 2018).

    One gradient-boosted model per factor on the first ``train_fraction`` of the rows: a classifier of
    the grid index where ``levels`` gives the grid (disentanglement_lib's form), a regressor of the
    value otherwise. R[i, j] = the importance of code i for factor j. ``dci_disentanglement`` =
    sum_i rho_i (1 - H_F(R[i] / sum R[i])), rho_i = sum R[i] / sum R; ``dci_completeness`` the same
    over factors (entropy base k); ``dci_informativeness`` the mean test accuracy (classifiers) or
    R^2 (regressors).
    """
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    n_train = int(len(codes) * train_fraction)
    targets = factors if levels is None else factor_classes(factors, levels)
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    r2 = []
    for j in range(factors.shape[1]):
        kind = GradientBoostingRegressor if levels is None else GradientBoostingClassifier
        model = kind(random_state=seed)
        model.fit(codes[:n_train], targets[:n_train, j])
        importance[:, j] = np.abs(model.feature_importances_)
        r2.append(model.score(codes[n_train:], targets[n_train:, j]))
    scores = dci_scores(torch.from_numpy(importance))
    return {
        "dci_disentanglement": scores["disentanglement"],
        "dci_completeness": scores["completeness"],
        "dci_informativeness": float(np.mean(r2)),
        "dci_importance": importance.tolist(),
    }


class CodeEncoder(nn.Module):
    """(n, C, H, W) images in [-1, 1] -> (n, k) codes: four strided 3x3 conv stages, global average, linear.

    Images are resized to 32 x 32 first (area averaging when larger), so one encoder fits every size.
    """

    size = 32

    def __init__(self, num_codes: int, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = []
        for c_in, c_out in ((channels, w), (w, 2 * w), (2 * w, 2 * w), (2 * w, 4 * w)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(1, c_out), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(4 * w, num_codes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.size:
            mode = "area" if images.shape[-1] > self.size else "bilinear"
            images = F.interpolate(images, size=self.size, mode=mode)
        return self.head(self.features(images).mean(dim=(2, 3)))


@torch.no_grad()
def _render_dataset(
    generator: GeneratorAdapter, directions: torch.Tensor, n: int, rng: torch.Generator, batch: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` generated images and their standardised coordinates along ``(k, D)`` directions."""
    images, coords = [], []
    for start in range(0, n, batch):
        z = generator.sample_latents(min(batch, n - start), rng)  # (b, D)
        images.append(generator.render(z).float().cpu())
        coords.append((z @ directions.t()).float().cpu())  # (b, k)
    c = torch.cat(coords)
    return torch.cat(images), (c - c.mean(0)) / c.std(0).clamp_min(1e-6)


def train_encoder(
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Callable[[int], None] | None = None,
) -> CodeEncoder:
    """A :class:`CodeEncoder` regressing ``(n, k)`` targets from ``(n, C, H, W)`` images (MSE, Adam)."""
    torch.manual_seed(seed)
    encoder = CodeEncoder(targets.shape[1], images.shape[1]).to(device)
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)
    rng = torch.Generator().manual_seed(seed)
    encoder.train()
    for _ in range(steps):
        idx = torch.randint(0, len(images), (batch_size,), generator=rng)
        loss = F.mse_loss(encoder(images[idx].to(device)), targets[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(1)
    return encoder.eval()


@torch.no_grad()
def encode(
    encoder: nn.Module, images: torch.Tensor, device: str | torch.device, batch: int = 512
) -> np.ndarray:
    return torch.cat(
        [encoder(images[i : i + batch].to(device)).cpu() for i in range(0, len(images), batch)]
    ).numpy()


def protocol_scores(
    generator: GeneratorAdapter,
    dset: DirectionSet,
    readout: FactorReadout,
    *,
    directions: Sequence[int],
    train_images: int = 10_000,
    real_images: int = 4000,
    steps: int = 1500,
    seed: int = 1234,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """MIG and DCI of the encoder trained on the coordinates along ``directions`` of ``dset``
    (see the module docstring). Needs ``readout.labelled`` (real images with their true factors)."""
    if readout.labelled is None:
        raise ValueError("this factor readout has no labelled real images")
    device = generator.device
    chosen = dset.directions[list(directions)].to(device)  # (k, D)
    rng = torch.Generator(device).manual_seed(seed)
    images, coords = _render_dataset(generator, chosen, train_images, rng)
    encoder = train_encoder(images, coords, steps=steps, seed=seed, device=device, progress=progress)
    fit = 1 - F.mse_loss(torch.from_numpy(encode(encoder, images[:2000], device)), coords[:2000]).item()
    real, factors = readout.labelled(real_images, torch.Generator(device).manual_seed(seed + 1))
    codes = encode(encoder, real.float().cpu(), device)
    v = factors.double().cpu().numpy()
    return {
        **mig(codes, v, levels=readout.levels),
        **dci(codes, v, seed=seed, levels=readout.levels),
        "protocol_directions": list(directions),
        "protocol_encoder_r2": fit,
        "protocol_samples": {"train_images": train_images, "real_images": real_images, "steps": steps},
    }
