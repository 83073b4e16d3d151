"""Train the factor readout of a testbed renderer (``shapes3d``, ``dsprites``) and write it into the plugin.

The readout (``ganzoo_directions_testbeds.readout.FactorClassifier``) classifies every factor of an image
over that factor's grid values. It trains on fresh renders of the grid with their indices (half of each
batch at 32 px, half at 64 px, so it reads the renderer and the 32 px GANs alike); cross-entropy, Adam,
seeded. It then prints the per-factor accuracy on held-out renders at both sizes, and writes the
fp16 weights (with the grid in the file's metadata).

    python scripts/train_testbed_readout.py --renderer shapes3d --steps 3000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from ganzoo_directions_testbeds.readout import FactorClassifier, weights_file

from ganzoo_directions.files import atomic_write_bytes
from ganzoo_directions.runs import build_generator

PLUGIN_WEIGHTS = Path(__file__).resolve().parents[1] / (
    "plugins/ganzoo-directions-testbeds/ganzoo_directions_testbeds/weights"
)


@torch.no_grad()
def accuracy(model: FactorClassifier, renderer, n: int, seed: int) -> list[float]:
    """Per-factor accuracy on ``n`` held-out renders of the grid."""
    rng = torch.Generator().manual_seed(seed)
    hits = torch.zeros(len(model.levels))
    for start in range(0, n, 500):
        idx = renderer.sample_grid(min(500, n - start), rng)
        hits += (model.classify(renderer.render_indices(idx)) == idx).float().sum(0)
    return (hits / n).tolist()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--renderer", required=True, choices=("shapes3d", "dsprites"))
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help=f"default: {PLUGIN_WEIGHTS}/readout-RENDERER...")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    renderers = {s: build_generator(args.renderer, options={"image_size": s}) for s in (32, 64)}
    levels = tuple(renderers[32].factors.values())
    channels = renderers[32].image_channels
    model = FactorClassifier(levels, channels)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    rng = torch.Generator().manual_seed(args.seed + 1)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        half = args.batch // 2
        with torch.no_grad():
            idx32, idx64 = renderers[32].sample_grid(half, rng), renderers[64].sample_grid(half, rng)
            images32 = renderers[32].render_indices(idx32)
            images64 = renderers[64].render_indices(idx64)
        loss = (model.loss(images32, idx32) + model.loss(images64, idx64)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0:
            print(
                json.dumps({"step": step, "loss": loss.item(), "minutes": (time.perf_counter() - start) / 60})
            )
    model.eval()
    report = {
        "renderer": args.renderer,
        "steps": args.steps,
        "minutes": round((time.perf_counter() - start) / 60, 1),
        "factors": list(renderers[32].factors),
        "accuracy_32px": accuracy(model, renderers[32], 5000, 99),
        "accuracy_64px": accuracy(model, renderers[64], 5000, 98),
    }
    print(json.dumps(report))
    from safetensors.torch import save

    tensors = {k: v.half().contiguous() for k, v in model.state_dict().items()}
    meta = {"levels": json.dumps(list(levels)), "channels": str(channels), "report": json.dumps(report)}
    out = args.out or PLUGIN_WEIGHTS / weights_file(args.renderer)
    atomic_write_bytes(out, save(tensors, metadata=meta))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
