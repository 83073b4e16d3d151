"""The ``zoo-dirs`` command line. Heavy imports (torch) happen inside commands, so ``--help`` is instant."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__, defaults
from .cli_options import (
    SEED,
    FiniteFloatRange,
    MetricList,
    PluginName,
    SeedList,
    allow_mismatch_option,
    device_option,
    gen_options_option,
    key_values,
    parse_direction_list,
    parse_edits,
    parse_labels,
    random_weights_option,
    run_setting_options,
    set_weights_option,
    weights_option,
)
from .errors import GanzooError
from .metric_table import help_text as metric_help
from .settings import VARIANT_SETTINGS, RunSettings

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


#: discover's parameters that a resume reconciles with run.json -> the request field; the run
#: settings (RunSettings.flags()) are parameters of their own name
RESUME_FIELDS = {
    "gen_name": "generator",
    "method_name": "method",
    "gen_options": "generator_options",
    "params": "params",
    "weights": "weights",
    "random_weights": "random_weights",
}
OUT_OF_MEMORY = ("out of memory", "not enough memory", "can't allocate memory", "failed to allocate")
#: what to lower when a command runs out of memory: the options that ask for it
OUT_OF_MEMORY_ADVICE = {
    "discover": "lower --batch (or the image size, -g image_size=...; a wide -p hidden)",
    "benchmark": "lower --batch through --variant (batch_size=...), or the image size",
    "evaluate": "lower --batch or --samples",
    "traverse": "lower --samples, --steps / --frames, or --tile",
    "explore": "lower --sliders, or the image size",
    "project": "lower --restarts, or the image size",
    "edit": "give fewer images at once",
}


def _allocation(text: str) -> str:
    """What the allocator said, kept short: its "Tried to allocate ..." (the size, in full), or the
    first line."""
    import re

    match = re.search(r"(?:tried to allocate|allocate)\s+[\d.,]+\s*\w*", text, re.IGNORECASE)
    if match:
        return match.group(0)
    return text.splitlines()[0][:200] if text else "MemoryError"


class GanzooGroup(click.Group):
    """Turns user errors (:class:`GanzooError`), the machine's limits (disk full, no permission,
    out of memory) into one line and a non-zero exit, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GanzooError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            from .files import describe_os_error

            raise click.ClickException(describe_os_error(exc)) from None
        except (MemoryError, RuntimeError) as exc:
            text = str(exc)
            if not isinstance(exc, MemoryError) and not any(m in text.lower() for m in OUT_OF_MEMORY):
                raise
            command = ctx.invoked_subcommand or ""
            advice = OUT_OF_MEMORY_ADVICE.get(command, "ask for less")
            raise click.ClickException(
                f"out of memory: {advice}, or use a device with more memory ({_allocation(text)})"
            ) from None


@click.group(cls=GanzooGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="zoo-dirs")
def cli() -> None:
    """Find interpretable directions in the latent space of pretrained GANs, without labels.

    \b
    Quick start (no download, CPU, a few minutes):
      zoo-dirs discover                       # the embedded sngan-sprites GAN, centroid-ortho
      zoo-dirs traverse runs/<run> --out grid.png
    """
    from . import plugins

    plugins.on_load_failure = lambda message: click.echo(f"warning: {message}", err=True)


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(as_json: bool) -> None:
    """List generators and methods, with the plugin distribution each comes from, and the public
    checkpoints each generator knows by name (--weights NAME)."""
    from .plugins import get_registry
    from .views import print_listing

    rows = get_registry().listing()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        print_listing(rows)


@cli.command()
def plugins() -> None:
    """Print the loaded plugins as JSON: name, distribution, version, hooks."""
    from .plugins import get_host

    host = get_host()
    host.registry()
    click.echo(json.dumps(host.describe(), indent=2))


