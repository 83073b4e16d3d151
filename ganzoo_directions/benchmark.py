"""The benchmark: methods x seeds on one generator, every score, one table (``zoo-dirs benchmark``).

Each entry of the grid is a *variant*: a label, a method, and optionally method hyper-parameters and
run settings that differ from the defaults (``"centroid-unit=centroid:unit_shift=true,eps_max=2"``).
Each (variant, seed) cell is a run folder ``OUT/<label>/s<seed>`` trained with the same code as
``zoo-dirs discover`` and scored with the same code as ``zoo-dirs evaluate``, so the grid is resumable:
a finished cell is reused, a cell whose training was interrupted resumes from its checkpoint, and a
cell missing some metrics is only evaluated. The table (markdown and JSON, mean ± std over seeds)
and a plot go to ``OUT/results.md``, ``OUT/results.json`` and ``OUT/results.png``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import defaults
from .compare import Cell, Comparison, plot_png
from .directions import FILE_NAME, DirectionSet
from .errors import GanzooError
from .evaluation import EvalOptions, evaluate, recorded_metrics
from .files import atomic_write_bytes, atomic_write_text
from .interfaces import RunSettings
from .metric_table import COLUMNS
from .runs import RUN_FILE, RunRequest, execute, resume_request
from .settings import VARIANT_SETTINGS

#: the scores a benchmark reports by default, in table order
DEFAULT_METRICS = defaults.BENCHMARK_METRICS


@dataclass(frozen=True)
class Variant:
    """One row of the benchmark: ``label`` names it; ``method`` with ``params`` and ``settings``."""

    label: str
    method: str
    params: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Variant:
        """``METHOD`` or ``LABEL=METHOD[:KEY=VALUE,...]``; keys are run settings (see
        :data:`VARIANT_SETTINGS`) or the method's hyper-parameters."""
        label, sep, rest = text.partition("=")
        if not sep:
            label, rest = text, text
        method, _, options = rest.partition(":")
        label, method = label.strip(), method.strip()
        if not label or not method or "/" in label:
            raise GanzooError(f"bad variant {text!r}: expected METHOD or LABEL=METHOD[:KEY=VALUE,...]")
        params: dict[str, str] = {}
        settings: dict[str, Any] = {}
        for pair in filter(None, (p.strip() for p in options.split(","))):
            key, eq, value = pair.partition("=")
            if not eq:
                raise GanzooError(f"bad variant {text!r}: {pair!r} is not KEY=VALUE")
            key = key.strip().replace("-", "_")
            if key in VARIANT_SETTINGS:
                try:
                    settings[key] = VARIANT_SETTINGS[key](value)
                except ValueError:
                    kind = VARIANT_SETTINGS[key].__name__
                    raise GanzooError(f"bad variant {text!r}: {key} must be of type {kind}") from None
            else:
                params[key] = value.strip()
        return cls(label, method, params, settings)


@dataclass
class BenchmarkPlan:
    """The grid and how each cell is trained and scored."""

    generator: str
    variants: list[Variant]
    seeds: list[int]
    out: Path
    generator_options: dict[str, str] = field(default_factory=dict)
    weights: str | None = None  # as discover's --weights (a registered name, a path, hf:...)
    random_weights: bool = False  # an untrained generator, asked for (tests, timing)
    steps: int = 0  # 0: the generator's recommended steps
    num_directions: int = 0  # 0: 128 capped at the latent dimension
    metrics: tuple[str, ...] = DEFAULT_METRICS
    eval: EvalOptions = field(
        default_factory=lambda: EvalOptions(
            samples=defaults.BENCHMARK_SAMPLES,
            protocol_images=defaults.BENCHMARK_PROTOCOL_IMAGES,
            protocol_steps=defaults.BENCHMARK_PROTOCOL_STEPS,
        )
    )
    device: str = "cpu"

    def cells(self) -> list[tuple[Variant, int]]:
        return [(v, seed) for v in self.variants for seed in self.seeds]

    def check(self) -> None:
        """Refuse, before any cell trains: rows whose labels repeat, unknown methods (the valid ones
        listed), weights the generator cannot be built with (random ones unless asked for)."""
        from .plugins import get_registry
        from .pretrained import choose

        registry = get_registry()
        choose(registry.generator(self.generator).cls, self.weights, random_weights=self.random_weights)
        labels = [v.label for v in self.variants]
        if len(set(labels)) != len(labels):
            raise GanzooError(f"row labels repeat: {labels}; give each --variant its own label")
        for variant in self.variants:
            registry.method(variant.method)

    def folder(self, variant: Variant, seed: int) -> Path:
        return self.out / variant.label / f"s{seed}"


