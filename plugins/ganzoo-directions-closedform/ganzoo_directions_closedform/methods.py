"""Closed-form and control methods. Each returns K unit directions (no deformator, no reconstructor),
so the direction file, ``traverse``, ``push`` and the metrics treat them like trained methods."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganzoo_directions.errors import GanzooError
from ganzoo_directions.interfaces import (
    DirectionMethod,
    DiscoveryResult,
    GeneratorAdapter,
    Option,
    RunSettings,
)
from ganzoo_directions.metrics import random_directions


def _check_k(generator: GeneratorAdapter, k: int, method: str) -> None:
    if k > generator.latent_dim:
        raise GanzooError(f"{method} finds at most D = {generator.latent_dim} directions, asked for {k}")


class SeFa(DirectionMethod):
    """Shen & Zhou, CVPR 2021: the top eigenvectors of W^T W, W the weights that consume the latent
    (each output unit's weight vector normalised to unit length first, as their code does)."""

    name = "sefa"
    summary = "SeFa (Shen & Zhou 2021): eigenvectors of W^T W of the weight that reads the latent"
    hyperparameters = {"normalize": Option(True, "normalise each output unit's weights before factorising")}

    @torch.no_grad()
    def discover(self, generator: GeneratorAdapter, settings: RunSettings) -> DiscoveryResult:
        K = settings.num_directions
        _check_k(generator, K, self.name)
        W = generator.latent_weights()
        if W is None:
            raise GanzooError(
                f"sefa needs the weight that reads the latent, and generator {generator.name!r} "
                "does not expose it (GeneratorAdapter.latent_weights)"
            )
        W = W.detach().double().cpu()  # (N, D)
        if self.hparams["normalize"]:
            W = F.normalize(W, dim=1)
        eigenvalues, eigenvectors = torch.linalg.eigh(W.t() @ W)  # ascending
        order = eigenvalues.argsort(descending=True)[:K]
        directions = eigenvectors[:, order].t().float()  # (K, D)
        return DiscoveryResult(directions, metrics={"sefa_eigenvalues": eigenvalues[order].tolist()})


class GANSpace(DirectionMethod):
    """Härkönen et al., NeurIPS 2020: principal components. In W (StyleGAN2) the PCA of sampled w is
    taken directly; otherwise the PCA of early activations, each component regressed back to the latent
    (least squares, as in their BigGAN experiments)."""

    name = "ganspace"
    summary = "GANSpace (Härkönen et al. 2020): PCA of sampled W, or of early activations regressed to z"
    hyperparameters = {"samples": Option(4096, "latents sampled for the PCA", minimum=2)}

    @torch.no_grad()
    def discover(self, generator: GeneratorAdapter, settings: RunSettings) -> DiscoveryResult:
        K, n = settings.num_directions, self.hparams["samples"]
        _check_k(generator, K, self.name)
        if n < 2 * K:
            raise GanzooError(f"ganspace needs samples >= 2K = {2 * K}, got {n}")
        rng = torch.Generator(generator.device).manual_seed(settings.seed)
        latents, features = [], []
        for start in range(0, n, 256):
            z = generator.sample_latents(min(256, n - start), rng)
            latents.append(z.cpu())
            if generator.latent_space != "w":
                features.append(generator.early_features(z).cpu())
        Z = torch.cat(latents).double()  # (n, D)
        if generator.latent_space == "w":  # PCA directly in the latent space
            Zc = Z - Z.mean(0)
            _, S, Vh = torch.linalg.svd(Zc, full_matrices=False)
            directions = Vh[:K]  # (K, D)
            variance = (S[:K] ** 2 / (n - 1)).tolist()
        else:
            Y = torch.cat(features).double()
            Yc = Y - Y.mean(0)
            _, S, V = torch.pca_lowrank(Yc, q=min(K + 10, *Yc.shape), center=False, niter=4)
            X = Yc @ V[:, :K]  # (n, K): principal coordinates
            directions = torch.linalg.lstsq(X, Z - Z.mean(0)).solution  # (K, D): Z ~ X directions
            variance = (S[:K] ** 2 / (n - 1)).tolist()
        return DiscoveryResult(
            F.normalize(directions.float(), dim=1), metrics={"ganspace_variance": variance}
        )


class DeepSpectral(DirectionMethod):
    """Khrulkov et al., ICML 2021 ("Disentangled representations from non-disentangled models"): the
    top eigenvectors of M = E_z[J(z)^T J(z)], J the Jacobian of an intermediate layer's output with
    respect to the latent. For a first layer that is linear in the latent this is SeFa's W^T W; deeper
    layers see what the convolutions make of a shift.

    M is estimated without forming J (P x D, P the layer's size): for u with independent +-1 entries,
    g = J^T u (one backward pass) has E[g g^T] = J^T J, so M ~ mean over samples of g g^T
    (``probes`` draws of u per latent; the error falls as 1 / sqrt(samples * probes)).
    """

    name = "deepspectral"
    summary = "DeepSpectral (Khrulkov et al. 2021): eigenvectors of E[J^T J], J of an intermediate layer"
    hyperparameters = {
        "layer": Option(
            "auto",
            "the generator module whose output J is taken of ('auto': the generator's feature_layer; "
            "'image': the rendered image)",
        ),
        "samples": Option(2048, "latents the expectation is taken over", minimum=1),
        "probes": Option(4, "random projections per latent (Hutchinson estimate of J^T J)", minimum=1),
    }

    def discover(self, generator: GeneratorAdapter, settings: RunSettings) -> DiscoveryResult:
        K, D = settings.num_directions, generator.latent_dim
        _check_k(generator, K, self.name)
        layer = self.hparams["layer"]
        layer = generator.feature_layer if layer == "auto" else layer
        n, probes = self.hparams["samples"], self.hparams["probes"]
        rng = torch.Generator(generator.device).manual_seed(settings.seed)
        batch = max(1, min(n, settings.batch_size))
        M = torch.zeros(D, D, dtype=torch.float64)
        for start in range(0, n, batch):
            with torch.no_grad():
                z = generator.sample_latents(min(batch, n - start), rng)  # (b, D)
            z.requires_grad_(True)
            features = generator.layer_output(z, layer)  # (b, P)
            for probe in range(probes):
                u = torch.randint(0, 2, features.shape, generator=rng, device=features.device)
                u = (2 * u - 1).to(features.dtype)  # Rademacher: E[u u^T] = I, less variance than normal
                (g,) = torch.autograd.grad(features, z, u, retain_graph=probe < probes - 1)  # (b, D): J^T u
                g = g.detach().double().cpu()
                M += g.t() @ g
        M /= n * probes
        eigenvalues, eigenvectors = torch.linalg.eigh(M)  # ascending
        order = eigenvalues.argsort(descending=True)[:K]
        return DiscoveryResult(
            eigenvectors[:, order].t().float().contiguous(),  # (K, D)
            metrics={
                "deepspectral_eigenvalues": eigenvalues[order].tolist(),
                "deepspectral_layer": layer or "image",
            },
        )


class Random(DirectionMethod):
    """Random orthonormal directions (seeded): the control every method must beat."""

    name = "random"
    summary = "control: random orthonormal directions"

    def discover(self, generator: GeneratorAdapter, settings: RunSettings) -> DiscoveryResult:
        _check_k(generator, settings.num_directions, self.name)
        return DiscoveryResult(
            random_directions(settings.num_directions, generator.latent_dim, settings.seed)
        )


class Axes(DirectionMethod):
    """The first K coordinate axes of the latent: the other control Voynov & Babenko report."""

    name = "axes"
    summary = "control: the latent coordinate axes"

    def discover(self, generator: GeneratorAdapter, settings: RunSettings) -> DiscoveryResult:
        _check_k(generator, settings.num_directions, self.name)
        return DiscoveryResult(torch.eye(generator.latent_dim)[: settings.num_directions])


class Oracle(DirectionMethod):
    """Supervised reference (not a discovery method): directions computed *from the true factors*, read
    off the images with the generator's factor readout. It bounds what a linear direction can reach.

    Over ``samples`` latents z and readouts f = readout(G(z)) (F factors), the least-squares fit
    f ~ z B + b (B: (D, F)) gives, per factor, ``r2`` (how well the factor is linearly decodable from the
    latent at all) and two direction sets:

    ``lstsq``    column f of B: the best linear predictor of factor f. For a Gaussian prior this is also
                 the mean gradient E[grad_z f] (Stein's lemma: E[f(z) z] = E[grad f(z)]).
    ``inverse``  column f of the pseudo-inverse of B^T: the direction that, to first order, moves factor
                 f by one unit and leaves the other factors where they are (the best supervised choice).

    It returns F directions whatever ``--directions`` asks.
    """

    name = "oracle"
    summary = "supervised reference: per-factor directions from the factor readout (lstsq or inverse)"
    hyperparameters = {
        "kind": Option(
            "inverse",
            "lstsq: best linear predictor; inverse: moves one factor only",
            choices=("lstsq", "inverse"),
        ),
        "samples": Option(4096, "latents sampled for the fit", minimum=2),
    }

    @torch.no_grad()
    def discover(self, generator: GeneratorAdapter, settings: RunSettings) -> DiscoveryResult:
        readout = generator.factor_readout()
        if readout is None:
            raise GanzooError(
                f"oracle needs the true factors, and generator {generator.name!r} has no factor readout"
            )
        n = self.hparams["samples"]
        if n <= 2 * generator.latent_dim:
            raise GanzooError(f"oracle needs samples > 2D = {2 * generator.latent_dim}, got {n}")
        rng = torch.Generator(generator.device).manual_seed(settings.seed)
        latents, factors = [], []
        for start in range(0, n, 256):
            z = generator.sample_latents(min(256, n - start), rng)
            latents.append(z.cpu())
            factors.append(readout.predict(generator.render(z)).cpu())
        Z, Y = torch.cat(latents).double(), torch.cat(factors).double()  # (n, D), (n, F)
        Zc, Yc = Z - Z.mean(0), Y - Y.mean(0)
        B = torch.linalg.lstsq(Zc, Yc).solution  # (D, F)
        residual = (Yc - Zc @ B).square().sum(0)
        r2 = 1 - residual / Yc.square().sum(0).clamp_min(1e-12)  # (F,)
        directions = B.t() if self.hparams["kind"] == "lstsq" else torch.linalg.pinv(B.t()).t()  # (F, D)
        return DiscoveryResult(
            F.normalize(directions.float(), dim=1),
            metrics={"oracle_r2": dict(zip(readout.names, r2.tolist(), strict=True))},
        )