@cli.command()
@click.option(
    "--gen",
    "gen_name",
    type=PluginName("generator"),
    default=None,
    help=f"Generator to search (see `zoo-dirs list`). [default: {defaults.GENERATOR}; on --resume: "
    "the run's]",
)
@click.option(
    "--method",
    "method_name",
    type=PluginName("method"),
    default=None,
    help=f"Direction-finding method (see `zoo-dirs list`). [default: {defaults.METHOD}; on --resume: "
    "the run's]",
)
@run_setting_options
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    callback=key_values,
    metavar="KEY=VALUE",
    help="A method hyper-parameter (repeatable), e.g. -p deformator=ortho.",
)
@gen_options_option
@weights_option
@random_weights_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run folder. [default: runs/<gen>-<method>-<time>]",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@device_option
@click.pass_context
def discover(
    ctx: click.Context,
    gen_name: str | None,
    method_name: str | None,
    params: dict[str, str],
    gen_options: dict[str, str],
    weights: str | None,
    random_weights: bool,
    out: Path | None,
    resume: bool,
    device: str,
    **settings_given: Any,
) -> None:
    """Train a method on a generator and write a run folder with its direction set.

    The folder gets directions.safetensors, the reconstructor, a JSON-lines log, checkpoints and
    traversal.png; it is locked while the run lives. Ctrl-C saves a checkpoint; --resume --out DIR
    continues it with the run's own settings: only --steps (not below the checkpoint), --device,
    --checkpoint-every, --log-every, --rca-pairs, --channels-last, --amp, --compile and
    --grad-checkpoint may be given anew; any other flag that differs from the run is refused (a run
    stopped before its first checkpoint takes new settings). Under torchrun
    (`torchrun --nproc_per_node N -m ganzoo_directions discover ... --out DIR`) it trains
    data-parallel: --batch is per process, and rank 0 writes. On the CPU it uses the cores other
    processes leave free (OMP_NUM_THREADS sets the threads).
    """
    from .progress import console_reporter
    from .runs import RunFolder, execute, join_processes, pick_device, run_request

    if settings_given["eps_min"] >= settings_given["eps_max"]:
        raise click.BadParameter("--eps-min must be smaller than --eps-max", param_hint="--eps-min")
    if resume and out is None:
        raise click.UsageError("--resume needs --out RUN_DIR")
    device, rank, note = join_processes(pick_device(device), out)
    if note:
        click.echo(f"note: {note}", err=True)
    # an unset flag not given: 0, "chosen when the run starts" (Flag.unset)
    settings = RunSettings(run_dir=out, **{k: 0 if v is None else v for k, v in settings_given.items()})
    request = run_request(
        gen_name,
        method_name,
        gen_options,
        weights,
        params,
        settings,
        random_weights,
        given=_given_on_command_line(ctx),
        resume=resume,
    )
    out = request.settings.run_dir
    if rank != 0:  # data-parallel: train, then leave writing and evaluation to rank 0
        execute(request, device=device)
        return

    from .progress import RunConsole
    from .views import print_run_summary

    console = RunConsole(stderr=True)
    from .training import NeverFails, stop_signals_interrupt

    # output can never end a run (a closed pipe, a hung-up terminal)
    request.settings.reporter = NeverFails(
        console_reporter(console, label=f"{request.method} on {request.generator}")
    )
    console.print(
        f"[bold]zoo-dirs discover[/]: {request.method} on {request.generator}, device {device}, "
        f"run folder {out}"
    )
    stop_signals_interrupt()  # SIGTERM / SIGHUP outside the training loop act as Ctrl-C too
    try:
        outcome = execute(request, device=device)
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP): the checkpoint is not
            console.print(f"[yellow]interrupted[/]: {RunFolder(out).how_to_continue()}", highlight=False)
        sys.exit(130)
    with contextlib.suppress(OSError):  # a closed pipe (`| head`) does not fail a finished run
        print_run_summary(console, outcome)


def _given_on_command_line(ctx: click.Context) -> dict[str, tuple[str, Any]]:
    """``{run field: (flag, value)}`` for each of discover's run options typed on the command line
    (not defaulted)."""
    fields = {**RESUME_FIELDS, **{name: name for name in RunSettings.flags()}}
    return {
        fields[param.name]: (param.opts[0], ctx.params[param.name])
        for param in ctx.command.params
        if param.name in fields
        and ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE
    }


