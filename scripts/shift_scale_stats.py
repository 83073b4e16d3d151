"""What scale a latent shift should have on a generator: the statistics the shift laws read.

For each truncation psi it prints, over 4,096 latents of the generator's prior (seed 0): the median
latent norm |w| (what ``centroid-ortho``'s eps_max law read before), the median distance to the mean
latent |w - mean w| (the spread around it), the standard deviation along random unit directions and
the largest along a latent axis — and the eps_max each law derives (half the statistic, to the
nearest 0.5).

    python scripts/shift_scale_stats.py --gen stylegan2-shapes3d --truncations 1,0.7,0.5
"""

from __future__ import annotations

import argparse

import torch

from ganzoo_directions.runs import build_generator


def half_to_half(value: float) -> float:
    """Half of ``value`` to the nearest 0.5, at least 0.5 (the laws' rounding)."""
    return max(1.0, round(value)) / 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gen", required=True)
    p.add_argument("--truncations", default="1")
    p.add_argument("--samples", type=int, default=4096)
    args = p.parse_args()
    print("| psi | median |w| | median |w - mean w| | std along a random direction | max std along an axis "
          "| eps_max from |w| | eps_max from |w - mean w| |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for psi in (float(t) for t in args.truncations.split(",")):
        options = {"truncation": psi} if psi != 1 else {}
        G = build_generator(args.gen, options=options)
        with torch.no_grad():
            w = G.sample_latents(args.samples, torch.Generator().manual_seed(0))  # (n, D)
        norm = w.norm(dim=1).median().item()
        spread = (w - w.mean(0)).norm(dim=1).median().item()
        units = torch.nn.functional.normalize(
            torch.randn(256, w.shape[1], generator=torch.Generator().manual_seed(1))
        )
        along = (w @ units.t()).std(0).mean().item()
        print(
            f"| {psi:g} | {norm:.2f} | {spread:.2f} | {along:.2f} | {w.std(0).max().item():.2f} "
            f"| {half_to_half(norm):g} | {half_to_half(spread):g} |"
        )


if __name__ == "__main__":
    main()
