"""Editing images with directions (``zoo-dirs edit``): latents moved by several directions at once, the
before/after grid, each edited image, and a GIF of the edit swept in and out.

    from ganzoo_directions.editing import apply_edits, write_edit
    moved = apply_edits(dset, z, [("zoom", 2.0), (3, -1.5)])  # (N, D)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from . import defaults
from .directions import DirectionSet
from .files import atomic_write_bytes
from .interfaces import GeneratorAdapter
from .traversal import enlarge, grid_image, grid_png, image_png, sweep, write_animation

EDIT_TILE = 96  # the smallest tile of an edit's pictures (small generators are enlarged)


def apply_edits(
    dset: DirectionSet, latents: torch.Tensor, moves: Sequence[tuple[int | str, float]], scale: float = 1.0
) -> torch.Tensor:
    """``(N, D)`` latents moved by every ``(direction, eps)`` of ``moves`` in turn (directions by
    index or label), each eps multiplied by ``scale``."""
    shifted = latents.clone()
    for k, eps in moves:
        shifted = dset.apply(shifted, k, scale * eps)
    return shifted


@torch.no_grad()
def write_edit(
    out: str | os.PathLike,
    generator: GeneratorAdapter,
    dset: DirectionSet,
    latents: torch.Tensor,
    moves: Sequence[tuple[int, float]],
    *,
    gif: bool = False,
) -> list[Path]:
    """Render ``(N, D)`` latents before and after ``moves`` and write ``out`` (a PNG grid, original
    beside edited), ``OUT-i.png`` for each edited image and, with ``gif``, ``OUT.gif`` (the edit
    swept from 0 to full and back). Every file is written atomically. Returns the paths written."""
    out = Path(out)
    before = generator.render(latents)
    after = generator.render(apply_edits(dset, latents, moves))
    pairs = torch.stack(
        [enlarge(before, EDIT_TILE), enlarge(after, EDIT_TILE)], dim=1
    ).cpu()  # (N, 2, C, H, W)
    names = [f"#{i}" for i in range(len(latents))]
    atomic_write_bytes(out, grid_png(pairs, names, ["original", "edited"]))
    written = [out]
    for i, image in enumerate(after):
        written.append(out.with_name(f"{out.stem}-{i}.png"))
        atomic_write_bytes(written[-1], image_png(image))
    if gif:
        frames = []
        for scale in ((sweep(1.0, defaults.ANIMATION_FRAMES) + 1) / 2).tolist():  # 0 -> 1 -> 0
            images = enlarge(generator.render(apply_edits(dset, latents, moves, scale)), EDIT_TILE)
            frames.append(grid_image(images[None], [f"x{scale:.2f}"], names))  # (1, N, C, H, W)
        written.append(out.with_suffix(".gif"))
        write_animation(written[-1], frames, defaults.ANIMATION_FPS)
    return written


def latents_to_edit(
    generator: GeneratorAdapter, latents: str | os.PathLike | None, *, samples: int = 4, seed: int = 0
) -> torch.Tensor:
    """What ``zoo-dirs edit`` edits: the latents of a ``zoo-dirs project`` folder (or its
    latents.safetensors), checked to belong to ``generator``; without one, ``samples`` draws of
    ``seed``. ``(N, D)`` on the generator's device."""
    from .projection import check_latents_generator, load_latents

    if latents is None:
        return generator.sample_latents(samples, torch.Generator(generator.device).manual_seed(seed))
    z, spec = load_latents(latents)
    check_latents_generator(spec, z, generator, str(latents))
    return z.to(generator.device)
