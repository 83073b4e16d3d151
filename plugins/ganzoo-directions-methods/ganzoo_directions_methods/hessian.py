"""The Hessian Penalty (Peebles, Peebles, Zhu, Efros & Torralba, ECCV 2020: "The Hessian Penalty: a
weak prior for unsupervised disentanglement") as a direction-discovery method, on the shared loop.

Their section on BigGAN learns K orthonormal directions Q for a frozen generator by making the
Hessian of the image with respect to the coordinates along them diagonal: moving along one direction
should change the image in a way that does not depend on where one stands along the others. At a
point z' = z + A(k, d) (one direction, d ~ U[-eps_max, eps_max], as their path sizes) and for
Rademacher vectors v (K entries +-1), the second directional derivative along Q v is estimated by a
central difference,

    sdd_v = (G(z' + eps Q v) - 2 G(z') + G(z' - eps Q v)) / eps^2,

and since v^T H v = sum_i H_ii + sum_{i != j} v_i v_j H_ij, its variance over v is
2 sum_{i != j} H_ij^2: the off-diagonal energy. The loss is that variance (unbiased, over ``probes``
draws of v) averaged over pixels and latents (their ``reduction=mean``). No reconstructor is trained.

With the ``ortho`` deformator the directions can turn anywhere in the latent, as in their code; with
``span`` (``-p deformator=span -p init=deepspectral``) they turn only among themselves, so a
closed-form set is refined within its own subspace. There the Frobenius norm of the Hessian restricted
to the subspace does not change under the rotation, so lowering the off-diagonal part raises the
diagonal one: a joint diagonalisation of the per-pixel Hessians, which cannot be won by turning the
directions towards ones the generator ignores (docs/methods.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganzoo_directions.deformators import DEFORMATORS, sample_magnitudes
from ganzoo_directions.errors import GanzooError
from ganzoo_directions.interfaces import GeneratorAdapter, Option, RunSettings
from ganzoo_directions.training import TrainedMethod

from .methods import half_the_directions, local_eps_max

if TYPE_CHECKING:
    from ganzoo_directions.training import Trainer


class HessianPenalty(TrainedMethod):
    """Peebles et al., ECCV 2020: directions along which the image's Hessian is diagonal (see the module
    docstring)."""

    name = "hessian"
    summary = "Hessian Penalty (Peebles et al. 2020): directions whose mixed second derivatives vanish"
    statistics = ("loss", "curvature")
    reconstructs = False
    hyperparameters = {
        "deformator": Option(
            "ortho",
            "parametrisation of A: ortho turns anywhere in the latent (theirs), span only within the "
            "start's subspace",
            choices=tuple(kind for kind, cls in DEFORMATORS.items() if cls.linear),
        ),
        "init": TrainedMethod.common_hyperparameters(deformator="ortho", shift_weight=0.0)["init"],
        "epsilon": Option(0.1, "step of the finite differences, in latent units (theirs: 0.1)", minimum=1e-4),
        "probes": Option(2, "Rademacher vectors per latent whose variance is taken (theirs: 2)", minimum=2),
    }

    def recommended_settings(self, generator: GeneratorAdapter) -> dict[str, Any]:
        # the shift law of centroid-ortho, so the points where the derivatives are taken are those
        # the other methods are trained at; their A_lr
        return {
            "lr": 1e-2,
            "eps_max": local_eps_max(generator),
            "num_directions": half_the_directions(generator, at_least=2),
        }

    def build_image_model(self, generator: GeneratorAdapter, settings: RunSettings) -> nn.Module:
        if settings.num_directions < 2:
            raise GanzooError(f"{self.name} compares directions: it needs --directions 2 or more")
        return nn.Identity()  # A is trained alone

    def objective(self, trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        centre, forward, backward, eps = self.probe_renders(trainer, both_sides=True)
        sdd = (forward - 2 * centre + backward) / eps**2  # (P, B, C*H*W): v^T H v per pixel
        loss = sdd.var(dim=0, unbiased=True).mean()
        curvature = sdd.detach().square().mean()  # how much second-order change there is at all
        return loss, torch.stack([loss.detach(), curvature])

    def probe_renders(
        self, trainer: Trainer, both_sides: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float]:
        """Images at z' = z + A(k, d) and at z' + eps Q v (and z' - eps Q v with ``both_sides``) for
        ``probes`` Rademacher vectors v, in one render: ``(B, C*H*W)``, ``(P, B, C*H*W)`` twice
        (the second ``None`` without ``both_sides``), and eps."""
        G, A, s, K = trainer.G, trainer.A_step, trainer.s, trainer.K
        B, W, rng, device = s.batch_size, trainer.world, trainer.rng, trainer.device
        eps, probes = self.hparams["epsilon"], self.hparams["probes"]
        z = trainer.local(G.sample_latents(B * W, rng))  # (B, D)
        k = trainer.local(torch.randint(0, K, (B * W,), generator=rng, device=device))  # (B,)
        d = trainer.local(sample_magnitudes((B * W,), s.eps_max, 0.0, rng, device))  # (B,)
        v = torch.randint(0, 2, (probes, B * W, K), generator=rng, device=device)
        v = trainer.local((2 * v - 1).float().transpose(0, 1)).transpose(0, 1)  # (P, B, K) of +-1

        # one call of A for the base shifts and every probe: A is linear, so Q v = sum_i A(i, v_i)
        every = torch.arange(K, device=device).repeat(probes * B)  # (P*B*K,)
        codes = A(torch.cat([k, every]), torch.cat([d, eps * v.reshape(-1)]))  # (B + P*B*K, D)
        base = codes[:B]  # (B, D)
        probe = codes[B:].view(probes, B, K, -1).sum(dim=2)  # (P, B, D): eps Q v
        sides = [base[None], base + probe] + ([base - probe] if both_sides else [])
        shifts = torch.cat(sides)  # (1 + 2P or 1 + P, B, D)
        n = shifts.shape[0]
        z_rep = z[None].expand(n, -1, -1)  # (n, B, D)
        images = trainer.render_pairs(z_rep.reshape(-1, z.shape[1]), shifts.reshape(-1, z.shape[1]))
        images = images.float().reshape(n, B, -1)  # (n, B, C*H*W)
        backward = images[1 + probes :] if both_sides else None
        return images[0], images[1 : 1 + probes], backward, eps


class OrthogonalJacobian(HessianPenalty):
    """OroJaR (Wei, Shi, Liu, Ji, Gao, Wu & Zuo, ICCV 2021: "Orthogonal Jacobian regularization for
    unsupervised disentanglement in image generation"): the image *changes* along different
    directions should be orthogonal. With fd_v = (G(z' + eps Q v) - G(z')) / eps ~ J Q v, the squared
    norm |J Q v|^2 = sum_ij v_i v_j M_ij with M = Q^T J^T J Q, so its variance over Rademacher v is
    2 sum_{i != j} M_ij^2: the loss makes the per-latent metric M diagonal (their estimator: a forward
    difference, the variance of the dot products, mean). Unlike the Hessian Penalty it compares whole
    image changes rather than each pixel alone, which is what they argue spatially correlated factors
    (shape, size, rotation) need. DeepSpectral diagonalises the *mean* of J^T J; with
    ``-p deformator=span`` this diagonalises each latent's at once (docs/methods.md)."""

    name = "orojar"
    summary = "OroJaR (Wei et al. 2021): directions whose image changes are orthogonal at every latent"
    statistics = ("loss", "change")

    def objective(self, trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        centre, forward, _, eps = self.probe_renders(trainer, both_sides=False)
        fd = (forward - centre) / eps  # (P, B, C*H*W): J Q v
        dots = fd.square().sum(dim=2)  # (P, B): |J Q v|^2
        loss = dots.var(dim=0, unbiased=True).mean()
        change = dots.detach().mean() / fd.shape[2]  # mean squared change per pixel
        return loss, torch.stack([loss.detach(), change])


class OrthogonalJacobianInSpan(OrthogonalJacobian):
    """OroJaR turning a closed-form set within its own span (ours, docs/results.md section 10):
    ``orojar`` packaged with ``deformator=span``, ``init=deepspectral`` (every adapter has the layer
    DeepSpectral reads: ``GeneratorAdapter.feature_layer``) and, as recommended settings, 500 steps
    at lr 1e-2 — the closed form finds the subspace, the per-latent orthogonality of the image
    changes picks the axes in it."""

    name = "orojar-span"
    summary = (
        "ours: OroJaR turning DeepSpectral's directions within their span (no reconstructor, "
        "500 steps; docs/results.md section 10)"
    )
    hyperparameters = {
        **OrthogonalJacobian.hyperparameters,
        "deformator": replace(OrthogonalJacobian.hyperparameters["deformator"], default="span"),
        "init": replace(OrthogonalJacobian.hyperparameters["init"], default="deepspectral"),
    }

    def recommended_settings(self, generator: GeneratorAdapter) -> dict[str, Any]:
        return {**super().recommended_settings(generator), "steps": 500}
