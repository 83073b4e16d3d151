"""DisCo (Ren, Yang, Wang & Zeng, ICLR 2022: "Learning disentangled representation by exploiting
pretrained generative models: a contrastive learning view") on the shared training loop.

A navigator A (K orthonormal directions) and a Δ-contrastor E (a convolutional encoder of one image)
are trained together. The *variation* of a shift is v = |E(G(z + A(k, eps))) - E(G(z))|, normalised;
each step picks one direction k* and contrasts the variations of B queries along k* against B
positives along k* (other latents, other magnitudes) and 2B negatives along the other directions:
binary cross-entropy on the cosine similarities, with hard negatives whose similarity exceeds a
threshold relabelled by that similarity (hard-negative flipping), plus the entropy of softmax(v)
(the entropy-based domination loss: each variation dominated by few features). docs/methods.md has the
equations and what we chose where the paper and its code differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo_directions.deformators import sample_magnitudes
from ganzoo_directions.errors import GanzooError
from ganzoo_directions.interfaces import GeneratorAdapter, Option, RunSettings
from ganzoo_directions.reconstructors import fit
from ganzoo_directions.training import TrainedMethod

from .methods import half_the_directions, local_eps_max

if TYPE_CHECKING:
    from ganzoo_directions.training import Trainer


class DeltaContrastor(nn.Module):
    """DisCo's encoder of one image (their ``Baseline_Encoder``): a 7x7 stride-1 convolution, then
    4x4 stride-2 convolutions down to 4 x 4, three linear layers; LeakyReLU, no normalisation (so a
    data-parallel run computes what one process does). Images larger than 64 px are resized to 64,
    smaller than 32 px enlarged to 32; the input is mapped from [-1, 1] to [0, 1] as theirs."""

    def __init__(self, channels: int, image_size: int, features: int, width: int = 64) -> None:
        super().__init__()
        self.size = min(64, max(32, image_size))
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 7, 1, 3), nn.LeakyReLU()]
        side, c_in, c_out = self.size, width, 2 * width
        while side > 4:
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU()]
            side, c_in, c_out = side // 2, c_out, min(c_out * 2, 4 * width)
        layers += [
            nn.Flatten(),
            nn.Linear(c_in * 16, 256), nn.LeakyReLU(),
            nn.Linear(256, 256), nn.LeakyReLU(),
            nn.Linear(256, features),
        ]  # fmt: skip
        self.net = nn.Sequential(*layers)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images: (n, C, H, W) in [-1, 1] -> (n, features)
        x = fit((images + 1) / 2, self.size)
        if x.shape[-1] < self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return self.net(x)


class DisCo(TrainedMethod):
    """DisCo (Ren et al., ICLR 2022): contrast the variations E(x') - E(x) of shifts along the same
    and along different directions (see the module docstring)."""

    name = "disco"
    summary = "DisCo (Ren et al. 2022): contrastive learning on the variations of an image encoder"
    statistics = ("loss", "contrast", "entropy", "retrieval")
    reconstructs = False
    hyperparameters = {
        **{
            key: option
            for key, option in TrainedMethod.common_hyperparameters(
                deformator="ortho", shift_weight=0.0
            ).items()
            if key in ("deformator", "hidden", "unit_shift", "init")
        },
        "features": Option(64, "size of the encoder's output (their z_dim)", minimum=2),
        "width": Option(64, "channels of the encoder's first convolution (theirs: 64)", minimum=1),
        "flip_threshold": Option(
            0.95, "hard-negative flipping: negatives more similar than this are relabelled", minimum=0.0
        ),
        "entropy_weight": Option(1.0, "weight of the entropy-based domination loss", minimum=0.0),
        "temperature": Option(
            1.0, "the cosine similarities are divided by it before the loss (theirs: 1, none)", minimum=1e-3
        ),
    }

    def recommended_settings(self, generator: GeneratorAdapter) -> dict[str, Any]:
        # the shift law of centroid-ortho, so that both are compared at the same magnitudes; DisCo's
        # own is 6 * N(0, 1) in every latent space
        return {
            "lr": 1e-4,  # theirs (Adam on navigator and encoder together)
            "eps_max": local_eps_max(generator),
            "num_directions": half_the_directions(generator, at_least=2),
        }

    def build_image_model(self, generator: GeneratorAdapter, settings: RunSettings) -> nn.Module:
        if settings.num_directions < 2:
            raise GanzooError("disco contrasts directions with each other: it needs --directions 2 or more")
        return DeltaContrastor(
            generator.image_channels, generator.image_size, self.hparams["features"], self.hparams["width"]
        )

    def objective(self, trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        G, A, E, s, K = trainer.G, trainer.A_step, trainer.R_step, trainer.s, trainer.K
        B, W, rng, device = s.batch_size, trainer.world, trainer.rng, trainer.device
        n = 4 * B  # per rank: B queries and B positives along the step's direction, 2B negatives
        target = torch.randint(0, K, (1,), generator=rng, device=device)  # () the step's direction
        z = trainer.local(G.sample_latents(n * W, rng), n)  # (n, D)
        others = (target + torch.randint(1, K, (2 * B * W,), generator=rng, device=device)) % K
        k_global = torch.cat([target.expand(W, 2 * B), others.view(W, 2 * B)], dim=1)  # (W, n)
        k = trainer.local(k_global.reshape(-1), n)  # (n,): [target] * 2B, then 2B other directions
        eps = trainer.local(sample_magnitudes((n * W,), s.eps_max, s.eps_min, rng, device), n)  # (n,)

        with torch.no_grad(), trainer.autocast():
            x0 = G.render(z)  # (n, C, H, W)
        x1 = trainer.render_pairs(z, A(k, eps))  # (n, C, H, W)
        with trainer.autocast():
            f = E(torch.cat([x0, x1])).float()  # (2n, F)
        v = F.normalize((f[n:] - f[:n]).abs(), dim=1)  # (n, F) the variations
        query, positive, negative = v[:B], v[B : 2 * B], v[2 * B :]
        cosine = torch.cat([query @ positive.t(), query @ negative.detach().t()], dim=1)  # (B, 3B)
        labels = torch.zeros_like(cosine)
        hard = cosine.detach() > self.hparams["flip_threshold"]
        labels[hard] = cosine.detach()[hard]  # hard-negative flipping: the similarity as soft label
        labels[:, :B] = 1.0
        contrast = F.binary_cross_entropy_with_logits(cosine / self.hparams["temperature"], labels)
        p = query.softmax(dim=1)
        entropy = -(p * (p + 1e-5).log()).sum(dim=1).mean()
        loss = contrast + self.hparams["entropy_weight"] * entropy
        retrieval = (cosine.detach().argmax(dim=1) < B).float().mean()  # nearest is a positive
        return loss, torch.stack([loss.detach(), contrast.detach(), entropy.detach(), retrieval])
