"""Time the training step of each method against the floor and against a straightforward reference step.

Measured in one process, after warm-up, as the median over timed steps:

- ``step``: ganzoo-directions' training step (``Trainer.train_step``), steps/s and peak memory;
- ``floor``: the unavoidable parts of that step timed alone at the same batch: the generator forward for
  the unshifted image without autograd, the generator forward + backward to the latent for the S shifted
  images, the reconstructor forward + backward for the S pairs; ``step / floor`` should be <= 1.1;
- ``reference``: the same step written the way common research code writes it — separate generator calls
  with autograd everywhere, generator weights requiring grad, the shift vectors built in a Python loop,
  a host sync (``loss.item()``) every step; ``reference / step`` is the speed-up.

    python benchmarks/bench_step.py --gen sngan-sprites --batch 32 --device cpu
    python benchmarks/bench_step.py --gen stylegan2 -g size=1024 --batch 8 --methods two-shift --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ganzoo_directions.interfaces import RunSettings
from ganzoo_directions.options import parse_key_values
from ganzoo_directions.plugins import get_registry
from ganzoo_directions.runs import build_generator, pick_device
from ganzoo_directions.training import Trainer, sample_magnitudes


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def floor_parts(trainer: Trainer) -> dict[str, Callable[[], object]]:
    """The unavoidable work of one step, each part alone."""
    G, R, s = trainer.G, trainer.R, trainer.s
    B, S, K = s.batch_size, trainer.method.shifts_per_sample, trainer.K
    rng = torch.Generator(trainer.device).manual_seed(0)
    z = G.sample_latents(B, rng)
    z_shifted = G.sample_latents(B * S, rng)
    with torch.no_grad():
        x = G.render(z_shifted)
    k = torch.randint(0, K, (B * S,), device=trainer.device)

    def render_no_grad() -> object:
        with torch.no_grad(), trainer._autocast():
            return G.render(z)

    def render_backward() -> object:
        latent = z_shifted.clone().requires_grad_(True)
        with trainer._autocast():
            out = G.render(latent)
        out.float().sum().backward()
        return latent.grad

    def reconstructor_backward() -> object:
        R.zero_grad(set_to_none=True)
        with trainer._autocast():
            logits, eps_hat = R(x, x)
        (F.cross_entropy(logits.float(), k) + eps_hat.float().abs().mean()).backward()
        return logits

    return {
        "render (no grad)": render_no_grad,
        "render fwd+bwd to latent": render_backward,
        "reconstructor fwd+bwd": reconstructor_backward,
    }


def reference_step(trainer: Trainer) -> Callable[[], float]:
    """The straightforward step: autograd everywhere, weights requiring grad, a Python loop, a sync."""
    G, A, R, s = trainer.G, trainer.A, trainer.R, trainer.s
    B, S, K = s.batch_size, trainer.method.shifts_per_sample, trainer.K
    params = list(A.parameters()) + list(R.parameters())
    opt = torch.optim.Adam(params, lr=s.lr)
    weight_lambda = trainer.method.hparams["shift_weight"]

    def step() -> float:
        G.requires_grad_(True)  # the usual oversight: gradients for the frozen generator's weights too
        z = G.sample_latents(B)
        images = [G.render(z)]
        total_loss, shift_sum = 0.0, torch.zeros_like(z)
        for _ in range(S):
            k = torch.randint(0, K, (B,), device=trainer.device)
            eps = sample_magnitudes((B,), s.eps_max, s.eps_min, None, trainer.device)
            basis = torch.zeros(B, K, device=trainer.device)
            for i in range(B):  # shifts built one sample at a time
                basis[i, k[i]] = eps[i]
            shift = A(basis.argmax(1), basis.sum(1))
            shift_sum = shift_sum + shift
            images.append(G.render(z + shift_sum))  # a separate generator call per image
            logits, eps_hat = R(images[-2], images[-1])
            total_loss = (
                total_loss + F.cross_entropy(logits, k) + weight_lambda * (eps_hat - eps).abs().mean()
            )
        opt.zero_grad()
        G.zero_grad()
        total_loss.backward()
        opt.step()
        G.requires_grad_(False)
        return float(total_loss.item())  # a host sync every step

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gen", default="sngan-sprites")
    p.add_argument("-g", "--gen-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--weights", default=None)
    p.add_argument("--methods", default="baseline,two-shift,centroid")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--directions", type=int, default=0, help="0: 128 capped at the latent dimension")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="auto")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--grad-checkpoint", action="store_true")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    generator = build_generator(
        args.gen, weights=args.weights, options=parse_key_values(args.gen_option, flag="-g"), device=device
    )
    K = args.directions or min(128, generator.max_directions)
    results = []
    for name in args.methods.split(","):
        method = get_registry().method(name).cls()
        settings = RunSettings(
            num_directions=K,
            batch_size=args.batch,
            device=device,
            amp=args.amp,
            channels_last=not args.no_channels_last,
            compile=args.compile,
            grad_checkpoint=args.grad_checkpoint,
        )
        trainer = Trainer(method, generator, settings)
        dev = trainer.device
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        step = median_seconds(trainer.train_step, dev, args.warmup, args.repeats)
        memory = peak_memory_mb(dev)
        parts = {
            label: median_seconds(fn, dev, args.warmup, args.repeats)
            for label, fn in floor_parts(trainer).items()
        }
        floor = sum(parts.values())
        row = {
            "method": name,
            "generator": args.gen,
            "device": str(dev),
            "batch": args.batch,
            "K": K,
            "amp": args.amp,
            "channels_last": not args.no_channels_last,
            "compile": args.compile,
            "grad_checkpoint": args.grad_checkpoint,
            "step_s": step,
            "steps_per_s": 1 / step,
            "peak_memory_mb": memory,
            "floor_s": floor,
            "parts_s": parts,
            "step_over_floor": step / floor,
        }
        if not args.no_reference:
            reference = median_seconds(reference_step(trainer), dev, args.warmup, args.repeats)
            row.update(reference_s=reference, reference_over_step=reference / step)
        results.append(row)
        print(json.dumps(row), flush=True)
    print("\n| method | steps/s | peak MB | step / floor | reference / step |\n|---|---|---|---|---|")
    for r in results:
        ref = f"{r['reference_over_step']:.2f}x" if "reference_over_step" in r else "-"
        cells = [
            r["method"],
            f"{r['steps_per_s']:.2f}",
            f"{r['peak_memory_mb']:.0f}",
            f"{r['step_over_floor']:.2f}",
            ref,
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
