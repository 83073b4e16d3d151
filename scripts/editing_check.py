"""Verify real-image editing where the truth is known (docs/editing.md).

On the embedded GAN `sngan-sprites`: draw real images from the procedural renderer (with their true
factors; the GAN never saw them), project them (`zoo-dirs project`'s optimisation), then move each
projected latent along the direction of a set that best matches one factor (strength x purity in the
set's factor-effect matrix, as the factor score measures it) and read the factors off the edited
images. Reports the projection quality (PSNR; the readout's error on the reconstructions against the
truth, next to its error on the real images themselves) and, per factor, how much the intended
factor moved against the mean of the others, with a random direction of the same length for scale.

    python scripts/editing_check.py --images 256 --out runs/editing-check.json
    python scripts/editing_check.py --directions runs/first   # a trained set instead of SeFa's
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.factors import effect_matrix
from ganzoo_directions.files import atomic_write_text
from ganzoo_directions.interfaces import RunSettings
from ganzoo_directions.projection import project
from ganzoo_directions.ranking import equal_distance_shift
from ganzoo_directions.runs import build_generator, build_method


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=256, help="real renderer images to project")
    parser.add_argument("--steps", type=int, default=300, help="projection steps")
    parser.add_argument("--magnitude", type=float, default=3.0, help="latent distance of each edit")
    parser.add_argument("--directions", default=None, help="a direction set [default: SeFa, K = 16]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    G = build_generator("sngan-sprites")
    readout = G.factor_readout()
    names = readout.names
    if args.directions:
        dset = DirectionSet.load(args.directions)
        which = str(args.directions)
    else:
        result = build_method("sefa").discover(G, RunSettings(num_directions=16, steps=0))
        dset, which = DirectionSet(result.directions), "sefa (K = 16)"
    effects = effect_matrix(G, dset, readout, samples=512)  # (K, F)
    score = effects * effects / effects.sum(1, keepdim=True).clamp_min(1e-9)  # strength x purity
    chosen = score.argmax(0).tolist()  # per factor: the best-matching direction

    rng = torch.Generator().manual_seed(args.seed)
    images, truth = readout.labelled(args.images, rng)  # (N, 3, 32, 32), (N, F) in [0, 1]
    start = time.time()
    projection = project(G, images, steps=args.steps, loss="pixel", seed=args.seed)
    seconds = time.time() - start
    z = projection.latents  # (N, D)
    with torch.no_grad():
        on_real = readout.predict(images)
        on_render = readout.predict(projection.renders)
        rows = []
        random_dirs = torch.nn.functional.normalize(
            torch.randn(len(names), G.latent_dim, generator=rng), dim=1
        )
        random_set = DirectionSet(random_dirs)
        for f, name in enumerate(names):
            k = chosen[f]
            deltas, random_deltas = [], []
            for sign in (1.0, -1.0):
                moved = readout.predict(
                    G.render_shifted(z, equal_distance_shift(dset, k, sign * args.magnitude, len(z)))
                )
                deltas.append((moved - on_render).abs())
                moved = readout.predict(
                    G.render_shifted(z, equal_distance_shift(random_set, f, sign * args.magnitude, len(z)))
                )
                random_deltas.append((moved - on_render).abs())
            delta, random_delta = torch.cat(deltas).mean(0), torch.cat(random_deltas).mean(0)  # (F,)
            others = torch.cat([delta[:f], delta[f + 1 :]]).mean()
            random_others = torch.cat([random_delta[:f], random_delta[f + 1 :]]).mean()
            rows.append(
                {
                    "factor": name,
                    "direction": k,
                    "moved": float(delta[f]),
                    "others": float(others),
                    "selectivity": float(delta[f] / others.clamp_min(1e-9)),
                    "random_moved": float(random_delta[f]),
                    "random_selectivity": float(random_delta[f] / random_others.clamp_min(1e-9)),
                }
            )
    psnr = torch.tensor(projection.psnr)
    report = {
        "directions": which,
        "images": args.images,
        "steps": args.steps,
        "loss": projection.loss,
        "seconds": seconds,
        "psnr_mean": float(psnr.mean()),
        "psnr_median": float(psnr.median()),
        "psnr_p10": float(psnr.quantile(0.1)),
        "readout_error_real": dict(zip(names, (on_real - truth).abs().mean(0).tolist(), strict=True)),
        "readout_error_reconstruction": dict(
            zip(names, (on_render - truth).abs().mean(0).tolist(), strict=True)
        ),
        "edits": rows,
    }
    print(f"{args.images} real renderer images, {args.steps} steps ({projection.loss} loss), {seconds:.0f} s")
    print(
        f"PSNR of the reconstructions: mean {report['psnr_mean']:.1f} dB, "
        f"median {report['psnr_median']:.1f}, 10th percentile {report['psnr_p10']:.1f}"
    )
    print("\n| factor | readout error on the real images | on their reconstructions |\n|---|---|---|")
    for name in names:
        print(
            f"| {name} | {report['readout_error_real'][name]:.3f} "
            f"| {report['readout_error_reconstruction'][name]:.3f} |"
        )
    print(
        f"\nEdits of {args.magnitude:g} along the best-matching direction of {which} (mean |change| of the "
        "factor readout, factors in [0, 1]):\n"
    )
    print(
        "| factor | direction | intended factor moved | others (mean) | selectivity "
        "| random direction: moved / selectivity |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['factor']} | {r['direction']} | {r['moved']:.3f} | {r['others']:.3f} "
            f"| {r['selectivity']:.1f}x | {r['random_moved']:.3f} / {r['random_selectivity']:.1f}x |"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
