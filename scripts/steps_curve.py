"""RCA and the factor score of one training run against its length (docs/results.md, "training length").

One run per seed is trained to each milestone in turn, resuming exactly from its checkpoint (the same
code as `zoo-dirs discover --resume`), and the direction set at each milestone is copied out and
scored with the same code as `zoo-dirs evaluate`:

    python scripts/steps_curve.py --method centroid --milestones 500,1000,2000,4000,8000 --seeds 0 \
        --out runs/steps-curve
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ganzoo_directions.directions import FILE_NAME
from ganzoo_directions.evaluation import RECONSTRUCTOR_FILE, EvalOptions, evaluate
from ganzoo_directions.interfaces import RunSettings
from ganzoo_directions.runs import RUN_FILE, RunRequest, execute, pick_device


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gen", default="sngan-sprites")
    p.add_argument("--method", default="centroid")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--milestones", default="500,1000,2000,4000,8000")
    p.add_argument("--seeds", default="0")
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("runs/steps-curve"))
    args = p.parse_args()
    device = pick_device(args.device)
    params = dict(pair.split("=", 1) for pair in args.param)
    milestones = [int(m) for m in args.milestones.split(",")]
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        run = args.out / f"{args.method}-s{seed}" / "run"
        for steps in milestones:
            done = args.out / f"{args.method}-s{seed}" / f"step{steps}"
            if not (done / "metrics.json").is_file():
                if (run / RUN_FILE).is_file():
                    request = RunRequest.from_folder(run)
                    request.settings.steps, request.settings.resume = steps, True
                else:
                    run.mkdir(parents=True, exist_ok=True)
                    settings = RunSettings(num_directions=0, steps=steps, seed=seed, run_dir=run)
                    request = RunRequest(args.gen, args.method, {}, None, params, settings)
                execute(request, device=device, rca_pairs=args.samples)
                done.mkdir(parents=True, exist_ok=True)
                for name in (FILE_NAME, RECONSTRUCTOR_FILE):
                    shutil.copy2(run / name, done / name)
                evaluate(done, EvalOptions(metrics=("rca", "factors"), samples=args.samples, device=device))
            metrics = json.loads((done / "metrics.json").read_text())
            row = {"seed": seed, "steps": steps, **{k: metrics[k] for k in ("rca", "disentanglement")}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("| steps | seed | RCA | factor D |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['steps']} | {r['seed']} | {r['rca']:.3f} | {r['disentanglement']:.3f} |")


if __name__ == "__main__":
    main()
