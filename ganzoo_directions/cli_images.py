"""The commands that project real images into a generator's latent space and edit images with
directions (registered on the ``zoo-dirs`` group by :mod:`.cli`)."""

from __future__ import annotations

from pathlib import Path

import click

from . import defaults
from .cli_options import (
    SEED,
    FiniteFloatRange,
    PluginName,
    allow_mismatch_option,
    device_option,
    gen_options_option,
    parse_edits,
    set_weights_option,
    weights_option,
)
from .errors import GanzooError


@click.command()
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option(
    "--gen",
    "gen_name",
    type=PluginName("generator"),
    default=defaults.GENERATOR,
    show_default=True,
    help="Generator to invert (see `zoo-dirs list`).",
)
@weights_option
@gen_options_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for latents.safetensors and projection.png (new, or empty).",
)
@click.option(
    "--steps",
    type=click.IntRange(1, 100_000),
    default=defaults.PROJECT_STEPS,
    show_default=True,
    help="Adam steps.",
)
@click.option(
    "--lr",
    type=FiniteFloatRange(min=0, min_open=True),
    default=defaults.PROJECT_LR,
    show_default=True,
    help="Peak learning rate (warm-up, cosine ramp-down).",
)
@click.option(
    "--loss",
    type=click.Choice(["auto", "lpips", "pixel"]),
    default="auto",
    show_default=True,
    help="auto: LPIPS-vgg + pixel when the VGG weights are in the torch cache, else multi-scale pixel.",
)
@click.option(
    "--restarts",
    type=click.IntRange(1, 256),
    default=defaults.PROJECT_RESTARTS,
    show_default=True,
    help="z priors: start each image from the best of this many draws.",
)
@click.option("--seed", type=SEED, default=defaults.SEED, show_default=True, help="Seed.")
@device_option
def project(
    images: tuple[str, ...],
    gen_name: str,
    weights: str | None,
    gen_options: dict[str, str],
    out: Path,
    steps: int,
    lr: float,
    loss: str,
    restarts: int,
    seed: int,
    device: str,
) -> None:
    """Find the latents of your own images (files, or folders of them): the generator's renders of
    them should look like the images. Writes OUT/latents.safetensors (for `zoo-dirs edit`) and
    OUT/projection.png (each row: target | reconstruction).

    Images are centre-cropped to a square and resized to the generator's resolution (Lanczos);
    grayscale becomes RGB, transparency is composited on white (docs/editing.md).
    """
    from rich.console import Console

    from .progress import TaskBars
    from .projection import image_files, load_targets, write_projection
    from .projection import project as run_projection
    from .runs import build_generator, pick_device, quote

    files = image_files(images)
    if out.exists() and any(out.iterdir()):
        raise GanzooError(f"{out} already holds files; choose a new or empty --out folder")
    device = pick_device(device)
    generator = build_generator(gen_name, weights=weights, options=gen_options, device=device)
    targets = load_targets(files, generator)  # (N, C, H, W); refuses a generator that cannot invert
    console = Console(stderr=True)
    console.print(
        f"[bold]zoo-dirs project[/]: {len(files)} image(s) into {gen_name}'s {generator.latent_space}, "
        f"{generator.image_size} px, device {device}"
    )
    with TaskBars(console) as bars:
        advance = bars("projecting", steps)
        last = [0]

        def progress(step: int, mean_loss: float) -> None:
            advance(step - last[0])
            last[0] = step

        result = run_projection(
            generator, targets, steps=steps, lr=lr, loss=loss, restarts=restarts, seed=seed, progress=progress
        )
    if result.note:
        console.print(f"note: {result.note}")
    latents_file, _ = write_projection(out, generator, files, targets, result)
    mean_psnr = sum(result.psnr) / len(result.psnr)
    click.echo(
        f"{len(files)} latent(s) in {latents_file}; PSNR {mean_psnr:.1f} dB (mean), loss {result.loss}"
    )
    click.echo(f"next: zoo-dirs edit DIRECTIONS --latents {quote(out)} --apply 0=2 --out edited.png")


@click.command()
@click.argument("source")
@click.option(
    "--apply",
    "edits",
    required=True,
    callback=parse_edits,
    help='Directions (labels or indices) and amounts, applied together, e.g. "zoom=2,3=-1.5".',
)
@click.option(
    "--latents",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="A `zoo-dirs project` folder (or its latents.safetensors). [default: --samples draws of --seed]",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the samples.")
@click.option(
    "--samples", type=click.IntRange(1, 64), default=4, show_default=True, help="Samples without --latents."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Grid PNG (rows: original | edited); each edited image is also written as OUT-N.png.",
)
@click.option("--gif", is_flag=True, help="Also write OUT.gif: the edit swept from 0 to its amount and back.")
@set_weights_option
@allow_mismatch_option
@device_option
def edit(
    source: str,
    edits: list[tuple[int | str, float]],
    latents: Path | None,
    seed: int,
    samples: int,
    out: Path,
    gif: bool,
    weights: str | None,
    allow_mismatch: bool,
    device: str,
) -> None:
    """Edit images with directions of SOURCE (a run folder, a direction file or a Hub OWNER/NAME):
    projected latents (`--latents`, from `zoo-dirs project`) or generated samples."""
    from .directions import FILE_NAME, DirectionSet
    from .editing import latents_to_edit, write_edit
    from .hub import open_source
    from .runs import generator_for, pick_device

    if out.suffix.lower() != ".png":
        raise click.BadParameter("the edited grid is a .png file", param_hint="--out")
    device = pick_device(device)
    path, _ = open_source(source)
    dset = DirectionSet.load(path / FILE_NAME if path.is_dir() else path, device=device)
    moves = [(dset.index(k), eps) for k, eps in edits]  # unknown labels list the set's labels
    generator = generator_for(
        dset, weights=weights, device=device, allow_mismatch=allow_mismatch, where=source
    )
    z = latents_to_edit(generator, latents, samples=samples, seed=seed)  # (N, D)
    written = write_edit(out, generator, dset, z, moves, gif=gif)
    what = ", ".join(f"{dset.title(k)} {eps:+g}" for k, eps in moves)
    click.echo(f"wrote {out} and {len(z)} edited image(s) ({what})")
    if gif:
        click.echo(f"wrote {written[-1]}: the edit swept from 0 to {what} and back")
