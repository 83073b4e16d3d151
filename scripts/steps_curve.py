"""A training run's scores against its length and wall time (docs/results.md, "training length").

One run per seed is trained to each milestone in turn, resuming exactly from its checkpoint (the same
code as `zoo-dirs discover --resume`), and the direction set at each milestone is copied out and
scored with the same code as `zoo-dirs evaluate` (the benchmark's sample counts, so the rows compare
with `zoo-dirs benchmark` cells). Rows go to OUT/curve.jsonl as they finish; rerun to resume.

    python scripts/steps_curve.py --method centroid --milestones 500,1000,2000,4000,8000 --seeds 0 \
        --out runs/steps-curve
    python scripts/steps_curve.py --gen sngan-dsprites --method centroid-ortho --metrics mig,dci,factors,rca \
        --milestones 250,500,1000,2000,4000 --seeds 0,1,2 --out runs/curve/sngan-dsprites
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from ganzoo_directions import defaults
from ganzoo_directions.directions import FILE_NAME
from ganzoo_directions.evaluation import EvalOptions, evaluate
from ganzoo_directions.reconstructors import RECONSTRUCTOR_FILE
from ganzoo_directions.runs import RUN_FILE, RunRequest, execute, pick_device
from ganzoo_directions.settings import VARIANT_SETTINGS, RunSettings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gen", default="sngan-sprites")
    p.add_argument("--method", default="centroid")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--milestones", default="500,1000,2000,4000,8000")
    p.add_argument("--seeds", default="0")
    p.add_argument("--samples", type=int, default=defaults.BENCHMARK_SAMPLES)
    p.add_argument("--metrics", default="rca,factors", help="comma-separated, as zoo-dirs evaluate")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("runs/steps-curve"))
    args = p.parse_args()
    device = pick_device(args.device)
    pairs = dict(pair.split("=", 1) for pair in args.param)
    # run settings (batch_size, lr, ...) as `zoo-dirs benchmark --variant` takes them; the rest: -p
    chosen = {key: VARIANT_SETTINGS[key](value) for key, value in pairs.items() if key in VARIANT_SETTINGS}
    params = {key: value for key, value in pairs.items() if key not in VARIANT_SETTINGS}
    milestones = [int(m) for m in args.milestones.split(",")]
    metrics_wanted = tuple(m for m in args.metrics.split(",") if m)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        run = args.out / f"{args.method}-s{seed}" / "run"
        clock = args.out / f"{args.method}-s{seed}" / "train_seconds.json"  # cumulative, per milestone
        seconds = json.loads(clock.read_text()) if clock.is_file() else {}
        for steps in milestones:
            done = args.out / f"{args.method}-s{seed}" / f"step{steps}"
            if not (done / "metrics.json").is_file():
                if (run / RUN_FILE).is_file():
                    request = RunRequest.from_folder(run)
                    request.settings.steps, request.settings.resume = steps, True
                else:
                    run.mkdir(parents=True, exist_ok=True)
                    settings = RunSettings(num_directions=0, steps=steps, seed=seed, run_dir=run)
                    for key, value in chosen.items():
                        setattr(settings, key, value)
                    request = RunRequest(args.gen, args.method, {}, None, params, settings)
                    request.given = frozenset({"steps", "seed", *chosen})  # the method recommends the rest
                before = max((v for k, v in seconds.items() if int(k) < steps), default=0.0)
                started = time.perf_counter()
                execute(request, device=device, rca_pairs=args.samples)
                seconds[str(steps)] = before + time.perf_counter() - started  # with the final RCA
                clock.write_text(json.dumps(seconds))
                done.mkdir(parents=True, exist_ok=True)
                for name in (FILE_NAME, RECONSTRUCTOR_FILE):
                    if (run / name).is_file():
                        shutil.copy2(run / name, done / name)
                options = EvalOptions(
                    metrics=metrics_wanted,
                    samples=args.samples,
                    protocol_steps=defaults.BENCHMARK_PROTOCOL_STEPS,
                    protocol_images=defaults.BENCHMARK_PROTOCOL_IMAGES,
                    device=device,
                )
                evaluate(done, options)
            metrics = json.loads((done / "metrics.json").read_text())
            row = {"seed": seed, "steps": steps, "train_s": round(seconds.get(str(steps), float("nan")), 1)}
            row.update({k: v for k, v in metrics.items() if isinstance(v, int | float)})
            rows.append(row)
            print(json.dumps(row), flush=True)
    (args.out / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    names = [k for k in ("mig", "dci_disentanglement", "disentanglement", "rca") if k in rows[0]]
    print("| steps | seed | train s | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for r in rows:
        scores = " | ".join(f"{r[k]:.3f}" for k in names)
        print(f"| {r['steps']} | {r['seed']} | {r['train_s']} | {scores} |")


if __name__ == "__main__":
    main()
