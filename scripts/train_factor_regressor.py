"""Train the sprites factor regressor that the `factors` metric reads factors with.

Renders sprites with known factor values — half of each batch at 32 px (the embedded GAN's size), half
at 64 px (the analytic generator's default, area-downsampled by the model) so that it reads both —
fits a small CNN by mean squared error on the factors scaled to [0, 1], reports the held-out error per
factor at both sizes, and writes the weights (fp16 safetensors) into the sprites plugin. Seeded.

    python scripts/train_factor_regressor.py --steps 6000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from ganzoo_directions_sprites import FACTORS
from ganzoo_directions_sprites.regressor import INPUT_SIZE, WEIGHTS, FactorRegressor
from safetensors.torch import save

from ganzoo_directions.files import atomic_write_bytes
from ganzoo_directions.runs import build_generator

DEFAULT_OUT = (
    Path(__file__).resolve().parent.parent
    / "plugins/ganzoo-directions-sprites/ganzoo_directions_sprites/weights"
)


def labelled_batch(sprites, n: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    z = sprites.sample_latents(n, rng)
    labels = (sprites.factor_values(z) - sprites.low) / (sprites.high - sprites.low)  # (n, F) in [0, 1]
    return sprites.render(z), labels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    sprites = build_generator("sprites", options={"image_size": INPUT_SIZE})
    big = build_generator("sprites")  # 64 px
    model = FactorRegressor()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    rng = torch.Generator().manual_seed(args.seed + 1)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        with torch.no_grad():
            images, labels = labelled_batch(sprites, args.batch // 2, rng)
            images64, labels64 = labelled_batch(big, args.batch // 2, rng)
        loss = (F.mse_loss(model(images), labels) + F.mse_loss(model(images64), labels64)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0:
            print(
                json.dumps({"step": step, "mse": loss.item(), "minutes": (time.perf_counter() - start) / 60}),
                flush=True,
            )
    model.eval()
    held_out = torch.Generator().manual_seed(10_000 + args.seed)
    with torch.no_grad():
        images, labels = labelled_batch(sprites, 4096, held_out)
        error = (model(images) - labels).abs().mean(0)
        images64, labels64 = labelled_batch(big, 1024, torch.Generator().manual_seed(20_000 + args.seed))
        error64 = (model(images64) - labels64).abs().mean(0)
    report = {
        name: {"mae_32px": round(float(a), 4), "mae_64px": round(float(b), 4)}
        for name, a, b in zip(FACTORS, error, error64, strict=True)
    }
    print(json.dumps(report, indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.half().contiguous() for k, v in model.state_dict().items()}
    meta = {"steps": str(args.steps), "seed": str(args.seed), "held_out_mae": json.dumps(report)}
    atomic_write_bytes(args.out / WEIGHTS, save(tensors, metadata=meta))
    print(f"wrote {args.out / WEIGHTS}")


if __name__ == "__main__":
    main()