@cli.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write: .png (a grid), .gif or .mp4 (a looping animation; MP4 needs the [mp4] extra).",
)
@click.option(
    "--directions",
    callback=parse_direction_list,
    default=None,
    help="Comma-separated indices or labels, e.g. 0,3,zoom. [default: the strongest 16; 8 animated]",
)
@click.option(
    "--range",
    "magnitude_range",
    type=FiniteFloatRange(min=0, min_open=True),
    default=None,
    help="Largest |eps| shown. [default: the run's eps-max]",
)
@click.option(
    "--steps",
    type=click.IntRange(min=2),
    default=defaults.TRAVERSE_STEPS,
    show_default=True,
    help="Magnitudes per row (PNG).",
)
@click.option(
    "--frames",
    type=click.IntRange(min=2, max=1000),
    default=defaults.ANIMATION_FRAMES,
    show_default=True,
    help="Frames of one loop (GIF/MP4).",
)
@click.option(
    "--fps",
    type=FiniteFloatRange(min=0.1, max=100),
    default=defaults.ANIMATION_FPS,
    show_default=True,
    help="Frames per second (GIF/MP4).",
)
@click.option(
    "--samples", type=click.IntRange(min=1), default=1, show_default=True, help="Latents per direction."
)
@click.option(
    "--layout",
    type=click.Choice(["directions", "consecutive"]),
    default="directions",
    show_default=True,
    help="directions: rows are (direction, sample), columns magnitudes; consecutive: first "
    "k1 then k2 (give two directions).",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the latents.")
@click.option(
    "--tile",
    type=click.IntRange(min=0),
    default=defaults.TRAVERSE_TILE,
    show_default=True,
    help="Largest tile side in pixels (larger images are downsampled); 0: the generator's full size.",
)
@set_weights_option
@allow_mismatch_option
@device_option
def traverse(
    source: Path,
    out: Path,
    directions: list[int | str] | None,
    magnitude_range: float | None,
    steps: int,
    frames: int,
    fps: float,
    samples: int,
    layout: str,
    seed: int,
    tile: int,
    weights: str | None,
    allow_mismatch: bool,
    device: str,
) -> None:
    """Draw images along directions of a run folder or a directions.safetensors file: a PNG grid,
    or a looping GIF / MP4 of every chosen direction side by side (by --out's extension)."""
    from .directions import DirectionSet
    from .runs import generator_for, pick_device
    from .traversal import check_traversal, save_traversal

    device = pick_device(device)
    dset = DirectionSet.load(source, device=device)
    indices = None if directions is None else [dset.index(k) for k in directions]
    shape = {"directions": indices, "samples": samples, "steps": steps, "layout": layout, "frames": frames}
    check_traversal(out, dset, **shape)  # before the generator is built
    generator = generator_for(
        dset, weights=weights, device=device, allow_mismatch=allow_mismatch, where=str(source)
    )
    save_traversal(
        out,
        generator,
        dset,
        **shape,
        magnitude_range=dset.eps_range if magnitude_range is None else magnitude_range,
        seed=seed,
        fps=fps,
        max_tile=tile,
    )
    click.echo(f"wrote {out}")


@cli.command()
@click.argument("source")
@click.option(
    "--host",
    default=defaults.EXPLORE_HOST,
    show_default=True,
    help="Address to listen on (0.0.0.0 lets other machines in).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=defaults.EXPLORE_PORT,
    show_default=True,
    help="Port (0: the first free one from 7860); a busy one is refused before anything loads.",
)
@click.option("--share", is_flag=True, help="Also open a public Gradio share link (off by default).")
@click.option(
    "--auth",
    default=None,
    envvar="ZOO_DIRS_EXPLORE_AUTH",
    metavar="USER:PASS",
    help="Credentials the page asks for. Needed to edit labels when the page is reachable beyond this "
    "machine (--host other than the loopback, or --share); without them it is served read-only. "
    "[env: ZOO_DIRS_EXPLORE_AUTH]",
)
@click.option(
    "--sliders",
    type=click.IntRange(min=1, max=64),
    default=defaults.EXPLORE_SLIDERS,
    show_default=True,
    help="Sliders per page of directions, strongest first (a control on the page shows the others).",
)
@click.option(
    "--range",
    "magnitude_range",
    type=FiniteFloatRange(min=0, min_open=True),
    default=None,
    help="Largest |eps| of every slider. [default: per direction, the run's eps-max shortened to "
    f"{defaults.RANGE_SIGMAS:g} standard deviations of the latents along it]",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="For a Hub SOURCE: pull it into this folder, where labels are saved. [default: read-only]",
)
@set_weights_option
@allow_mismatch_option
@device_option
def explore(
    source: str,
    host: str,
    port: int,
    share: bool,
    auth: str | None,
    sliders: int,
    magnitude_range: float | None,
    out: Path | None,
    weights: str | None,
    allow_mismatch: bool,
    device: str,
) -> None:
    """Look at a direction set in the browser: samples, a slider per direction (strongest first,
    in pages), traversal strips, and a box to label each direction (saved in the file).

    SOURCE is a run folder, a directions.safetensors file or a Hub OWNER/NAME[@REV]. Needs the
    extra: pip install "ganzoo-directions[explore]". Listens on 127.0.0.1 unless --host says
    otherwise; Ctrl-C stops it.
    """
    from .directions import FILE_NAME, DirectionSet
    from .explore import (
        Explorer,
        build_app,
        check_port,
        page_access,
        require_gradio,
        serve,
        source_line,
        variants_of,
    )
    from .hub import open_source
    from .runs import generator_for, pick_device

    require_gradio()  # before any download or model build: the one-line install hint
    check_port(host, port)  # a busy port: now, in one line, not after the model is built
    device = pick_device(device)
    path, writable = open_source(source, out)
    file = path / FILE_NAME if path.is_dir() else path
    dset = DirectionSet.load(file, device=device)
    generator = generator_for(
        dset, weights=weights, device=device, allow_mismatch=allow_mismatch, where=source
    )

    credentials, labels_allowed, access = page_access(host, share, auth)
    explorer = Explorer(
        dset,
        variants_of(generator),
        path=file if writable and labels_allowed else None,
        sliders=sliders,
        magnitude=magnitude_range,
        source=source_line(source, file, writable, labels_allowed),
    )
    click.echo(f"exploring {file} on {device}; labels {'saved in it' if explorer.path else 'read-only'}")
    # a 256 px StyleGAN2 on one CPU thread: seconds a render, minutes for the page (performance.md)
    click.echo(f"drawing the first page: {explorer.first_page_renders} renders")
    app = build_app(explorer)
    if access:
        click.echo(access)
    local_url, share_url = serve(app, host, port, share=share, credentials=credentials)
    click.echo(f"open {local_url} in a browser" + (f" (public link: {share_url})" if share_url else ""))
    click.echo("Ctrl-C stops" + ("" if share else "; --share adds a public link"))
    app.block_thread()


@cli.command()
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


@cli.command()
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


@cli.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.argument("labels", nargs=-1, callback=parse_labels, metavar="[INDEX=LABEL]...")
@click.option(
    "--clear", "clear", multiple=True, type=click.IntRange(min=0), help="Remove a label (repeatable)."
)
def label(source: Path, labels: dict[int, str], clear: tuple[int, ...]) -> None:
    """Name directions of a run folder or a directions.safetensors file, e.g.
    `zoo-dirs label runs/x 3=zoom 7="hair colour" --clear 5`; without labels, list them.

    Labels are kept in the file (re-read and written atomically under a lock, so the explorer and
    this command never lose each other's labels); traverse, the Hub card, pull and
    `dset.apply(z, "zoom", 2.0)` use them.
    """
    from .directions import DirectionSet, update_labels

    now = update_labels(source, labels, clear) if labels or clear else DirectionSet.load(source).labels
    if not now:
        click.echo(f"{source}: no labelled directions")
    for k, text in sorted(now.items()):
        click.echo(f"{k}\t{text}")


@cli.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repo as private (ignored if it exists).")
@click.option("--branch", default=None, help="Upload to this branch (created if needed). [default: main]")
@click.option("--message", default=None, help="Commit message.")
@click.option("--overwrite-card", is_flag=True, help="Replace a README.md that is already on the Hub.")
@click.option("--license", "license_", default="mit", show_default=True, help="License in the card.")
def push(
    source: Path,
    repo_id: str,
    private: bool,
    branch: str | None,
    message: str | None,
    overwrite_card: bool,
    license_: str,
) -> None:
    """Upload a run's direction set to the Hugging Face Hub, with a model card and its pictures.

    SOURCE is a run folder (or a directions.safetensors file); REPO_ID is OWNER/NAME. Needs a token
    with write access (`hf auth login`, or HF_TOKEN). Nothing local is changed.
    """
    from .directions import DirectionSet
    from .hub import parse_repo_ref
    from .hub import push as push_set

    repo_id, revision = parse_repo_ref(repo_id)
    if revision is not None:
        raise click.BadParameter("push takes OWNER/NAME; choose a branch with --branch", param_hint="REPO_ID")
    dset = DirectionSet.load(source)
    folder = source if source.is_dir() else source.parent
    previews = [folder / name for name in ("traversal.png", "traversal.gif")]
    result = push_set(
        dset,
        repo_id,
        previews=previews,
        private=private,
        branch=branch,
        message=message,
        overwrite_card=overwrite_card,
        license=license_,
    )
    click.echo(f"pushed {', '.join(result.uploaded)} to {result.repo_url}")
    if result.card_kept:
        click.echo("kept the README.md already on the Hub (--overwrite-card replaces it)")
    click.echo(f"commit: {result.commit_url}")
    click.echo(f"others can now run: zoo-dirs pull {repo_id}{'@' + branch if branch else ''}")


@cli.command()
@click.argument("ref", metavar="REPO_ID[@REVISION]")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Copy the set (and its card and pictures) into this folder. [default: leave it in the "
    "Hugging Face cache]",
)
@set_weights_option
@click.option(
    "--allow-mismatch",
    is_flag=True,
    help="Accept a set made for other generator weights (the latent dimension must still match).",
)
@click.option("--no-check", is_flag=True, help="Only check the file format, not the generator.")
@click.option(
    "--force", is_flag=True, help="Replace the direction set in an --out folder that holds other files."
)
def pull(
    ref: str, out: Path | None, weights: str | None, allow_mismatch: bool, no_check: bool, force: bool
) -> None:
    """Download a direction set from the Hugging Face Hub (cached; HF_HUB_OFFLINE=1 uses the cache).

    Checks the format version and that the set fits the generator you have (its name, latent space and
    dimension, and weights fingerprint). With --out, the files land there only after every check
    passed; a folder holding other files is refused unless --force.
    """
    from .hub import pull as pull_set
    from .plugins import get_registry
    from .pretrained import weights_note
    from .runs import generator_for, quote
    from .safe_text import plain

    def check(dset: Any) -> None:
        generator_for(dset, weights=weights, allow_mismatch=allow_mismatch, where=ref)

    dset, folder = pull_set(ref, out, force=force, check=None if no_check else check)
    made_for = dset.spec.get("generator", {})
    click.echo(  # names from someone's file: printed as text, never as terminal control sequences
        f"{dset.num_directions} directions for {plain(made_for.get('name', '?'))} "
        f"({plain(dset.spec.get('method', {}).get('name', '?'))}) in {folder}"
    )
    if made_for.get("name") in get_registry().generators:
        click.echo(plain(weights_note(get_registry().generator(made_for["name"]).cls, made_for)))
    if dset.labels:
        click.echo("labels: " + ", ".join(f"{k} {text}" for k, text in sorted(dset.labels.items())))
    strongest = ",".join(str(k) for k in dset.ranked()[:3])
    click.echo(f"next: zoo-dirs traverse {quote(folder)} --directions {strongest} --samples 4 --out grid.png")


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "voynov", "ganspace", "vectors"]),
    default="auto",
    show_default=True,
    help="voynov: a GANLatentDiscovery folder or deformator_N.pt; ganspace: a GANSpace .npz; vectors: "
    "InterFaceGAN / e4e .npy / .pt (one direction per file, or (K, D)). auto: from the names.",
)
@click.option(
    "--gen",
    "gen_name",
    type=PluginName("generator"),
    required=True,
    help="The generator the directions are for.",
)
@weights_option
@gen_options_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="New folder for the set (directions.safetensors, traversal.png); a non-empty one is refused.",
)
@device_option
def import_command(
    files: tuple[Path, ...],
    fmt: str,
    gen_name: str,
    weights: str | None,
    gen_options: dict[str, str],
    out: Path,
    device: str,
) -> None:
    """Bring directions shared in another tool's format into a direction set (for traverse, explore,
    edit, evaluate and push). These formats carry no fingerprint: --gen, --weights and -g say which
    generator the directions belong to (a file's W+ layer range sets -g layers unless given). Files
    are read without unpickling."""
    from .interchange import import_set
    from .runs import pick_device

    dset, foreign = import_set(
        list(files), fmt, gen_name, gen_options, out, weights=weights, device=pick_device(device)
    )
    click.echo(
        f"imported {dset.num_directions} {foreign.fmt} directions for {gen_name} into {out} "
        f"(eps-max {foreign.eps_max:g}, {len(dset.labels)} labelled)"
    )
    for note in foreign.notes:
        click.echo(f"note: {note}")


