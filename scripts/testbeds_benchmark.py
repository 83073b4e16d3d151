"""The benchmark across testbeds: ``zoo-dirs benchmark`` once per ground-truth generator, then one summary.

Each generator's grid is a plain ``zoo-dirs benchmark`` call (resumable: run this again and finished
cells are reused) into ``OUT/<generator>``; generators run side by side (``--jobs``, one thread each).
The summary (``OUT/summary.md``) puts every testbed's MIG, DCI disentanglement, factor score and RCA in
one table, mean ± std over the seeds finished so far (read from each cell's metrics.json), with the
published 3D Shapes numbers beside (different renders, same factors: compare ranges and orderings,
not digits).

    python scripts/testbeds_benchmark.py --out runs/testbeds
    python scripts/testbeds_benchmark.py --out runs/testbeds --summary-only
    python scripts/testbeds_benchmark.py --out runs/testbeds -- \
        --variant disco-cpu=disco:steps=600,batch_size=16,lr=0.001    # extra rows, summarised too
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

GENERATORS = "stylegan2-shapes3d,sngan-dsprites"
METHODS = "oracle,random,axes,sefa,ganspace,deepspectral,centroid-ortho,baseline,two-shift,centroid"
#: MIG / DCI disentanglement on DeepMind's 3D Shapes, as tabulated in the FDAE paper (AAAI 2024)
PUBLISHED_3DSHAPES = {
    "baseline": (0.168, 0.380),  # Voynov & Babenko
    "sefa": (0.307, 0.525),
    "ganspace": (0.121, 0.284),
    "deepspectral": (0.356, 0.513),
    "disco": (0.512, 0.708),
}
COLUMNS = {
    "mig": "MIG",
    "dci_disentanglement": "DCI D",
    "disentanglement": "factor D",
    "rca": "RCA",
}


def run_grid(generator: str, methods: str, seeds: str, out: Path, extra: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = open(out / f"{generator}.log", "a")  # noqa: SIM115
    cmd = ["zoo-dirs", "benchmark", "--gen", generator, "--methods", methods, "--seeds", seeds]
    cmd += ["--out", str(out / generator), *extra]
    print(" ".join(cmd), flush=True)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def cell_values(folder: Path, label: str, metric: str) -> list[float]:
    """The metric of every finished seed folder ``folder/label/s*`` (read from its metrics.json)."""
    values = []
    for seed_dir in sorted((folder / label).glob("s*")):
        path = seed_dir / "metrics.json"
        if path.is_file():
            value = json.loads(path.read_text()).get(metric)
            if isinstance(value, int | float):
                values.append(float(value))
    return values


def cell(values: list[float]) -> str:
    """mean ± std over seeds (n when fewer than 3)."""
    if not values:
        return "-"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.3f} (1 seed)"
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.3f} ± {std:.3f}" + ("" if len(values) >= 3 else f" ({len(values)} seeds)")


def summary(out: Path, generators: list[str], methods: list[str]) -> str:
    """One table per score: a row per method, a column per testbed (from the cells' metrics.json, so
    a grid that is still running, or was stopped, is summarised as far as it got)."""
    lines = []
    for metric, title in COLUMNS.items():
        header = ["directions", *generators]
        published = metric in ("mig", "dci_disentanglement")
        if published:
            header.append("published, 3D Shapes")
        lines += [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label in methods:
            values = [cell(cell_values(out / g, label, metric)) for g in generators]
            if published:
                known = PUBLISHED_3DSHAPES.get(label)
                values.append(f"{known[0 if metric == 'mig' else 1]:.3f}" if known else "")
            lines.append("| " + " | ".join([label, *values]) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/testbeds"))
    p.add_argument("--generators", default=GENERATORS)
    p.add_argument("--methods", default=METHODS)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--jobs", type=int, default=2, help="generators benchmarked side by side")
    p.add_argument("--summary-only", action="store_true")
    p.add_argument("extra", nargs="*", help="passed to zoo-dirs benchmark (after --)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    generators = args.generators.split(",")
    methods = [m.split("=")[0] for m in args.methods.split(",")]
    methods += [args.extra[i + 1].split("=")[0] for i, a in enumerate(args.extra[:-1]) if a == "--variant"]
    if not args.summary_only:
        pending, running = list(generators), []
        while pending or running:
            while pending and len(running) < args.jobs:
                g = pending.pop(0)
                running.append((g, run_grid(g, args.methods, args.seeds, args.out, args.extra)))
            g, proc = running.pop(0)
            if proc.wait() != 0:
                print(f"{g}: zoo-dirs benchmark failed (see {args.out / (g + '.log')})", file=sys.stderr)
    text = summary(args.out, generators, methods)
    (args.out / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
