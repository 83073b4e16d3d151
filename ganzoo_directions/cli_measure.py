"""The commands that measure direction sets: evaluate a set, compare runs, benchmark methods on a
generator with known factors (registered on the ``zoo-dirs`` group by :mod:`.cli`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import defaults
from .cli_options import (
    SEED,
    FiniteFloatRange,
    MetricList,
    PluginName,
    SeedList,
    device_option,
    gen_options_option,
    heldout_steps_option,
    random_weights_option,
    set_weights_option,
    setting_option,
    weights_option,
)
from .errors import GanzooError
from .metric_table import help_text as metric_help
from .settings import VARIANT_SETTINGS


@click.command()
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
@heldout_steps_option
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

        recorded = recorded_metrics(folder)
        kept = [name for name in metrics if name in recorded]
        what = f"kept {', '.join(kept)} in {folder / METRICS_FILE}" if kept else "no metric was finished"
        console.print(
            f"[yellow]interrupted[/]: {what}; run the same command to measure the rest", highlight=False
        )
        sys.exit(130)
    print_scores(f"evaluation of {folder}", results)
    click.echo(f"recorded in {folder / 'metrics.json'} and {folder / 'directions.safetensors'}")


@click.command()
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


@click.command()
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
@setting_option("steps", help="Training steps of the trained methods.")
@setting_option("num_directions")
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
@heldout_steps_option
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
    heldout_steps: int,
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
            heldout_steps=heldout_steps,
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
