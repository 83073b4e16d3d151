"""``jacobian-svd``: a closed-form method, to show what a DirectionMethod needs."""

from __future__ import annotations

import torch

from ganzoo_directions.interfaces import (
    DirectionMethod,
    DiscoveryResult,
    GeneratorAdapter,
    Option,
    RunSettings,
)


class JacobianSVD(DirectionMethod):
    """Top-K eigenvectors of E_z[J^T J], J = d image / d latent, averaged over sampled latents."""

    name = "jacobian-svd"
    summary = "example plugin: eigenvectors of the mean J^T J (largest local image change)"
    hyperparameters = {"samples": Option(16, "latents the expectation is averaged over")}

    def discover(self, generator: GeneratorAdapter, settings: RunSettings) -> DiscoveryResult:
        K, D = settings.num_directions, generator.latent_dim
        rng = torch.Generator(generator.device).manual_seed(settings.seed)
        gram = torch.zeros(D, D, dtype=torch.float64)
        for z in generator.sample_latents(self.hparams["samples"], rng):
            J = torch.autograd.functional.jacobian(lambda v: generator.render(v[None]).flatten(), z)  # (P, D)
            gram += (J.t() @ J).double().cpu()
        eigenvalues, eigenvectors = torch.linalg.eigh(gram / self.hparams["samples"])
        order = eigenvalues.argsort(descending=True)[:K]
        return DiscoveryResult(
            eigenvectors[:, order].t().float(), metrics={"eigenvalues": eigenvalues[order].tolist()}
        )
