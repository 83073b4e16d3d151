"""What commands print, rendered with rich: the plugin list, a finished run's summary and next
commands, an evaluation's scores, a comparison table. Commands compute; these only show."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

#: terminals narrower than this get `zoo-dirs list` as one block per entry instead of a table
WIDE_LIST = 140


def _marks(entry: dict[str, Any]) -> str:
    """A registered checkpoint's marks: `` (default, paper)``, or nothing."""
    marks = [m for m, on in (("default", entry["default"]), ("paper", entry["paper"])) if on]
    return f" ({', '.join(marks)})" if marks else ""


def _source(entry: dict[str, Any]) -> str:
    return entry["source"] or f"manual download: {entry['homepage']}"


def print_listing(rows: list[dict[str, Any]]) -> None:
    """``zoo-dirs list``: a table on wide terminals, a block per entry on narrow ones (nothing is
    broken mid-word at 80 columns)."""
    console = Console()
    if console.width < WIDE_LIST:

        def indented(text: str) -> None:  # wrapped lines keep the indent
            console.print(Padding(Text(text), (0, 0, 0, 2), expand=False))

        for row in rows:
            console.print(
                Text.assemble(
                    (f"{row['kind']} {row['name']}", "bold"), f"  ({row['distribution']} {row['version']})"
                )
            )
            indented(row["summary"])
            if row["settings"]:
                indented("settings: " + ", ".join(f"{k}={v}" for k, v in row["settings"].items()))
            for entry in row.get("weights", []):
                indented(
                    f"--weights {entry['name']}{_marks(entry)}: {entry['summary']}; {entry['license']}; "
                    f"{_source(entry)}"
                )
        return
    table = Table(show_lines=False)
    for column in ("kind", "name", "from", "summary", "settings (defaults)"):
        table.add_column(column, overflow="fold")
    for row in rows:
        settings = ", ".join(f"{k}={v}" for k, v in row["settings"].items())
        table.add_row(
            row["kind"], row["name"], f"{row['distribution']} {row['version']}", row["summary"], settings
        )
    console.print(table)
    weights = Table(title="registered weights (--weights NAME)", show_lines=False)
    for column in ("generator", "name", "license", "summary", "source"):
        weights.add_column(column, overflow="fold")
    for row in rows:
        for entry in row.get("weights", []):
            summary = entry["summary"] + _marks(entry)
            weights.add_row(row["name"], entry["name"], entry["license"], summary, _source(entry))
    if weights.row_count:
        console.print(weights)


def print_run_summary(console: Any, outcome: Any) -> None:
    """After ``zoo-dirs discover``: what was made, its RCA (and factor match where known), where the
    files are, and the traverse commands to look at the strongest directions."""
    metrics = outcome.directions.metrics
    settings = outcome.directions.spec["settings"]
    how = f"{settings['steps']} steps" if settings["steps"] else "closed form"
    console.print(f"[bold green]done[/]: {settings['num_directions']} directions, {how}")
    if "rca" in metrics:
        console.print(
            f"  RCA {metrics['rca']:.3f} on {metrics['rca_pairs']} fresh pairs "
            f"(chance {metrics['rca_chance']:.3f})"
        )
    if "factor_recall" in metrics:
        console.print(
            f"  true-factor match: recall {metrics['factor_recall']:.3f}, "
            f"precision {metrics['direction_precision']:.3f} (1 = exact)"
        )
    from .runs import quote

    run_dir = outcome.run_dir

    def strongest(n: int) -> str:  # the set's strongest directions, as traverse takes them
        return ",".join(str(k) for k in outcome.directions.ranked()[:n])

    lines = [
        f"  directions  {run_dir / 'directions.safetensors'}",
        f"  picture     {outcome.traversal}",
        "next:",
        f"  zoo-dirs traverse {quote(run_dir)} --directions {strongest(3)} --samples 4 "
        f"--out {quote(run_dir / 'grid.png')}",
    ]
    if outcome.directions.num_directions >= 2:  # the consecutive layout moves along two
        lines.append(
            f"  zoo-dirs traverse {quote(run_dir)} --layout consecutive --directions {strongest(2)} "
            f"--samples 4 --out {quote(run_dir / 'consecutive.png')}"
        )
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)


def print_scores(title: str, results: dict[str, Any]) -> None:
    """An evaluation's recorded values, one row each (per-direction lists and matrices left out)."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value")
    for key, value in results.items():
        matrix = isinstance(value, list) and bool(value) and isinstance(value[0], list)
        if matrix or key.endswith("_per_direction"):  # (K, ...): metrics.json has them
            continue
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)


def print_comparison(comparison: Any) -> None:
    """A :class:`~.compare.Comparison` as a terminal table."""
    table = Table()
    for column in comparison.header():
        table.add_column(column)
    for row in comparison.rows():
        table.add_row(*row)
    Console().print(table)
