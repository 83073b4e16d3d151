"""Projecting real images into a generator's latent space (``zoo-dirs project``), and the latents file.

The optimisation follows the StyleGAN2 projector (Karras et al. 2020, ``projector.py``): Adam on the
latent, a learning rate with a short warm-up and a cosine ramp-down, noise added to the latent early on
(decaying to zero) to escape poor basins, a perceptual + pixel loss. Where it differs, and why:

- the latent is the space the adapter exposes (``z``, or ``w`` for StyleGAN2), the space direction sets
  live in, so a projected latent takes ``dset.apply`` directly; W+ (one w per layer) would fit better
  but no direction set is defined on it;
- the generator's noise inputs stay fixed (our adapters render deterministically), so there is no noise
  to optimise and no noise regulariser; instead ``GeneratorAdapter.latent_prior_loss`` keeps the latent
  where the prior has mass (the StyleGAN2 adapter's is zero in W, as in the reference);
- for a z prior, each image starts from the best of ``restarts`` draws (small GANs have many basins),
  for StyleGAN2's W from the mean w (``GeneratorAdapter.projection_start``);
- the perceptual term is LPIPS (VGG) when its backbone weights are in the local torch cache; otherwise
  the loss is pixel MSE at four scales (1, 1/2, 1/4, 1/8), and the result says so.

Latents file (``latents.safetensors``, nothing pickled): tensor ``latents`` ``(N, D)`` float32;
metadata ``format`` = ``ganzoo-latents``, ``format_version`` = ``1``, ``spec`` JSON: ``generator``
(as in direction sets: name, options, weights, fingerprint, latent space and dim), ``images`` (per
image: ``source``, ``psnr``, ``distance``), ``history`` (mean loss every ``log_every`` steps),
``settings`` (steps, lr, loss, restarts, prior weight, seed).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import defaults
from .directions import generator_mismatches
from .errors import DirectionFileError, GanzooError
from .files import atomic_write_bytes, read_tagged, write_tagged
from .interfaces import GeneratorAdapter

LATENTS_FILE = "latents.safetensors"
LATENTS_FORMAT = "ganzoo-latents"
LATENTS_VERSION = 1
LOSSES = ("auto", "lpips", "pixel")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_IMAGE_PIXELS = 50_000_000  # a larger file is refused before it is decoded


@dataclass
class Projection:
    """What a projection found: ``latents`` ``(N, D)``, their ``renders`` ``(N, C, H, W)``, per image
    the pixel ``psnr`` (dB, images in [0, 1]) and final ``distance`` (the loss without the prior), the
    mean loss ``history``, and the ``loss`` actually used (``lpips`` or ``pixel``)."""

    latents: torch.Tensor  # (N, D)
    renders: torch.Tensor  # (N, C, H, W) in [-1, 1]
    psnr: list[float]
    distance: list[float]
    history: list[float]
    loss: str
    note: str = ""
    settings: dict[str, Any] = field(default_factory=dict)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(N,)`` PSNR in dB between image batches in [-1, 1] (computed on [0, 1])."""
    mse = ((a.float() - b.float()) / 2).square().flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1 / mse)


