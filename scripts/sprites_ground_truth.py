"""How close do discovered directions come to the true factors of `sprites`? Prints a markdown table.

Trains each method through the same code path as `zoo-dirs discover` (runs.execute) for several seeds,
and reports RCA and the factor alignment (recall: mean over factors of the best |cos| reached by a
direction; precision: mean over directions of their best |cos| with a factor), beside the controls
every method must beat: random orthonormal directions and the latent axes.

    python scripts/sprites_ground_truth.py --steps 2000 --seeds 0,1
    python scripts/sprites_ground_truth.py --methods hessian,orojar --image-size 16 --steps 400 \
        --batch 16 --lr 0.01 --eps-max 1.5 --seeds 0,1,2 --param init=sefa --param deformator=span

Every setting is the one given here (no method's recommended settings apply); ``--param`` goes to
every method.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from ganzoo_directions.interfaces import RunSettings
from ganzoo_directions.metrics import factor_alignment, random_directions
from ganzoo_directions.runs import RunRequest, build_generator, execute


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="baseline,two-shift,centroid")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--eps-max", type=float, default=RunSettings().eps_max)
    parser.add_argument("--param", action="append", default=[], help="KEY=VALUE for every method")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    options = {"image_size": args.image_size}
    params = dict(item.split("=", 1) for item in args.param)
    given = frozenset({"num_directions", "steps", "batch_size", "lr", "eps_max"})  # no recommendation
    generator = build_generator("sprites", options=options)
    true = generator.known_factors().directions
    K = generator.max_directions

    rows = []
    controls = {
        "random orthonormal": [
            factor_alignment(random_directions(K, generator.latent_dim, s), true) for s in seeds
        ],
        "latent axes": [factor_alignment(torch.eye(generator.latent_dim)[:K], true)],
        "true factors": [factor_alignment(true, true)],
    }
    for name, scores in controls.items():
        rows.append(
            (
                name,
                "-",
                mean_std([s["factor_recall"] for s in scores]),
                mean_std([s["direction_precision"] for s in scores]),
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            rcas, recalls, precisions = [], [], []
            for seed in seeds:
                settings = RunSettings(
                    num_directions=K,
                    steps=args.steps,
                    batch_size=args.batch,
                    lr=args.lr,
                    eps_max=args.eps_max,
                    seed=seed,
                    run_dir=Path(tmp) / f"{method}-{seed}",
                    log_every=100,
                )
                settings.run_dir.mkdir()
                request = RunRequest("sprites", method, options, None, params, settings, given)
                outcome = execute(request)
                metrics = outcome.directions.metrics
                if "rca" in metrics:  # closed-form methods have no reconstructor
                    rcas.append(metrics["rca"])
                recalls.append(metrics["factor_recall"])
                precisions.append(metrics["direction_precision"])
                print(f"{method} seed {seed}: {metrics}", flush=True)
            rca = mean_std(rcas) if rcas else "-"
            rows.append((method, rca, mean_std(recalls), mean_std(precisions)))
    print(
        f"\nsprites {args.image_size} px, K={K}, {args.steps} steps, lr {args.lr}, batch {args.batch}, "
        f"eps_max {args.eps_max}, params {params}, seeds {seeds}\n"
    )
    print("| directions | RCA (chance %.3f) | factor recall | direction precision |" % (1 / K))
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