@cli.command()
@click.argument("source")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="File to write (.npy, .pt or .npz), or with --split a folder.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["npy", "pt", "ganspace"]),
    default=None,
    help="npy / pt: (K, D) unit rows (labels in OUT.labels.txt); ganspace: a GANSpace-style .npz. "
    "[default: from --out's extension]",
)
@click.option(
    "--split", is_flag=True, help="One (1, D) file per direction, named by its label (InterFaceGAN's layout)."
)
def export(source: str, out: Path, fmt: str | None, split: bool) -> None:
    """Write a direction set (a run folder, a file or a Hub OWNER/NAME) in another tool's format."""
    from .directions import FILE_NAME, DirectionSet
    from .hub import open_source
    from .interchange import export_set, format_for

    fmt = fmt or format_for(out)
    path, _ = open_source(source)
    dset = DirectionSet.load(path / FILE_NAME if path.is_dir() else path)
    written = export_set(dset, out, fmt, split=split)
    click.echo(f"wrote {len(written)} file(s): " + ", ".join(str(p) for p in written[:4]))


@cli.command()
@click.argument("source")
@click.option(
    "--metrics",
    type=MetricList(),
    default=",".join(defaults.EVAL_METRICS),
    show_default=True,
    help=f"Comma-separated; {metric_help()}.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=10),
    default=defaults.EVAL_SAMPLES,
    show_default=True,
    help="Fresh pairs for RCA; samples for PPL (the paper: 10,000).",
)
@click.option(
    "--seed", type=SEED, default=defaults.EVAL_SEED, show_default=True, help="Seed of the evaluation draws."
)
@click.option(
    "--ppl-net",
    type=click.Choice(defaults.PPL_NETS),
    default=defaults.PPL_NET,
    show_default=True,
    help="LPIPS backbone (vgg as the paper; weights from the local torch cache). pixel: offline "
    "pixel MSE, not comparable to published PPL. vgg-random: random backbone, wiring tests only.",
)
@click.option(
    "--ppl-delta",
    type=FiniteFloatRange(min=0, min_open=True),
    default=defaults.PPL_DELTA,
    show_default=True,
    help="Step along the path for PPL.",
)
@click.option(
    "--ppl-crop",
    is_flag=True,
    help="StyleGAN's face crop before PPL's distance (FFHQ-like generators); images are always "
    f"downsampled to at most {defaults.PPL_SIZE} px first, as StyleGAN's PPL.",
)
@click.option(
    "--heldout-steps",
    type=click.IntRange(min=1),
    default=defaults.HELDOUT_STEPS,
    show_default=True,
    help="Training steps of the held-out reconstructor.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=defaults.EVAL_BATCH,
    show_default=True,
    help="Evaluation batch.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="For a Hub REPO_ID: the folder to pull into. [default: evaluations/OWNER--NAME]",
)
@click.option(
    "--force", is_flag=True, help="For a Hub REPO_ID: replace the set in an --out folder holding other files."
)
@set_weights_option
@device_option
def evaluate(
    source: str,
    metrics: tuple[str, ...],
    samples: int,
    seed: int,
    ppl_net: str,
    ppl_delta: float,
    ppl_crop: bool,
    heldout_steps: int,
    batch: int,
    out: Path | None,
    force: bool,
    weights: str | None,
    device: str,
) -> None:
    """Measure a run folder or a Hub direction set (OWNER/NAME[@REV]) and record the metrics.

    Writes metrics.json in the folder and the metrics into the direction file's metadata, and prints
    them. RCA uses the run's reconstructor on fresh pairs drawn with the training shift law; held-out
    RCA trains a fresh reconstructor on the frozen directions first.
    """
    from rich.console import Console

    from .evaluation import EvalOptions
    from .evaluation import evaluate as run_evaluation
    from .hub import open_source
    from .progress import TaskBars
    from .runs import pick_device
    from .views import print_scores

    folder, _ = open_source(source, out, force=force, copies_in=Path("evaluations"))
    if folder.is_file():
        folder = folder.parent

    console = Console(stderr=True)
    bars = TaskBars(console)
    options = EvalOptions(
        metrics=metrics,
        samples=samples,
        seed=seed,
        batch_size=batch,
        ppl_net=ppl_net,
        ppl_delta=ppl_delta,
        ppl_crop=ppl_crop,
        heldout_steps=heldout_steps,
        weights=weights,
        device=pick_device(device),
        progress=bars if console.is_terminal else None,
    )
    if "heldout_rca" in metrics:
        console.print(
            f"heldout_rca first trains a fresh reconstructor for {heldout_steps} steps on the frozen "
            "directions (--heldout-steps)",
            highlight=False,
        )
    try:
        with bars:
            results = run_evaluation(folder, options)
    except KeyboardInterrupt:
        from .evaluation import METRICS_FILE, recorded_metrics

        kept = [name for name in metrics if name in recorded_metrics(folder)]
        what = f"kept {', '.join(kept)} in {folder / METRICS_FILE}" if kept else "no metric was finished"
        console.print(
            f"[yellow]interrupted[/]: {what}; run the same command to measure the rest", highlight=False
        )
        sys.exit(130)
    print_scores(f"evaluation of {folder}", results)
    click.echo(f"recorded in {folder / 'metrics.json'} and {folder / 'directions.safetensors'}")


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a bar chart (PNG) of the table.",
)
def compare(runs: tuple[Path, ...], fmt: str, plot: Path | None) -> None:
    """Compare runs in the layout of the paper's Table 1: methods as rows, metrics per generator as
    columns; runs that differ only by seed are one cell, mean ± std. Run `evaluate` first."""
    from .compare import collect, plot_png, unfinished
    from .files import atomic_write_bytes

    skipped = unfinished(list(runs))
    for folder in skipped:
        click.echo(
            f"note: skipping {folder}: no direction set yet (a run still going, stopped or failed)", err=True
        )
    runs = tuple(run for run in runs if run not in skipped)
    if not runs:
        raise GanzooError("none of these folders holds a finished run (no directions.safetensors)")
    comparison = collect(list(runs))
    if not comparison.metrics:
        raise GanzooError("none of these runs has recorded metrics; run `zoo-dirs evaluate RUN_DIR` first")
    if fmt == "json":
        click.echo(comparison.as_json())
    elif fmt == "markdown":
        click.echo(comparison.markdown())
    else:
        from .views import print_comparison

        print_comparison(comparison)
    if plot is not None:
        atomic_write_bytes(plot, plot_png(comparison))
        click.echo(f"wrote {plot}")


