"""The ``zoo-dirs`` command line. Heavy imports (torch) happen inside commands, so ``--help`` is instant."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__, defaults
from .cli_images import edit, project
from .cli_measure import benchmark, compare, evaluate
from .cli_options import (
    SEED,
    FiniteFloatRange,
    PluginName,
    allow_mismatch_option,
    device_option,
    gen_options_option,
    key_values,
    parse_direction_list,
    parse_labels,
    random_weights_option,
    run_setting_options,
    set_weights_option,
    weights_option,
)
from .cli_share import export, import_command, pull, push
from .errors import GanzooError, out_of_memory
from .settings import RunSettings

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
            allocation = out_of_memory(exc)
            if allocation is None:
                raise
            advice = OUT_OF_MEMORY_ADVICE.get(ctx.invoked_subcommand or "", "ask for less")
            raise click.ClickException(
                f"out of memory: {advice}, or use a device with more memory ({allocation})"
            ) from None


@click.group(cls=GanzooGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="zoo-dirs")
def cli() -> None:
    """Find interpretable directions in the latent space of pretrained GANs, without labels.

    \b
    Quick start (no download, CPU, a few minutes):
      zoo-dirs discover                       # the embedded sngan-sprites GAN, orojar-span
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


for command in (project, edit, push, pull, import_command, export, evaluate, compare, benchmark):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="zoo-dirs")


if __name__ == "__main__":
    main()