Progress = Callable[[str], None]


def _train(plan: BenchmarkPlan, variant: Variant, seed: int, folder: Path, reporter: Any) -> None:
    """Train one cell, resuming it when it was started (from step 0 if it had no checkpoint yet)."""
    if (folder / RUN_FILE).is_file():
        request = resume_request(folder, {})
    else:
        if folder.exists():  # a cell that died before it wrote run.json: start it again
            shutil.rmtree(folder)
        values = {"steps": plan.steps, "num_directions": plan.num_directions, **variant.settings}
        settings = RunSettings(seed=seed, run_dir=folder, **values)
        chosen = {"num_directions": plan.num_directions, "steps": plan.steps}  # 0: not chosen
        given = frozenset(variant.settings) | {name for name, value in chosen.items() if value}
        request = RunRequest(
            plan.generator,
            variant.method,
            dict(plan.generator_options),
            plan.weights,
            dict(variant.params),
            settings,
            given,
            plan.random_weights,
        )
    request.settings.reporter = reporter
    execute(request, device=plan.device, rca_pairs=plan.eval.samples)


def run_benchmark(
    plan: BenchmarkPlan,
    *,
    progress: Progress | None = None,
    reporter_for: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Train and score every cell of ``plan`` (reusing finished work), then write the table."""
    from .settings import SilentReporter

    plan.check()
    plan.out.mkdir(parents=True, exist_ok=True)
    folders: dict[str, list[Path]] = {}
    for variant, seed in plan.cells():
        folder = plan.folder(variant, seed)
        name = f"{variant.label} seed {seed}"
        if not (folder / FILE_NAME).is_file():
            if progress:
                progress(f"training {name}")
            reporter = reporter_for(name) if reporter_for else SilentReporter()
            _train(plan, variant, seed, folder, reporter)
        recorded = recorded_metrics(folder, plan.eval.heldout_steps)  # metrics.json, read once
        missing = tuple(m for m in plan.metrics if m not in recorded)
        if missing:
            if progress:
                progress(f"scoring {name}: {', '.join(missing)}")
            evaluate(folder, replace(plan.eval, metrics=missing, device=plan.device))
        folders.setdefault(variant.label, []).append(folder)
        if progress:
            progress(f"done {name}")
    return write_results(plan, folders)


def write_results(plan: BenchmarkPlan, folders: dict[str, list[Path]]) -> dict[str, Any]:
    """Mean ± std over seeds per variant; ``results.{md,json,png}`` in ``plan.out``."""
    cells: dict[tuple[str, str, str], Cell] = {}
    seeds: dict[tuple[str, str], list[Any]] = {}
    rows: list[dict[str, Any]] = []
    for label, runs in folders.items():
        for folder in runs:
            spec = DirectionSet.load(folder).spec
            metrics = spec.get("metrics", {})
            seeds.setdefault((label, plan.generator), []).append(spec.get("settings", {}).get("seed"))
            row = {"label": label, "folder": str(folder), "settings": spec.get("settings", {})}
            row["method"] = spec.get("method", {})
            for key in COLUMNS:
                value = metrics.get(key)
                if isinstance(value, int | float):
                    cells.setdefault((label, plan.generator, key), Cell([])).values.append(float(value))
                    row[key] = value
            rows.append(row)
    columns = [k for k in COLUMNS if any(c[2] == k for c in cells)]
    comparison = Comparison(list(folders), [plan.generator], columns, cells, seeds)
    summary = {
        "generator": plan.generator,
        "seeds": plan.seeds,
        "metrics": list(plan.metrics),
        "rows": rows,
        "table": [
            {"label": label, "metric": key, "mean": c.mean, "std": c.std, "values": c.values}
            for (label, _, key), c in sorted(cells.items())
        ],
    }
    markdown = _markdown(comparison, columns)
    atomic_write_text(plan.out / "results.md", markdown + "\n")
    atomic_write_text(plan.out / "results.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_bytes(plan.out / "results.png", plot_png(comparison))
    summary["markdown"] = markdown
    return summary


def _markdown(comparison: Comparison, columns: Sequence[str]) -> str:
    header = ["directions", *(COLUMNS[k].title for k in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label in comparison.methods:
        values = []
        for key in columns:
            cell = comparison.cells.get((label, comparison.generators[0], key))
            values.append(cell.text(key) if cell else "-")
        lines.append("| " + " | ".join([label, *values]) + " |")
    return "\n".join(lines)