@cli.command()
@click.option(
    "--gen",
    "gen_name",
    type=PluginName("generator"),
    default="sngan-sprites",
    show_default=True,
    help="Generator with a factor readout (its true factors can be read off its images).",
)
@click.option(
    "--methods",
    default=defaults.BENCHMARK_METHODS,
    show_default=True,
    help="Comma-separated methods, each a row with its default settings.",
)
@click.option(
    "--variant",
    "variants",
    multiple=True,
    metavar="LABEL=METHOD:KEY=VALUE,...",
    help="An extra row (repeatable): a method with other hyper-parameters or run settings "
    f"({', '.join(VARIANT_SETTINGS)}), e.g. 'centroid-eps2=centroid:eps_max=2'.",
)
@click.option(
    "--seeds",
    type=SeedList(),
    default=defaults.BENCHMARK_SEEDS,
    show_default=True,
    help="Comma-separated seeds.",
)
@gen_options_option
@weights_option
@random_weights_option
@click.option(
    "--steps",
    type=click.IntRange(min=1, max=defaults.MAX_STEPS),
    default=None,
    help="Training steps of the trained methods. [default: the generator's recommended steps]",
)
@click.option(
    "--directions",
    "num_directions",
    type=click.IntRange(min=1),
    default=None,
    help=f"K. [default: {defaults.NUM_DIRECTIONS}, capped at the latent dimension]",
)
@click.option(
    "--metrics",
    type=MetricList(),
    default=",".join(defaults.BENCHMARK_METRICS),
    show_default=True,
    help=f"Comma-separated; {metric_help()}.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=10),
    default=defaults.BENCHMARK_SAMPLES,
    show_default=True,
    help="Pairs for RCA, latents for the factor score (at most 2048), samples for PPL.",
)
@click.option(
    "--ppl-net",
    type=click.Choice(defaults.PPL_NETS),
    default="pixel",
    show_default=True,
    help="PPL distance, when ppl is asked for (see `zoo-dirs evaluate --help`).",
)
@click.option(
    "--protocol-steps",
    type=click.IntRange(min=1),
    default=defaults.BENCHMARK_PROTOCOL_STEPS,
    show_default=True,
    help="MIG/DCI: training steps of the encoder.",
)
@click.option(
    "--protocol-images",
    type=click.IntRange(min=100),
    default=defaults.BENCHMARK_PROTOCOL_IMAGES,
    show_default=True,
    help="MIG/DCI: generated images the encoder trains on (real labelled images: 2/5 of it).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/benchmark"),
    show_default=True,
    help="Benchmark folder: one run folder per cell; run again to resume.",
)
@device_option
def benchmark(
    gen_name: str,
    methods: str,
    variants: tuple[str, ...],
    seeds: list[int],
    gen_options: dict[str, str],
    weights: str | None,
    random_weights: bool,
    steps: int | None,
    num_directions: int | None,
    metrics: tuple[str, ...],
    samples: int,
    ppl_net: str,
    protocol_steps: int,
    protocol_images: int,
    out: Path,
    device: str,
) -> None:
    """Score methods x seeds on a generator whose true factors are known: factor score, MIG/DCI
    protocol, RCA; mean ± std per row, as results.md / results.json / results.png in --out. The
    defaults are what docs/results.md was measured with.

    Resumable: finished cells are reused, interrupted ones resume from their checkpoint.
    """
    from rich.console import Console

    from .benchmark import BenchmarkPlan, Variant, run_benchmark
    from .evaluation import EvalOptions
    from .progress import CellsBar
    from .runs import pick_device

    rows = [Variant.parse(m.strip()) for m in methods.split(",") if m.strip()]
    rows += [Variant.parse(v) for v in variants]
    device = pick_device(device)
    plan = BenchmarkPlan(
        generator=gen_name,
        variants=rows,
        seeds=seeds,
        out=out,
        generator_options=gen_options,
        weights=weights,
        random_weights=random_weights,
        steps=steps or 0,
        num_directions=num_directions or 0,
        metrics=metrics,
        eval=EvalOptions(
            samples=samples,
            ppl_net=ppl_net,
            protocol_steps=protocol_steps,
            protocol_images=protocol_images,
        ),
        device=device,
    )
    plan.check()  # before any cell
    console = Console(stderr=True)
    console.print(
        f"[bold]zoo-dirs benchmark[/]: {len(rows)} rows x {len(seeds)} seeds on {gen_name}, "
        f"device {device}, folder {out}"
    )
    with CellsBar(console, len(plan.cells())) as progress:
        summary = run_benchmark(plan, progress=progress)
    click.echo(summary["markdown"])
    click.echo(f"wrote {out / 'results.md'}, {out / 'results.json'} and {out / 'results.png'}")


def main() -> None:
    cli(prog_name="zoo-dirs")


if __name__ == "__main__":
    main()
