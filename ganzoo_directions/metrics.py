"""Metrics on direction sets. Pure functions of their inputs (and an explicit seed)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import defaults
from .deformators import sample_magnitudes
from .errors import GanzooError
from .interfaces import GeneratorAdapter

ShiftFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (k (B,), eps (B,)) -> (B, D)


@torch.no_grad()
def pieces(size: int | None, *tensors: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """The rows of ``tensors`` (equal first dimensions) in consecutive pieces of at most ``size``
    (``None``: one piece): how a draw is rendered within a memory budget."""
    n = len(tensors[0])
    step = n if size is None or size <= 0 else size
    return [tuple(t[i : i + step] for t in tensors) for i in range(0, n, step)]


def reconstructor_accuracy(
    generator: GeneratorAdapter,
    shift: ShiftFn,
    reconstructor: nn.Module,
    num_directions: int,
    *,
    pairs: int = 2000,
    batch_size: int = 64,
    eps_max: float = defaults.EPS_MAX,
    eps_min: float = defaults.EPS_MIN,
    seed: int = 1234,
    per_direction: bool = False,
    render_batch: int | None = None,
) -> float | tuple[float, torch.Tensor]:
    """RCA: how often R recovers k from fresh pairs (G(z), G(z + A(k, eps))).

    Pairs follow the training shift law (k uniform, eps ~ U[-eps_max, eps_max] with |eps| >= eps_min),
    drawn from a generator seeded with ``seed``, so two calls agree. R runs in eval mode. Chance level
    is ``1 / num_directions``. With ``per_direction``: ``(rca, per)``, ``per`` the ``(K,)`` accuracy on
    each direction's pairs (0 for a direction that drew no pair). Pairs are drawn ``batch_size`` at a
    time (the seed's stream) and rendered ``render_batch`` at a time (default: all of a draw): a run
    that trained at batch 2 at 1024 px measures with the same pairs in pieces that fit its memory.
    """

    device = generator.device
    rng = torch.Generator(device).manual_seed(seed)
    was_training = reconstructor.training
    reconstructor.eval()
    correct = torch.zeros(num_directions)
    drawn = torch.zeros(num_directions)
    seen = 0
    while seen < pairs:
        b = min(batch_size, pairs - seen)
        z = generator.sample_latents(b, rng)  # (b, D)
        k = torch.randint(0, num_directions, (b,), generator=rng, device=device)
        eps = sample_magnitudes((b,), eps_max, eps_min, rng, device)
        hits = torch.cat(
            [
                (
                    reconstructor(generator.render(zp), generator.render_shifted(zp, shift(kp, ep)))[
                        0
                    ].argmax(1)
                    == kp
                )
                .float()
                .cpu()
                for zp, kp, ep in pieces(render_batch, z, k, eps)
            ]
        )
        correct.index_add_(0, k.cpu(), hits)
        drawn.index_add_(0, k.cpu(), torch.ones(b))
        seen += b
    reconstructor.train(was_training)
    rca = float(correct.sum()) / seen
    return (rca, correct / drawn.clamp_min(1)) if per_direction else rca


def alignment_matrix(directions: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``(K, F)`` absolute cosines between ``(K, D)`` directions and ``(F, D)`` reference directions."""
    return (F.normalize(directions.float(), dim=1) @ F.normalize(reference.float(), dim=1).t()).abs()


def factor_alignment(directions: torch.Tensor, true_directions: torch.Tensor) -> dict[str, float]:
    """How well directions match known factor directions (sign ignored).

    ``factor_recall``: mean over true factors of the best |cos| any direction reaches (1 = every
    factor has a direction exactly along it). ``direction_precision``: mean over directions of their
    best |cos| with a factor (1 = every direction is a pure factor).
    """
    cos = alignment_matrix(directions, true_directions)  # (K, F)
    return {
        "factor_recall": cos.max(dim=0).values.mean().item(),
        "direction_precision": cos.max(dim=1).values.mean().item(),
    }


def random_directions(num: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``(num, dim)`` random orthonormal directions (for num <= dim), the control every method must beat."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, max(num, dim), generator=gen))
    return q.t()[:num] if num <= dim else F.normalize(torch.randn(num, dim, generator=gen), dim=1)


Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (n, C, H, W) x 2 -> (n,)


def trimmed_mean(values: torch.Tensor, trim: float = 0.01) -> float:
    """Mean after dropping the lowest and highest ``trim`` fraction (StyleGAN's PPL convention)."""
    values = values.flatten().sort().values
    cut = int(len(values) * trim)
    kept = values[cut : len(values) - cut] if len(values) > 2 * cut else values
    return kept.mean().item()


@torch.no_grad()
def ppl_view(images: torch.Tensor, crop: bool = False, size: int = defaults.PPL_SIZE) -> torch.Tensor:
    """``(B, C, H, W)`` images as StyleGAN's PPL measures them: with ``crop`` the central face region
    of FFHQ-like images (rows 3/8..7/8, columns 2/8..6/8 of the side), then an integer area downsample
    to at most ``size`` pixels (a 1024 px pair becomes 256 px: LPIPS at the published scale and a
    sixteenth of the memory)."""
    if crop:
        c = images.shape[-2] // 8
        images = images[..., c * 3 : c * 7, c * 2 : c * 6]
    factor = images.shape[-1] // size
    if factor > 1:
        images = F.avg_pool2d(images, kernel_size=factor)
    return images


def path_length(
    generator: GeneratorAdapter,
    shift: ShiftFn,
    num_directions: int,
    distance: Distance,
    *,
    samples: int = 10_000,
    delta: float = 1e-4,
    eps_max: float = defaults.EPS_MAX,
    batch_size: int = 64,
    seed: int = 1234,
    progress: Callable[[int], None] | None = None,
    render_batch: int | None = None,
    crop: bool = False,
) -> dict[str, float]:
    """Perceptual path length along directions (the paper's section 4.1, after StyleGAN's PPL).

    For z from the prior, k uniform and t ~ U[-eps_max, eps_max - delta]:
    ``d = distance(G(z + A(k, t)), G(z + A(k, t + delta)))``. Reported as trimmed means (1% each side):
    ``ppl`` = d / delta^2 (per unit of eps) and ``ppl_latent`` = d / |A(k, t + delta) - A(k, t)|^2 (per
    unit of latent distance). They coincide for unit-norm linear deformators. Draws come ``batch_size``
    at a time, renders ``render_batch`` at a time (as :func:`reconstructor_accuracy`). The images are
    prepared as StyleGAN's PPL does before the distance (:func:`ppl_view`: the face crop with
    ``crop``, then an area downsample to at most 256 px).
    """
    device = generator.device
    rng = torch.Generator(device).manual_seed(seed)
    per_eps, per_latent, done = [], [], 0
    while done < samples:
        b = min(batch_size, samples - done)
        z = generator.sample_latents(b, rng)
        k = torch.randint(0, num_directions, (b,), generator=rng, device=device)
        t = (torch.rand(b, generator=rng, device=device) * 2 - 1) * eps_max
        t = t.clamp(max=eps_max - delta)
        for zp, kp, tp in pieces(render_batch, z, k, t):
            s0, s1 = shift(kp, tp), shift(kp, tp + delta)
            before, after = generator.render_shifted(zp, s0), generator.render_shifted(zp, s1)
            d = distance(ppl_view(before, crop), ppl_view(after, crop)).float()
            per_eps.append(d / delta**2)
            per_latent.append(d / (s1 - s0).square().sum(1).clamp_min(1e-20))
        done += b
        if progress is not None:
            progress(b)
    return {
        "ppl": trimmed_mean(torch.cat(per_eps)),
        "ppl_latent": trimmed_mean(torch.cat(per_latent)),
        "ppl_samples": samples,
        "ppl_delta": delta,
    }


#: torchvision's ImageNet weights of each LPIPS backbone, as the torch hub cache names them
BACKBONE_FILES = {
    "vgg": "vgg16-397923af.pth",
    "alex": "alexnet-owt-7be5be79.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}


def lpips_distance(net: str, device: str) -> tuple[Distance, str]:
    """An LPIPS distance function and its label. The backbone's ImageNet weights must be in the torch
    hub cache (they cannot be downloaded here); a missing file is one actionable error."""
    if net == "pixel":
        return pixel_distance, "pixel MSE (offline check; not comparable to published PPL)"
    import lpips

    random_backbone = net == "vgg-random"
    backbone = "vgg" if random_backbone else net
    if not random_backbone:
        checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
        needed = checkpoints / BACKBONE_FILES[backbone]
        if not needed.is_file():
            raise GanzooError(
                f"LPIPS-{backbone} needs torchvision's ImageNet weights at {needed} (they cannot be "
                f"downloaded here): copy {BACKBONE_FILES[backbone]} from "
                f"https://download.pytorch.org/models/ into {checkpoints} (or set TORCH_HOME), or use "
                "--ppl-net pixel for an offline, "
                "non-comparable check"
            )
    with warnings.catch_warnings():  # torchvision's 'pretrained' deprecation, raised inside lpips
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=backbone, pretrained=True, pnet_rand=random_backbone, verbose=False)
    model = model.to(device).eval()

    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return model(a, b).flatten()

    label = f"LPIPS-{backbone}" + (" with a RANDOM backbone (wiring test only)" if random_backbone else "")
    return distance, label


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared pixel difference per image: an offline stand-in for LPIPS (not comparable)."""
    return (a - b).square().flatten(1).mean(1)


def dci_scores(effects: torch.Tensor) -> dict[str, float]:
    """DCI-style scores of a ``(K, F)`` non-negative effect matrix (direction k changes factor f by E[k, f]).

    ``disentanglement``: sum_k w_k (1 - H(p_k) / log F), p_k = E[k] / sum E[k], w_k = E[k].sum() / E.sum()
    (1 = every direction changes one factor only). ``completeness``: the same over factors with the
    matrix transposed (1 = every factor is changed by one direction only). ``coverage``: the fraction
    of factors that are the largest effect of at least one direction whose weight is at least half the
    average.
    """
    E = effects.clamp_min(0).double()
    K, Fn = E.shape
    total = E.sum()
    if total <= 0:
        return {"disentanglement": 0.0, "completeness": 0.0, "coverage": 0.0}

    def score(M: torch.Tensor, n_out: int) -> float:
        rows = M.sum(1)
        p = M / rows.clamp_min(1e-12)[:, None]
        entropy = (
            -(p * p.clamp_min(1e-12).log()).sum(1) / math.log(n_out) if n_out > 1 else torch.zeros(len(M))
        )
        return float(((rows / total) * (1 - entropy)).sum())

    weights = E.sum(1) / total
    strong = weights >= 0.5 / K
    reached = {int(E[k].argmax()) for k in range(K) if strong[k]}
    return {"disentanglement": score(E, Fn), "completeness": score(E.t(), K), "coverage": len(reached) / Fn}
