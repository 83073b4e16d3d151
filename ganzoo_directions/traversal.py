"""Traversal pictures: images along directions, laid out as in the paper's Fig. 4, and looping
GIF / MP4 animations of them."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from . import defaults
from .directions import DirectionSet
from .errors import GanzooError
from .files import atomic_write_bytes
from .interfaces import GeneratorAdapter

if TYPE_CHECKING:
    from PIL import Image

LAYOUTS = ("directions", "consecutive")
ANIMATIONS = (".gif", ".mp4")  # what `traverse --out` animates, by extension


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
                row_labels.append(dset.title(k) + (f" #{i}" if len(latents) > 1 else ""))
        col_labels = [signed(t) for t in magnitudes.tolist()]
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
        col_labels = [f"k{k1} {signed(t)}" for t in steps.tolist()]
        col_labels += [f"k{k2} {signed(t)}" for t in steps[1:].tolist()]
    else:
        raise GanzooError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    return torch.stack(rows), row_labels, col_labels


def signed(t: float) -> str:
    """A magnitude as a column label: ``+1.5``, ``-3.0``, and ``+0.0`` (never ``-0.0``)."""
    return f"{round(t, 1) + 0.0:+.1f}"


@torch.no_grad()
def direction_ranges(
    generator: GeneratorAdapter,
    dset: DirectionSet,
    sigmas: float = defaults.RANGE_SIGMAS,
    samples: int = 512,
) -> torch.Tensor:
    """``(K,)`` how far each direction of ``dset`` may be moved on ``generator``: the set's recorded
    range (:attr:`DirectionSet.eps_range`), shortened where a shift that long would move a latent
    more than ``sigmas`` standard deviations of the generator's latents along that direction
    (:meth:`GeneratorAdapter.shift_scale_latents`, around their mean). A set made with a range
    longer than its generator's latents (a SeFa set's ±6 on a 16-dim z of norm 4) then stops where
    the images are still images."""
    recorded = dset.eps_range
    draws = generator.shift_scale_latents(samples, torch.Generator(generator.device).manual_seed(0))
    centred = (draws - draws.mean(dim=0)).float()  # (N, D)
    K = dset.num_directions
    ends = dset.shift(torch.arange(K, device=dset.directions.device), recorded).to(centred)  # (K, D)
    per_unit = ends.norm(dim=1).clamp_min(1e-12) / max(recorded, 1e-12)  # (K,) latent length per eps
    spread = (centred @ (ends / ends.norm(dim=1, keepdim=True).clamp_min(1e-12)).T).std(dim=0)  # (K,)
    return torch.clamp(sigmas * spread / per_unit, max=recorded).cpu()


def enlarge(images: torch.Tensor, min_tile: int) -> torch.Tensor:
    """``(B, C, H, W)`` enlarged by an integer factor (nearest neighbour) to at least ``min_tile``
    pixels, so small generators' images stay visible; larger ones are returned as they are."""
    if images.shape[-1] >= min_tile:
        return images
    return F.interpolate(images.float(), scale_factor=-(-min_tile // images.shape[-1]))


def shrink(images: torch.Tensor, max_tile: int) -> torch.Tensor:
    """``(..., C, H, W)`` downsampled (anti-aliased) so that a side is at most ``max_tile`` pixels;
    smaller images, and ``max_tile`` 0, leave them as they are."""
    if max_tile <= 0 or images.shape[-1] <= max_tile:
        return images
    lead, (C, H, W) = images.shape[:-3], images.shape[-3:]
    size = (max(1, round(H * max_tile / W)), max_tile)
    flat = F.interpolate(images.reshape(-1, C, H, W).float(), size=size, mode="bilinear", antialias=True)
    return flat.reshape(*lead, C, *size)


def image_png(image: torch.Tensor) -> bytes:
    """One ``(C, H, W)`` image in [-1, 1] -> PNG bytes (1 channel: grayscale)."""
    from PIL import Image

    pixels = ((image.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    array = pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def grid_png(images: torch.Tensor, row_labels: Sequence[str], col_labels: Sequence[str]) -> bytes:
    """``(R, C, 3, H, W)`` images in [-1, 1] -> PNG bytes of a labelled grid."""
    buffer = io.BytesIO()
    grid_image(images, row_labels, col_labels).save(buffer, format="PNG")
    return buffer.getvalue()


def grid_image(images: torch.Tensor, row_labels: Sequence[str], col_labels: Sequence[str]) -> Image.Image:
    """``(R, C, 3 or 1, H, W)`` images in [-1, 1] -> a labelled grid (a PIL image; gray as RGB)."""
    from PIL import Image, ImageDraw

    if images.shape[2] == 1:
        images = images.expand(-1, -1, 3, -1, -1)

    R, C, _, H, W = images.shape
    pad, top = 2, 14
    left = max(44, 6 * max((len(label) for label in row_labels), default=0) + 6)  # PIL's font: ~6 px a glyph
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
    return canvas


def sweep(magnitude_range: float, frames: int) -> torch.Tensor:
    """``(frames,)`` magnitudes of a looping sweep: -range -> +range -> back, the last frame next to
    the first (a triangle wave: the loop has no jump)."""
    phase = torch.arange(frames, dtype=torch.float64) / frames  # [0, 1)
    return (magnitude_range * (1 - 4 * (phase - 0.5).abs())).float()  # -r at 0, +r at 1/2


@torch.no_grad()
def animation_frames(
    generator: GeneratorAdapter,
    dset: DirectionSet,
    latents: torch.Tensor,
    directions: Sequence[int],
    magnitudes: torch.Tensor,
    min_tile: int = defaults.TRAVERSE_MIN_TILE,
    max_tile: int = defaults.TRAVERSE_TILE,
) -> list[Image.Image]:
    """One labelled grid per magnitude: rows are the ``(N, D)`` latents, columns the directions
    (titled with their labels), every tile ``G(z + A(k, t))``; tiles are enlarged (nearest
    neighbour) to at least ``min_tile`` pixels so small generators stay visible."""
    N, K = len(latents), len(directions)
    frames = []
    for t in magnitudes.tolist():
        shifts = torch.cat([dset.shift(k, t, n=N) for k in directions])  # (K*N, D), direction-major
        rendered = generator.render_shifted(latents.repeat(K, 1), shifts)
        images = shrink(enlarge(rendered, min_tile), max_tile)  # (K*N, C, H', W')
        grid = images.view(K, N, *images.shape[1:]).transpose(0, 1)  # (N, K, C, H', W')
        rows = [signed(t)] + [""] * (N - 1)  # the current eps, once
        frames.append(grid_image(grid, rows, [dset.title(k) for k in directions]))
    return frames


def write_animation(path: str | os.PathLike, frames: Sequence[Image.Image], fps: float) -> None:
    """Write ``frames`` as a looping GIF or an MP4 (by ``path``'s extension), atomically. MP4 needs
    imageio-ffmpeg (``pip install "ganzoo-directions[mp4]"``)."""
    import imageio.v3 as iio
    import numpy as np

    path = Path(path)
    stack = np.stack([np.asarray(frame.convert("RGB")) for frame in frames])  # (F, H, W, 3) uint8
    suffix = path.suffix.lower()
    if suffix == ".gif":
        data = iio.imwrite("<bytes>", stack, extension=".gif", duration=1000 / fps, loop=0)
    elif suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise GanzooError(
                'writing MP4 needs imageio-ffmpeg: pip install "ganzoo-directions[mp4]" (or write a .gif)'
            ) from None
        stack = np.pad(stack, ((0, 0), (0, -stack.shape[1] % 16), (0, -stack.shape[2] % 16), (0, 0)))
        with tempfile.TemporaryDirectory() as tmp:  # ffmpeg writes to a named file
            scratch = Path(tmp) / "traversal.mp4"
            iio.imwrite(scratch, stack, plugin="FFMPEG", fps=fps, macro_block_size=16)
            data = scratch.read_bytes()
    else:
        raise GanzooError(f"{path}: an animation is a .gif or an .mp4, not {suffix or 'no extension'}")
    atomic_write_bytes(path, data)


def check_traversal(
    path: str | os.PathLike,
    dset: DirectionSet,
    *,
    directions: Sequence[int] | None = None,
    samples: int = 1,
    steps: int = defaults.TRAVERSE_STEPS,
    layout: str = "directions",
    frames: int = defaults.ANIMATION_FRAMES,
) -> list[int]:
    """The directions a traversal of ``dset`` to ``path`` draws (without ``directions``: the first 16
    of its ranking, 8 for an animation), or a :class:`GanzooError` saying what to change: a
    consecutive layout animated or without exactly two directions, an index out of range, more than
    :data:`~ganzoo_directions.defaults.MAX_TRAVERSE_IMAGES` renders. Cheap: call it before building
    the generator."""
    animated = Path(path).suffix.lower() in ANIMATIONS
    if layout == "consecutive" and animated:
        raise GanzooError("the consecutive layout is a PNG grid; animate with the default layout")
    if layout == "consecutive" and (directions is None or len(directions) != 2):
        raise GanzooError("the consecutive layout needs two directions, e.g. --directions 0,3")
    if directions is None:
        directions = dset.ranked()[: 8 if animated else 16]
    bad = [k for k in directions if not 0 <= k < dset.num_directions]
    if bad:
        raise GanzooError(f"directions {bad} out of range 0..{dset.num_directions - 1}")
    per_sample = frames if animated else steps  # renders per (direction, sample)
    if len(directions) * samples * per_sample > defaults.MAX_TRAVERSE_IMAGES:
        count = "--frames" if animated else "--steps"
        raise GanzooError(
            f"{len(directions)} directions x --samples {samples} x {count} {per_sample} asks for "
            f"{len(directions) * samples * per_sample:,} images, at most {defaults.MAX_TRAVERSE_IMAGES:,}: "
            f"lower --samples or {count}, or choose fewer --directions"
        )
    return list(directions)


def save_traversal(
    path: str | os.PathLike,
    generator: GeneratorAdapter,
    dset: DirectionSet,
    *,
    directions: Sequence[int] | None = None,
    samples: int = 1,
    magnitude_range: float = defaults.EPS_MAX,
    steps: int = defaults.TRAVERSE_STEPS,
    layout: str = "directions",
    seed: int = 0,
    frames: int = defaults.ANIMATION_FRAMES,
    fps: float = defaults.ANIMATION_FPS,
    max_tile: int = defaults.TRAVERSE_TILE,
) -> None:
    """Render a traversal of ``dset`` and write it to ``path`` (atomically): a PNG grid, or for a
    ``.gif`` / ``.mp4`` path a looping animation of ``frames`` frames (every direction side by side,
    eps sweeping -range -> +range -> -range). Without ``directions``: the first 16 of the set's
    ranking (strongest first), or of its order (8 for an animation). Tiles larger than ``max_tile``
    pixels are downsampled (anti-aliased); 0 keeps the generator's full size. Tiles smaller than
    :data:`~ganzoo_directions.defaults.TRAVERSE_MIN_TILE` are enlarged (nearest neighbour), so a
    small generator's picture stays readable."""
    animated = Path(path).suffix.lower() in ANIMATIONS
    shape = {"samples": samples, "steps": steps, "layout": layout, "frames": frames}
    directions = check_traversal(path, dset, directions=directions, **shape)
    rng = torch.Generator(generator.device).manual_seed(seed)
    latents = generator.sample_latents(samples, rng)
    if animated:
        magnitudes = sweep(magnitude_range, frames).to(generator.device)
        grids = animation_frames(generator, dset, latents, directions, magnitudes, max_tile=max_tile)
        write_animation(path, grids, fps)
        return
    magnitudes = torch.linspace(-magnitude_range, magnitude_range, steps, device=generator.device)
    images, rows, cols = traversal_images(generator, dset, latents, directions, magnitudes, layout)
    R, C = images.shape[:2]
    tiles = shrink(enlarge(images.flatten(0, 1), defaults.TRAVERSE_MIN_TILE), max_tile)  # (R*C, 3, H', W')
    atomic_write_bytes(path, grid_png(tiles.unflatten(0, (R, C)), rows, cols))
