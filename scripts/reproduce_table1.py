"""Reproduce the paper's Table 1 on one generator: train methods x seeds, evaluate, compare.

Each run goes through the same code as `zoo-dirs discover` (runs.execute) and `zoo-dirs evaluate`;
runs already finished in --out are reused (so an interrupted reproduction continues). The table is
printed and written as markdown, with a plot.

    python scripts/reproduce_table1.py --gen sngan-sprites --seeds 0,1,2 --out runs/table1
    python scripts/reproduce_table1.py --gen sngan-sprites --ppl-net vgg ...   # with VGG weights cached
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganzoo_directions.compare import collect, plot_png
from ganzoo_directions.directions import FILE_NAME
from ganzoo_directions.evaluation import EvalOptions, evaluate
from ganzoo_directions.files import atomic_write_bytes, atomic_write_text
from ganzoo_directions.interfaces import RunSettings
from ganzoo_directions.runs import RunRequest, execute, pick_device


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gen", default="sngan-sprites")
    p.add_argument("--methods", default="baseline,two-shift,centroid,random,axes")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=0, help="0: the generator's recommended steps")
    p.add_argument("--directions", type=int, default=0, help="0: 128 capped at the latent dimension")
    p.add_argument("--metrics", default="rca,heldout_rca,ppl,factors")
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--heldout-steps", type=int, default=2000)
    p.add_argument("--ppl-net", default="pixel")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("runs/table1"))
    args = p.parse_args()
    device = pick_device(args.device)
    folders = []
    for method in args.methods.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            folder = args.out / f"{args.gen}-{method}-s{seed}"
            folders.append(folder)
            if not (folder / FILE_NAME).is_file():
                folder.mkdir(parents=True, exist_ok=True)
                settings = RunSettings(
                    num_directions=args.directions, steps=args.steps, seed=seed, run_dir=folder
                )
                outcome = execute(RunRequest(args.gen, method, {}, None, {}, settings), device=device)
                print(f"trained {folder}: {outcome.directions.metrics}", flush=True)
            metrics = tuple(args.metrics.split(","))
            options = EvalOptions(
                metrics=metrics,
                samples=args.samples,
                heldout_steps=args.heldout_steps,
                ppl_net=args.ppl_net,
                device=device,
            )
            results = evaluate(folder, options)
            shown = {k: v for k, v in results.items() if not isinstance(v, list)}
            print(f"evaluated {folder}: {shown}", flush=True)
    comparison = collect(folders)
    table = comparison.markdown()
    print(table)
    atomic_write_text(args.out / "table.md", table + "\n")
    atomic_write_bytes(args.out / "table.png", plot_png(comparison))
    print(f"wrote {args.out / 'table.md'} and {args.out / 'table.png'}")


if __name__ == "__main__":
    main()
