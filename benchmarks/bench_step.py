"""Time the training step of each method against the floor and against a straightforward reference step.

Measured in one process, after warm-up, as the median over timed steps (the step and the floor's parts
timed in interleaved rounds, so that machine drift falls on all of them alike):

- ``step``: ganzoo-directions' training step (``Trainer.train_step``), steps/s and peak memory (read
  after two steps alone, before anything else runs: CUDA's peak allocated memory, or on CPU the
  process's peak resident set, which includes the loaded models — compare runs in separate processes);
- ``floor``: the unavoidable parts of that step timed alone at the same batch: the generator forward for
  the unshifted image without autograd, the generator forward + backward to the latent for the S shifted
  images, the reconstructor forward + backward for the S pairs (backward into the shifted images too, as
  the step needs it); ``step / floor`` should be <= 1.1;
- ``reference``: the same step written the way common research code writes it — separate generator calls
  with autograd everywhere, generator weights requiring grad, the shift vectors built in a Python loop,
  a host sync (``loss.item()``) every step; ``reference / step`` is the speed-up.

    python benchmarks/bench_step.py --gen sngan-sprites --batch 32 --device cpu
    python benchmarks/bench_step.py --gen stylegan2 --random-weights -g size=1024 --batch 8 \
        --methods two-shift --device cuda
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

from ganzoo_directions.deformators import sample_magnitudes
from ganzoo_directions.interfaces import RunSettings
from ganzoo_directions.options import parse_key_values
from ganzoo_directions.plugins import get_registry
from ganzoo_directions.runs import build_generator, pick_device
from ganzoo_directions.training import Trainer, to_memory_format


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    return interleaved_medians({"fn": fn}, device, warmup, repeats)["fn"]


def interleaved_medians(
    fns: dict[str, Callable[[], object]], device: torch.device, warmup: int, repeats: int, rounds: int = 3
) -> dict[str, float]:
    """Median seconds per call of each function, timed in `rounds` interleaved rounds (all functions
    in each round), so that drift of the machine (other load, clocks, allocator warm-up) falls on all
    of them alike and the ratios between them stay meaningful."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(per_round):
                start = time.perf_counter()
                fn()
                sync(device)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


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
        x0 = G.render(z)  # (B, C, H, W)
        x = G.render(z_shifted)  # (B*S, C, H, W)
    k = torch.randint(0, K, (B * S,), device=trainer.device)

    def render_no_grad() -> object:
        with torch.no_grad(), trainer.autocast():
            return G.render(z)

    def render_backward() -> object:
        latent = z_shifted.clone().requires_grad_(True)
        with trainer.autocast():
            out = G.render(latent)
        out.float().sum().backward()
        return latent.grad

    def reconstructor_backward() -> object:
        # the pairs of the step: (x_{s-1}, x_s); the gradient flows into every shifted image (it must
        # reach the deformator), so the images are leaves that require grad, x_0 does not
        R.zero_grad(set_to_none=True)
        after = x.clone().requires_grad_(True)
        xs = after.view(B, S, *x.shape[1:])
        before = torch.cat([x0[:, None], xs[:, :-1]], dim=1).flatten(0, 1)
        with trainer.autocast():
            logits, eps_hat = R(before, after)
        (F.cross_entropy(logits.float(), k) + eps_hat.float().abs().mean()).backward()
        return logits

    return {
        "render (no grad)": render_no_grad,
        "render fwd+bwd to latent": render_backward,
        "reconstructor fwd+bwd": reconstructor_backward,
    }


def method_parts(trainer: Trainer) -> dict[str, Callable[[], object]]:
    """Work of the step outside the floor, each part alone: the deformator and the optimisers."""
    s, S, K = trainer.s, trainer.method.shifts_per_sample, trainer.K
    k = torch.randint(0, K, (s.batch_size * S,), device=trainer.device)
    eps = torch.rand(s.batch_size * S, device=trainer.device)

    def deformator_backward() -> object:
        trainer.A.zero_grad(set_to_none=True)
        trainer.A(k, eps).sum().backward()
        return None

    def optimiser_steps() -> object:
        trainer.opt_A.step()
        trainer.opt_R.step()
        return None

    return {"deformator fwd+bwd": deformator_backward, "optimiser steps": optimiser_steps}


def reference_step(trainer: Trainer) -> Callable[[], float]:
    """The straightforward step: autograd everywhere, weights requiring grad, a Python loop, a sync,
    default (contiguous) memory format, a plain Adam."""
    G, A, R, s = trainer.G, trainer.A, trainer.R, trainer.s
    to_memory_format(G, torch.contiguous_format)  # common research code never converts its models
    to_memory_format(R, torch.contiguous_format)
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
    p.add_argument("--random-weights", action="store_true", help="an untrained generator (timing only)")
    p.add_argument("--methods", default="baseline,two-shift,centroid")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--directions", type=int, default=0, help="0: 128 capped at the latent dimension")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="auto")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--grad-checkpoint", action="store_true")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    generator = build_generator(
        args.gen,
        weights=args.weights,
        options=parse_key_values(args.gen_option, flag="-g"),
        device=device,
        random_weights=args.random_weights,
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
        for _ in range(2):  # the step alone first: peak memory is the step's, not the floor parts'
            trainer.train_step()
        sync(dev)
        memory = peak_memory_mb(dev)
        floor_fns, extra_fns = floor_parts(trainer), method_parts(trainer)
        timed = interleaved_medians(
            {"step": trainer.train_step, **floor_fns, **extra_fns}, dev, args.warmup, args.repeats
        )
        step = timed["step"]
        parts = {label: timed[label] for label in floor_fns}
        floor = sum(parts.values())
        extra = {label: timed[label] for label in extra_fns}
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
            "method_parts_s": extra,
            "step_over_floor_and_method": step / (floor + sum(extra.values())),
        }
        if not args.no_reference:
            reference = median_seconds(reference_step(trainer), dev, args.warmup, args.repeats)
            row.update(reference_s=reference, reference_over_step=reference / step)
        results.append(row)
        print(json.dumps(row), flush=True)
    print(
        "\n| method | steps/s | peak MB | step / floor | step / (floor + deformator + optimiser) "
        "| reference / step |\n|---|---|---|---|---|---|"
    )
    for r in results:
        ref = f"{r['reference_over_step']:.2f}x" if "reference_over_step" in r else "-"
        cells = [
            r["method"],
            f"{r['steps_per_s']:.2f}",
            f"{r['peak_memory_mb']:.0f}",
            f"{r['step_over_floor']:.2f}",
            f"{r['step_over_floor_and_method']:.2f}",
            ref,
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
