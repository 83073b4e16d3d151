"""How well does the embedded GAN imitate the sprites renderer? Factor distributions and a sample grid.

The factor regressor reads the eight factors off N GAN samples and off N renderer images (32 px); for
each factor the 1-D Wasserstein distance between the two distributions is printed (in units of the
factor's range), beside the same distance between two independent renderer samples (the noise floor).
Also writes a grid of samples and the calibration of the factor score (true, random and axis
directions on the analytic renderer; random and axis directions on the GAN).

    python scripts/sprites_gan_quality.py --samples 4096 --grid docs/images/sngan-sprites-samples.png
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.factors import factor_scores
from ganzoo_directions.files import atomic_write_bytes
from ganzoo_directions.metrics import random_directions
from ganzoo_directions.runs import build_generator
from ganzoo_directions.traversal import grid_png


def wasserstein_1d(a: torch.Tensor, b: torch.Tensor) -> float:
    """W1 between two equal-size 1-D samples: the mean gap between their sorted values."""
    return (a.sort().values - b.sort().values).abs().mean().item()


@torch.no_grad()
def predictions(generator, readout, n: int, seed: int) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    out = [
        readout.predict(generator.render(generator.sample_latents(min(256, n - i), rng)))
        for i in range(0, n, 256)
    ]
    return torch.cat(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gen", default="sngan-sprites")
    p.add_argument("--samples", type=int, default=4096)
    p.add_argument("--grid", type=Path, default=None)
    p.add_argument("--calibration-samples", type=int, default=512)
    args = p.parse_args()
    gan = build_generator(args.gen)
    renderer = build_generator("sprites", options={"image_size": gan.image_size})
    readout = gan.factor_readout()
    fake = predictions(gan, readout, args.samples, seed=1)
    real = predictions(renderer, readout, args.samples, seed=2)
    real2 = predictions(renderer, readout, args.samples, seed=3)
    print("| factor | W1 GAN vs renderer | W1 renderer vs renderer (floor) |\n|---|---|---|")
    for i, name in enumerate(readout.names):
        gap, floor = wasserstein_1d(fake[:, i], real[:, i]), wasserstein_1d(real2[:, i], real[:, i])
        print(f"| {name} | {gap:.4f} | {floor:.4f} |")
    if args.grid is not None:
        with torch.no_grad():
            images = gan.render(gan.sample_latents(64, torch.Generator().manual_seed(0)))
        atomic_write_bytes(args.grid, grid_png(images.view(8, 8, *images.shape[1:]), [""] * 8, [""] * 8))
        print(f"wrote {args.grid}")

    def score(generator, directions: torch.Tensor) -> dict:
        dset = DirectionSet(directions)
        return factor_scores(generator, dset, generator.factor_readout(), samples=args.calibration_samples)

    def row(label: str, results: list[dict]) -> None:
        cells = []
        for key in ("disentanglement", "completeness", "coverage"):
            values = [r[key] for r in results]
            cells.append(
                f"{statistics.mean(values):.3f}"
                + (f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else "")
            )
        print(f"| {label} | " + " | ".join(cells) + " |")

    analytic = build_generator("sprites")
    print("\n| directions | disentanglement | completeness | coverage |\n|---|---|---|---|")
    row("sprites (analytic): true factor directions", [score(analytic, analytic.known_factors().directions)])
    row(
        "sprites (analytic): random, 3 seeds", [score(analytic, random_directions(8, 8, s)) for s in range(3)]
    )
    row("sprites (analytic): latent axes", [score(analytic, torch.eye(8))])
    D = gan.latent_dim
    row(f"{args.gen}: random, 3 seeds", [score(gan, random_directions(D, D, s)) for s in range(3)])
    row(f"{args.gen}: latent axes", [score(gan, torch.eye(D))])


if __name__ == "__main__":
    main()
