"""baseline, two-shift and centroid: the paper's three trained methods on the shared loop, and
centroid-ortho, the paper's centroid made rigid and local (ours; docs/results.md section 7).

See docs/methods.md for the equations, and for how the centroid loss reads the paper's Eq. 3-5.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from ganzoo_directions import defaults
from ganzoo_directions.interfaces import GeneratorAdapter, Option
from ganzoo_directions.training import TrainedMethod


class Baseline(TrainedMethod):
    """Voynov & Babenko 2020: one shift per sample, A(k, eps) = eps * a_k, loss CE + 0.25 |eps_hat - eps|."""

    name = "baseline"
    summary = "Voynov & Babenko 2020: one shift, linear deformator (ortho by default)"
    shifts_per_sample = 1
    hyperparameters = TrainedMethod.common_hyperparameters(deformator="ortho", shift_weight=0.25)


class TwoShift(TrainedMethod):
    """The paper's section 3.2: an MLP deformator and two consecutive shifts, losses on both pairs."""

    name = "two-shift"
    summary = "Lu et al.: MLP deformator, two consecutive shifts, loss on both pairs"
    shifts_per_sample = 2
    hyperparameters = TrainedMethod.common_hyperparameters(deformator="mlp", shift_weight=0.5)


class Centroid(TwoShift):
    """two-shift plus gamma * L_c, pulling each direction's shift codes toward their running centroid.

    L_c = mean_n (1 - cos(u_n, c_{k_n})), with u_n = sign(eps_n) A(k_n, eps_n) / |A(k_n, eps_n)| and
    c_k = m * C_k + sum over this step's codes of direction k of u_n, where C_k is the exponential
    moving sum (momentum m) of earlier steps' codes (no gradient through C_k).
    """

    name = "centroid"
    summary = "Lu et al. (the paper's full method): two-shift plus the centroid loss"
    hyperparameters = {
        **TwoShift.hyperparameters,
        "centroid_weight": Option(0.25, "gamma, weight of the centroid loss", minimum=0.0),
        "centroid_momentum": Option(
            0.99, "decay of the running centroid sums, per step", minimum=0.0, maximum=1.0
        ),
    }

    def reset_state(self, num_directions: int, latent_dim: int, device: torch.device) -> None:
        self.centroid_sums = torch.zeros(num_directions, latent_dim, device=device)  # (K, D)

    def regularizer(self, k: torch.Tensor, eps: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        unit = F.normalize(codes, dim=1) * eps.sign()[:, None]  # (N, D) sign-aligned unit codes
        batch_sums = torch.zeros_like(self.centroid_sums).index_add(0, k, unit)  # (K, D)
        momentum = self.hparams["centroid_momentum"]
        centroids = momentum * self.centroid_sums + batch_sums  # (K, D); scale is irrelevant to cos
        loss = (1 - F.cosine_similarity(unit, centroids[k], dim=1)).mean()
        with torch.no_grad():
            self.centroid_sums.mul_(momentum).add_(batch_sums)
        return self.hparams["centroid_weight"] * loss

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {"centroid_sums": self.centroid_sums.clone()}

    def load_extra_state(self, state: Mapping[str, torch.Tensor]) -> None:
        self.centroid_sums.copy_(state["centroid_sums"])


def local_eps_max(generator: GeneratorAdapter) -> float:
    """The local shift law (docs/results.md section 7): eps_max half the latents' spread around their
    mean (:meth:`GeneratorAdapter.latent_spread`), to the nearest 0.5 and at least eps_min. In a
    16-dim N(0, I) the spread is ~4; in StyleGAN's W the distance to the mean w (which follows psi);
    BigGAN's untruncated prior (docs/methods.md). The methods that train at local shifts share it."""
    return max(defaults.EPS_MIN * 2, round(generator.latent_spread())) / 2


def half_the_directions(generator: GeneratorAdapter, at_least: int = 1) -> int:
    """K half the generator's latent dimension (at most the project's K, at least ``at_least``): the
    K the methods measured at local shifts recommend."""
    return max(at_least, min(defaults.NUM_DIRECTIONS, generator.max_directions // 2))


class CentroidOrtho(Centroid):
    """The paper's centroid with four changes that make it find disentangled directions where the
    truth is known (docs/results.md section 7): an orthonormal deformator, the image-space
    orthogonality loss at weight 300, and, as recommended run settings, local shifts (eps_max half
    the latents' spread around their mean, :meth:`GeneratorAdapter.latent_spread`), lr 1e-3 and
    K = half the latent dimension."""

    name = "centroid-ortho"
    summary = (
        "ours: centroid with an orthonormal deformator, image-space orthogonality, local shifts "
        "(the most disentangled trained option; docs/results.md section 7)"
    )
    hyperparameters = {
        **Centroid.hyperparameters,
        **TrainedMethod.common_hyperparameters(deformator="ortho", shift_weight=0.5),
        "orthogonality": Option(
            300.0,
            "weight of the image-space orthogonality loss (mean cos^2 between the image changes of "
            "two different directions)",
            minimum=0.0,
        ),
    }

    def recommended_settings(self, generator: GeneratorAdapter) -> dict[str, Any]:
        return {
            "lr": 1e-3,
            "eps_max": local_eps_max(generator),
            "num_directions": half_the_directions(generator),
        }
