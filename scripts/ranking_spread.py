"""How unequal a set's directions are: the coefficient of variation of their image change (docs/results.md,
section 2), for benchmark cells. The image change is the ranking score of ganzoo_directions.ranking,
recomputed (trained cells store their per-direction RCA ranking instead).

    python scripts/ranking_spread.py runs/bench/main oracle,sefa,ganspace,random,axes,baseline,centroid
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.ranking import image_change
from ganzoo_directions.runs import build_generator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", type=Path, help="a zoo-dirs benchmark folder")
    p.add_argument("rows", help="comma-separated row labels")
    p.add_argument("--magnitude", type=float, default=3.0)
    args = p.parse_args()
    print("| directions | CV of the image change per direction |\n|---|---|")
    generator = None
    for row in args.rows.split(","):
        cvs = []
        for cell in sorted((args.bench / row).iterdir()):
            dset = DirectionSet.load(cell)
            if generator is None:
                made_for = dset.spec["generator"]
                generator = build_generator(made_for["name"], options=made_for.get("options"))
            scores = image_change(generator, dset, samples=64, magnitude=args.magnitude)
            cvs.append((scores.std(unbiased=False) / scores.mean()).item())
        spread = statistics.stdev(cvs) if len(cvs) > 1 else 0.0
        print(f"| {row} | {statistics.mean(cvs):.2f} ± {spread:.2f} |")


if __name__ == "__main__":
    main()
