"""Traversal pictures: images along directions, laid out as in the paper's Fig. 4."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import torch

from . import defaults
from .directions import DirectionSet
from .errors import GanzooError
from .files import atomic_write_bytes
from .interfaces import GeneratorAdapter

LAYOUTS = ("directions", "consecutive")


@torch.no_grad()
def traversal_images(
    generator: GeneratorAdapter,
    dset: DirectionSet,
    latents: torch.Tensor,
    directions: Sequence[int],
    magnitudes: torch.Tensor,
    layout: str = "directions",
) -> tuple[torch.Tensor, list[str], list[str]]:
    """Render a traversal; returns images ``(rows, cols, C, H, W)`` in [-1, 1] and row/column labels.

    ``directions`` layout: for each direction k and each of the ``(N, D)`` latents, one row
    ``G(z + A(k, t))`` for t in ``magnitudes``.
    ``consecutive`` layout (two directions k1, k2): for each latent one row that first moves along k1
    over the non-negative magnitudes, then from there along k2: ``G(z + A(k1, T) + A(k2, t))``.
    """
    rows, row_labels = [], []
    if layout == "directions":
        for k in directions:
            for i, z in enumerate(latents):
                base = z.expand(len(magnitudes), -1)  # (M, D)
                rows.append(generator.render_shifted(base, dset.shift(k, magnitudes)))
                row_labels.append(f"k={k}" + (f" #{i}" if len(latents) > 1 else ""))
        col_labels = [f"{t:+.1f}" for t in magnitudes.tolist()]
    elif layout == "consecutive":
        if len(directions) != 2:
            raise GanzooError("the consecutive layout takes exactly two directions (k1, k2)")
        k1, k2 = directions
        steps = magnitudes[magnitudes >= 0]
        for i, z in enumerate(latents):
            first = dset.shift(k1, steps)  # (M, D): A(k1, t)
            second = first[-1:] + dset.shift(k2, steps[1:])  # (M - 1, D): A(k1, T) + A(k2, t)
            shifts = torch.cat([first, second])
            rows.append(generator.render_shifted(z.expand(len(shifts), -1), shifts))
            row_labels.append(f"#{i}")
        col_labels = [f"k{k1} {t:+.1f}" for t in steps.tolist()]
        col_labels += [f"k{k2} {t:+.1f}" for t in steps[1:].tolist()]
    else:
        raise GanzooError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    return torch.stack(rows), row_labels, col_labels


def grid_png(images: torch.Tensor, row_labels: Sequence[str], col_labels: Sequence[str]) -> bytes:
    """``(R, C, 3, H, W)`` images in [-1, 1] -> PNG bytes of a labelled grid."""
    from PIL import Image, ImageDraw

    R, C, _, H, W = images.shape
    pad, left, top = 2, 44, 14
    canvas = Image.new("RGB", (left + C * (W + pad) + pad, top + R * (H + pad) + pad), "white")
    pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    for r in range(R):
        for c in range(C):
            tile = Image.fromarray(pixels[r, c].permute(1, 2, 0).numpy())
            canvas.paste(tile, (left + pad + c * (W + pad), top + pad + r * (H + pad)))
    draw = ImageDraw.Draw(canvas)
    for r, label in enumerate(row_labels):
        draw.text((2, top + pad + r * (H + pad) + H // 2 - 5), label, fill="black")
    for c, label in enumerate(col_labels):
        draw.text((left + pad + c * (W + pad) + 2, 1), label[: max(W // 6, 4)], fill="black")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def save_traversal(
    path: str | os.PathLike,
    generator: GeneratorAdapter,
    dset: DirectionSet,
    *,
    directions: Sequence[int] | None = None,
    samples: int = 1,
    magnitude_range: float = defaults.EPS_MAX,
    steps: int = 7,
    layout: str = "directions",
    seed: int = 0,
) -> None:
    """Render a traversal of ``dset`` and write it to ``path`` as a PNG (atomically). Without
    ``directions``: the first 16 of the set's ranking (strongest first), or of its order."""
    if directions is None:
        directions = dset.ranked()[:16]
    bad = [k for k in directions if not 0 <= k < dset.num_directions]
    if bad:
        raise GanzooError(f"directions {bad} out of range 0..{dset.num_directions - 1}")
    rng = torch.Generator(generator.device).manual_seed(seed)
    latents = generator.sample_latents(samples, rng)
    magnitudes = torch.linspace(-magnitude_range, magnitude_range, steps, device=generator.device)
    images, rows, cols = traversal_images(generator, dset, latents, directions, magnitudes, layout)
    atomic_write_bytes(path, grid_png(images, rows, cols))