def multiscale_pixel_loss(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(N,)`` mean squared error at scales 1, 1/2, 1/4, 1/8 (as far as the size allows), summed."""
    total = x.new_zeros(len(x))
    for _ in range(4):
        total = total + (x - target).square().flatten(1).mean(1)
        if x.shape[-1] < 8:
            break
        x, target = F.avg_pool2d(x, 2), F.avg_pool2d(target, 2)
    return total


def perceptual_loss(kind: str, device: torch.device) -> tuple[Callable | None, str, str]:
    """``(lpips or None, the loss used, a note)`` for ``loss`` = auto / lpips / pixel."""
    if kind == "pixel":
        return None, "pixel", ""
    from .metrics import lpips_distance

    try:
        distance, _ = lpips_distance("vgg", str(device))
    except GanzooError as exc:
        if kind == "lpips":
            raise GanzooError(f"{exc}; or project with --loss pixel") from None
        return None, "pixel", "LPIPS-vgg weights are not in the torch cache: the multi-scale pixel loss"
    return distance, "lpips", ""


def project(
    generator: GeneratorAdapter,
    targets: torch.Tensor,
    *,
    steps: int = defaults.PROJECT_STEPS,
    lr: float = defaults.PROJECT_LR,
    loss: str = "auto",
    restarts: int = defaults.PROJECT_RESTARTS,
    prior_weight: float = defaults.PROJECT_PRIOR_WEIGHT,
    seed: int = defaults.SEED,
    log_every: int = 10,
    progress: Callable[[int, float], None] | None = None,
) -> Projection:
    """Find ``(N, D)`` latents whose renders match ``targets`` ``(N, C, H, W)`` in [-1, 1] at the
    generator's resolution (see the module docstring). ``progress(step, mean_loss)`` is called every
    ``log_every`` steps."""
    if loss not in LOSSES:
        raise GanzooError(f"unknown projection loss {loss!r}; valid: {', '.join(LOSSES)}")
    device = generator.device
    C, S = generator.image_channels, generator.image_size
    if targets.ndim != 4 or tuple(targets.shape[1:]) != (C, S, S):
        raise GanzooError(
            f"targets must be (N, {C}, {S}, {S}) for {generator.name!r}, got {tuple(targets.shape)}"
        )
    targets = targets.to(device).float()
    N = len(targets)
    lpips, used, note = perceptual_loss(loss, device)

    def distance(x: torch.Tensor) -> torch.Tensor:  # (N,)
        d = multiscale_pixel_loss(x, targets)
        if lpips is not None:
            d = d + lpips(x, targets).reshape(-1)
        return d

    rng = torch.Generator(device).manual_seed(seed)
    with torch.no_grad():  # the best of `restarts` starts per image
        starts = generator.projection_start(N * restarts, rng).view(restarts, N, -1)  # (R, N, D)
        scores = torch.stack([distance(generator.render(starts[r])) for r in range(restarts)])  # (R, N)
        latents = starts[scores.argmin(0), torch.arange(N, device=device)].clone()  # (N, D)
        # the prior's scale, for the noise; one start has no spread: then measure it on prior draws
        # (from a generator of their own, so the projection's own draws stay as they were)
        rows = starts.flatten(0, 1)  # (R * N, D)
        if len(rows) < 2:
            rows = generator.sample_latents(256, torch.Generator(device).manual_seed(seed + 1))
        spread = rows.std(0).mean().clamp_min(1e-3)
    latents.requires_grad_(True)
    optimizer = torch.optim.Adam([latents], lr=lr, betas=(0.9, 0.999))
    history: list[float] = []
    for step in range(steps):
        t = step / max(steps - 1, 1)
        # StyleGAN2's schedule: a cosine warm-up over the first 5%, a cosine ramp-down over the last 25%
        down = min(1.0, (1 - t) / 0.25)
        ramp = (0.5 - 0.5 * math.cos(math.pi * down)) * min(1.0, max(t / 0.05, 0.05))
        for group in optimizer.param_groups:
            group["lr"] = lr * ramp
        noise = 0.05 * spread * max(0.0, 1 - t / 0.75) ** 2  # StyleGAN2's decaying latent noise
        shaken = latents + noise * torch.randn(latents.shape, generator=rng, device=device)
        per_image = distance(generator.render(shaken)) + prior_weight * generator.latent_prior_loss(shaken)
        optimizer.zero_grad(set_to_none=True)
        per_image.sum().backward()
        optimizer.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            history.append(float(per_image.detach().mean()))
            if progress is not None:
                progress(step + 1, history[-1])
        if not math.isfinite(float(per_image.detach().sum())):
            raise GanzooError(f"projection diverged at step {step + 1} (try a smaller --lr)")
    latents = latents.detach()
    with torch.no_grad():
        renders = generator.render(latents)
        final = distance(renders)
    settings = {
        "steps": steps,
        "lr": lr,
        "loss": used,
        "restarts": restarts,
        "prior_weight": prior_weight,
        "seed": seed,
    }
    return Projection(
        latents, renders, psnr(renders, targets).tolist(), final.tolist(), history, used, note, settings
    )


# -- images in --------------------------------------------------------------------------------------
def image_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The image files named, folders expanded to the images in them (sorted); an empty result, a
    missing path or a folder with no image is an error naming it."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise GanzooError(f"{path}: no image files in this folder ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise GanzooError(f"{path}: no such file or folder")
    if not files:
        raise GanzooError("no images given")
    return files


def load_image(path: Path, size: int, channels: int = 3) -> torch.Tensor:
    """``(C, size, size)`` in [-1, 1]: the image centre-cropped to a square (the shorter side), resized
    with Lanczos; grayscale is repeated to RGB, alpha composited on white (or RGB made grayscale for a
    1-channel generator)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise GanzooError(
                    f"{path}: {image.width} x {image.height} pixels is too large (at most "
                    f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels); downscale it first"
                )
            image.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced size when it can
            if image.mode in ("RGBA", "LA", "P"):
                image = image.convert("RGBA")
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image)
            image = image.convert("L" if channels == 1 else "RGB")
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
            import numpy as np

            pixels = torch.from_numpy(np.array(image, dtype=np.float32))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise GanzooError(f"{path}: not a readable image ({exc})") from None
    pixels = pixels[None] if pixels.ndim == 2 else pixels.permute(2, 0, 1)
    return pixels / 127.5 - 1


