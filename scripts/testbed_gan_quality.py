"""How well does a testbed GAN imitate its renderer's factor grid? Per-factor figures and a sample grid.

The testbed's factor classifier reads every factor off N GAN samples and off N renders of the grid (at
the GAN's resolution). Per factor it prints

- the classifier's accuracy on the renders (the ruler's own error);
- W1 between the factor's expected grid position on GAN samples and on renders (in units of the
  factor's range), beside W1 between two independent render sets (the sampling floor);
- the total-variation distance between the histogram of predicted grid values on GAN samples and the
  uniform histogram of the data set (0: every value as often as in the data; 1: disjoint);
- the classifier's mean confidence (max softmax) on GAN samples and on renders.

And, for the images as a whole, the *re-render error*: each image is classified, the grid point read
is rendered, and the mean absolute pixel difference (in [-1, 1] units) between the image and that
re-render is taken — for GAN samples, and for renders (where it is the classifier's own floor). A GAN
sample that is a clean picture of some grid point scores near the floor.

    python scripts/testbed_gan_quality.py --gen stylegan2-shapes3d \
        --grid docs/images/stylegan2-shapes3d-samples.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from ganzoo_directions_testbeds.readout import shipped
from sprites_gan_quality import wasserstein_1d

from ganzoo_directions.runs import build_generator

TESTBED = {"stylegan2-shapes3d": "shapes3d", "sngan-dsprites": "dsprites"}


@torch.no_grad()
def read(model, images_of, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Expected units, argmax classes and max-softmax confidences, each ``(n, F)``."""
    rng = torch.Generator().manual_seed(seed)
    units, classes, confidence = [], [], []
    for start in range(0, n, 256):
        images = images_of(min(256, n - start), rng)
        units.append(model.expected_units(images))
        blocks = model.split(model(images))
        classes.append(torch.stack([b.argmax(1) for b in blocks], 1))
        confidence.append(torch.stack([b.softmax(1).max(1).values for b in blocks], 1))
    return torch.cat(units), torch.cat(classes), torch.cat(confidence)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gen", required=True, choices=tuple(TESTBED))
    p.add_argument("--weights", default=None, help="another weights file (default: the shipped one)")
    p.add_argument("--samples", type=int, default=4096)
    p.add_argument("--grid", type=Path, default=None, help="write 64 samples (seed 0) as a PNG grid")
    args = p.parse_args()
    torch.set_num_threads(1)
    gan = build_generator(args.gen, weights=args.weights)
    renderer = build_generator(TESTBED[args.gen], options={"image_size": gan.image_size})
    model = shipped(TESTBED[args.gen])
    levels = model.levels

    def gan_images(n, rng):
        return gan.render(gan.sample_latents(n, rng))

    truth = []

    def render_images(n, rng):
        idx = renderer.sample_grid(n, rng)
        truth.append(idx)
        return renderer.render_indices(idx)

    fake_u, fake_c, fake_conf = read(model, gan_images, args.samples, 1)
    real_u, real_c, real_conf = read(model, render_images, args.samples, 2)
    accuracy = (real_c == torch.cat(truth)).float().mean(0)
    real2_u, _, _ = read(model, render_images, args.samples, 3)
    rows = []
    print("| factor | values | accuracy on renders | W1 GAN vs renders | W1 floor | TV of values | "
          "confidence GAN / renders |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for i, name in enumerate(renderer.factor_names):
        hist = torch.bincount(fake_c[:, i], minlength=levels[i]).float() / len(fake_c)
        tv = 0.5 * (hist - 1 / levels[i]).abs().sum().item()
        row = {
            "factor": name,
            "values": levels[i],
            "accuracy": accuracy[i].item(),
            "w1": wasserstein_1d(fake_u[:, i], real_u[:, i]),
            "w1_floor": wasserstein_1d(real2_u[:, i], real_u[:, i]),
            "tv": tv,
            "confidence_gan": fake_conf[:, i].mean().item(),
            "confidence_renders": real_conf[:, i].mean().item(),
        }
        rows.append(row)
        print(
            f"| {name} | {levels[i]} | {row['accuracy']:.3f} | {row['w1']:.4f} | {row['w1_floor']:.4f} | "
            f"{tv:.3f} | {row['confidence_gan']:.2f} / {row['confidence_renders']:.2f} |"
        )
    with torch.no_grad():
        rng = torch.Generator().manual_seed(4)
        fake = gan.render(gan.sample_latents(512, rng))
        real = renderer.render_indices(renderer.sample_grid(512, rng))
        rerender = {
            kind: (renderer.render_indices(model.classify(x)) - x).abs().mean().item()
            for kind, x in (("gan", fake), ("renders", real))
        }
    print(f"re-render error: GAN samples {rerender['gan']:.4f}, renders {rerender['renders']:.4f} (floor)")
    print(json.dumps({"gen": args.gen, "samples": args.samples, "rows": rows, "rerender": rerender}))
    if args.grid is not None:
        import torchvision.utils as vutils

        with torch.no_grad():
            x = gan.render(gan.sample_latents(64, torch.Generator().manual_seed(0)))
        x = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        vutils.save_image(x * 0.5 + 0.5, args.grid, nrow=8, padding=2)
        print(f"wrote {args.grid}")


if __name__ == "__main__":
    main()
