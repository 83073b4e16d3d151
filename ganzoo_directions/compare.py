"""Side-by-side comparison of runs, in the layout of the paper's Table 1.

Rows are methods, columns are metrics per generator; runs that differ only by seed are one cell,
shown as mean ± std.
"""

from __future__ import annotations

import io
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .directions import FILE_NAME, DirectionSet
from .metric_table import COLUMNS

#: metric key -> (column title, higher is better)


@dataclass
class Cell:
    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.mean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def text(self, metric: str) -> str:
        digits = 3
        if metric.startswith("ppl"):  # from 0.005 (pixel PPL) to 400 (LPIPS PPL): 3 significant digits
            scale = abs(self.mean)
            digits = 2 if scale >= 1 or scale == 0 else max(2, 2 - math.floor(math.log10(scale)))
        if len(self.values) == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass
class Comparison:
    methods: list[str]
    generators: list[str]
    metrics: list[str]
    cells: dict[tuple[str, str, str], Cell]  # (method, generator, metric) -> values over seeds
    seeds: dict[tuple[str, str], list[Any]]

    def header(self) -> list[str]:
        return ["method"] + [f"{g} {COLUMNS[m].title}" for g in self.generators for m in self.metrics]

    def rows(self) -> list[list[str]]:
        out = []
        for method in self.methods:
            row = [method]
            for g in self.generators:
                for m in self.metrics:
                    cell = self.cells.get((method, g, m))
                    row.append(cell.text(m) if cell else "-")
            out.append(row)
        return out

    def markdown(self) -> str:
        header = self.header()
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows()]
        return "\n".join(lines)

    def as_json(self) -> str:
        data = [
            {
                "method": m,
                "generator": g,
                "metric": k,
                "mean": c.mean,
                "std": c.std,
                "n": len(c.values),
                "values": c.values,
                "seeds": self.seeds.get((m, g), []),
            }
            for (m, g, k), c in sorted(self.cells.items())
        ]
        return json.dumps(data, indent=2)


def _label(spec: dict[str, Any], defaults: dict[str, dict[str, Any]]) -> str:
    """The method's name, plus the hyper-parameters that differ from the other runs of that method."""
    method = spec.get("method", {})
    name = method.get("name", "?")
    params = method.get("hyperparameters", {})
    changed = {k: v for k, v in params.items() if defaults.get(name, {}).get(k) != v}
    return name + (" (" + ", ".join(f"{k}={v}" for k, v in sorted(changed.items())) + ")" if changed else "")


def unfinished(folders: list[Path]) -> list[Path]:
    """The run folders among ``folders`` that hold no direction set yet (running, stopped or failed
    runs): ``compare runs/*`` skips them with a note instead of failing on the first."""
    return [f for f in folders if f.is_dir() and not (f / FILE_NAME).is_file()]


def collect(folders: list[Path]) -> Comparison:
    """Read the direction sets (and their recorded metrics) of ``folders``."""
    specs = [DirectionSet.load(folder).spec for folder in folders]
    defaults: dict[str, dict[str, Any]] = {}
    for spec in specs:  # the first run of each method sets the reference hyper-parameters
        method = spec.get("method", {})
        defaults.setdefault(method.get("name", "?"), method.get("hyperparameters", {}))
    cells: dict[tuple[str, str, str], Cell] = {}
    seeds: dict[tuple[str, str], list[Any]] = defaultdict(list)
    methods, generators = [], []
    for spec in specs:
        method, generator = _label(spec, defaults), spec.get("generator", {}).get("name", "?")
        methods += [method] if method not in methods else []
        generators += [generator] if generator not in generators else []
        seeds[(method, generator)].append(spec.get("settings", {}).get("seed"))
        for metric in COLUMNS:
            value = spec.get("metrics", {}).get(metric)
            if isinstance(value, int | float):
                cells.setdefault((method, generator, metric), Cell([])).values.append(float(value))
    metrics = [m for m in COLUMNS if any(k[2] == m for k in cells)]
    return Comparison(methods, generators, metrics, cells, dict(seeds))


def plot_png(comparison: Comparison) -> bytes:
    """One panel per (generator, metric): a bar per method with its mean and a ± std whisker."""
    from PIL import Image, ImageDraw

    panels = [(g, m) for g in comparison.generators for m in comparison.metrics]
    bar_w, gap, panel_h, left = 28, 10, 180, 10
    n = len(comparison.methods)
    panel_w = n * (bar_w + gap) + gap
    width = left + len(panels) * (panel_w + 20) + 10
    height = panel_h + 40 + 14 * n
    image = Image.new("RGB", (max(width, 300), height), "white")
    draw = ImageDraw.Draw(image)
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
    for p, (g, m) in enumerate(panels):
        x0 = left + p * (panel_w + 20)
        cells = [comparison.cells.get((method, g, m)) for method in comparison.methods]
        top = max((c.mean + c.std for c in cells if c), default=1.0)
        top = top if top > 0 else 1.0
        draw.text((x0, 2), f"{g} {COLUMNS[m].title}", fill="black")
        base = 20 + panel_h
        draw.line([(x0, base), (x0 + panel_w, base)], fill="black")
        for i, cell in enumerate(cells):
            if cell is None:
                continue
            bx = x0 + gap + i * (bar_w + gap)
            h = panel_h * max(cell.mean, 0.0) / top  # negative means (a correlation, an R²) draw no bar
            draw.rectangle([bx, base - h, bx + bar_w, base], fill=colours[i % len(colours)])
            if cell.std:
                y_hi, y_lo = (
                    base - panel_h * (cell.mean + cell.std) / top,
                    base - panel_h * (cell.mean - cell.std) / top,
                )
                draw.line([(bx + bar_w / 2, y_hi), (bx + bar_w / 2, y_lo)], fill="black", width=2)
            draw.text((bx, base - h - 12), f"{cell.mean:.2f}", fill="black")
    for i, method in enumerate(comparison.methods):
        y = panel_h + 28 + 14 * i
        draw.rectangle([left, y, left + 10, y + 10], fill=colours[i % len(colours)])
        draw.text((left + 16, y - 1), method, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