# -- the latents file -------------------------------------------------------------------------------
def load_targets(files: Sequence[Path], generator: GeneratorAdapter) -> torch.Tensor:
    """``files`` as the images to project into ``generator`` (:func:`load_image`): ``(N, C, H, W)`` on
    its device. A generator that cannot be inverted (no ``projection_start``) is refused first."""
    generator.projection_start(1, torch.Generator(generator.device))
    size, channels = generator.image_size, generator.image_channels
    return torch.stack([load_image(f, size, channels) for f in files]).to(generator.device)


def save_latents(path: str | os.PathLike, latents: torch.Tensor, spec: dict[str, Any]) -> Path:
    """Write ``(N, D)`` latents and their ``spec`` (module docstring) to ``path`` atomically."""
    path = Path(path)
    if path.is_dir():
        path = path / LATENTS_FILE
    write_tagged(
        path, {"latents": latents.detach().float().cpu().contiguous()}, LATENTS_FORMAT, LATENTS_VERSION, spec
    )
    return path


def load_latents(path: str | os.PathLike) -> tuple[torch.Tensor, dict[str, Any]]:
    """``(latents (N, D), spec)`` of a latents file (or a folder holding ``latents.safetensors``)."""
    path = Path(path)
    if path.is_dir():
        path = path / LATENTS_FILE
    if not path.is_file():
        raise DirectionFileError(f"{path}: no such latents file (zoo-dirs project writes one)")
    tensors, spec = read_tagged(path, LATENTS_FORMAT, LATENTS_VERSION, what="latents file")
    latents = tensors.get("latents")
    if (
        latents is None
        or latents.ndim != 2
        or not latents.is_floating_point()
        or not bool(torch.isfinite(latents).all())
    ):
        raise DirectionFileError(f"{path}: 'latents' must be a finite (N, D) float tensor")
    return latents, spec


def check_latents_generator(
    spec: dict[str, Any], latents: torch.Tensor, generator: GeneratorAdapter, where: str
) -> None:
    """Refuse latents projected for another generator (name, latent space and dim, weights)."""
    problems = generator_mismatches(spec.get("generator", {}), generator)
    if latents.shape[1] != generator.latent_dim:
        problems.append(f"latent dimension {latents.shape[1]} (this is {generator.latent_dim})")
    if problems:
        raise DirectionFileError(f"{where}: latents were projected for " + ", ".join(problems))


PICTURE_FILE = "projection.png"  # each row: target | render


def write_projection(
    out: str | os.PathLike,
    generator: GeneratorAdapter,
    sources: Sequence[Path],
    targets: torch.Tensor,
    result: Projection,
) -> tuple[Path, Path]:
    """Write a projection's outputs into the folder ``out`` (created): ``latents.safetensors`` (the
    latents, the generator they belong to, each image's source, PSNR and distance, the loss history
    and the settings; what ``zoo-dirs edit --latents`` reads) and ``projection.png`` (each row the
    ``(N, C, H, W)`` target beside its render). Both atomically. Returns their paths."""
    from .traversal import enlarge, grid_png

    out = Path(out)
    spec = {
        "generator": generator.describe(),
        "images": [
            {"source": str(f), "psnr": p, "distance": d}
            for f, p, d in zip(sources, result.psnr, result.distance, strict=True)
        ],
        "history": result.history,
        "settings": result.settings,
    }
    out.mkdir(parents=True, exist_ok=True)
    save_latents(out / LATENTS_FILE, result.latents, spec)
    pairs = torch.stack(
        [enlarge(targets, 96).cpu(), enlarge(result.renders, 96).cpu()], dim=1
    )  # (N, 2, C, H, W)
    picture = out / PICTURE_FILE
    atomic_write_bytes(picture, grid_png(pairs, [f.name[:12] for f in sources], ["target", "render"]))
    return out / LATENTS_FILE, picture
