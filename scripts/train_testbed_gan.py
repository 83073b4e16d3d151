"""Train a GAN on a ground-truth testbed renderer (``shapes3d``, ``dsprites``) for the project to ship.

Two generator families, each the very model code its plugin loads:

- ``--arch stylegan2``: the ``stylegan2`` plugin's ``Generator`` (mapping network, modulated convs,
  skip RGB outputs; rosinality's parameter names), with style mixing (probability ``--mixing``) so
  that W+ layer ranges mean something; exported in rosinality's layout (``g_ema`` keys and
  ``latent_avg``) as fp16 safetensors, which ``--gen stylegan2 --weights FILE`` reads.
- ``--arch sngan``: the ``sngan`` plugin's ResNet generator (as ``sngan-sprites``).

Real images are fresh renders of the factor grid (``render_indices(sample_grid(...))``: the data set
as DeepMind ships it, drawn endlessly). Discriminator: spectrally normalised conv net, hinge loss,
Adam; an EMA of the generator's weights is what ships. Seeded; checkpoints atomically every 500
steps (``--resume`` continues exactly); logs JSON lines and writes a sample grid into ``--out``.

    python scripts/train_testbed_gan.py --renderer shapes3d --arch stylegan2 --out runs/gan-shapes3d
    python scripts/train_testbed_gan.py --renderer shapes3d --arch stylegan2 --out runs/gan-shapes3d \
        --export plugins/ganzoo-directions-stylegan2/ganzoo_directions_stylegan2/weights/\
stylegan2-shapes3d.safetensors
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from train_sprites_gan import discriminator, ema_update, write_row

from ganzoo_directions.files import atomic_torch_save, atomic_write_bytes
from ganzoo_directions.runs import build_generator


def parse_widths(text: str, size: int) -> tuple[tuple[int, int], ...]:
    """``"128,128,64,32"`` -> ((4, 128), (8, 128), (16, 64), (32, 32)): one width per resolution."""
    widths = [int(c) for c in text.split(",")]
    if 4 * 2 ** (len(widths) - 1) != size:
        raise SystemExit(f"--channels {text} gives {4 * 2 ** (len(widths) - 1)} px, not --size {size}")
    return tuple((4 * 2**i, w) for i, w in enumerate(widths))


class StyleGAN2Trainee(torch.nn.Module):
    """The plugin's StyleGAN2 ``Generator`` with z -> image and style mixing, for training."""

    def __init__(self, size: int, widths: str, style_dim: int, n_mlp: int, mixing: float) -> None:
        super().__init__()
        from ganzoo_directions_stylegan2.model import Generator, StyleGAN2Config

        w = parse_widths(widths, size)
        self.config = StyleGAN2Config(size, style_dim, n_mlp, max_channels=max(c for _, c in w), widths=w)
        self.net = Generator(self.config)
        self.mixing = mixing
        self.latent_dim = style_dim

    def forward(self, z: torch.Tensor, mix: torch.Tensor | None = None) -> torch.Tensor:
        n = self.config.n_latent
        w = self.net.mapping(z)[:, None, :].expand(-1, n, -1)  # (B, n_latent, style_dim)
        if mix is not None:  # style mixing: the entries from a random crossover on come from another z
            cut = random.randint(1, n - 1)
            w2 = self.net.mapping(mix)[:, None, :].expand(-1, n, -1)
            w = torch.cat([w[:, :cut], w2[:, cut:]], dim=1)
        return self.net.synthesis(w)

    def export(self) -> dict[str, torch.Tensor]:
        tensors = {f"g_ema.{k}": v for k, v in self.net.state_dict().items()}
        tensors["latent_avg"] = self.net.mean_latent(n=10_000)
        return tensors


class SNGANTrainee(torch.nn.Module):
    def __init__(self, size: int, widths: str, latent_dim: int, channels: int) -> None:
        super().__init__()
        from ganzoo_directions_sngan import ResNetGenerator, ResNetGeneratorConfig

        config = ResNetGeneratorConfig(tuple(int(c) for c in widths.split(",")), latent_dim, channels)
        if config.image_size != size:
            raise SystemExit(f"--channels {widths} gives {config.image_size} px, not --size {size}")
        self.config = config
        self.net = ResNetGenerator(config)
        self.mixing = 0.0
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor, mix: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z)

    def export(self) -> dict[str, torch.Tensor]:
        return dict(self.net.state_dict())


@torch.no_grad()
def factor_coverage(
    renderer: str, names: tuple[str, ...], G_ema: torch.nn.Module, latent_dim: int, n: int = 512
) -> dict[str, float]:
    """Per factor, the total-variation distance between the testbed classifier's histogram of grid
    values on ``n`` EMA samples and the data set's uniform one (0: every value as often as in the data).
    Empty when no classifier is shipped yet."""
    try:
        from ganzoo_directions_testbeds.readout import shipped

        model = shipped(renderer)
    except Exception:
        return {}
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(321))
    device = next(G_ema.parameters()).device
    classes = model.to(device).classify(G_ema(z.to(device)).clamp(-1, 1)).cpu()  # (n, F)
    model.cpu()
    out = {}
    for i, (name, levels) in enumerate(zip(names, model.levels, strict=True)):
        hist = torch.bincount(classes[:, i], minlength=levels).float() / n
        out[name] = round(0.5 * (hist - 1 / levels).abs().sum().item(), 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--renderer", required=True, choices=("shapes3d", "dsprites"))
    p.add_argument("--arch", default="stylegan2", choices=("stylegan2", "sngan"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--channels", default="128,128,64,32", help="generator width per resolution, 4 px up")
    p.add_argument("--latent-dim", type=int, default=64, help="z (and, for StyleGAN2, w) dimension")
    p.add_argument("--n-mlp", type=int, default=4, help="StyleGAN2 mapping layers")
    p.add_argument("--mixing", type=float, default=0.5, help="StyleGAN2 style-mixing probability")
    p.add_argument("--d-width", type=int, default=32)
    p.add_argument("--d-steps", type=int, default=1, help="discriminator updates per generator update")
    p.add_argument("--minibatch-std", action="store_true", help="StyleGAN's minibatch-stddev channel in D")
    p.add_argument(
        "--loss",
        default="hinge",
        choices=("hinge", "logistic"),
        help="hinge with a spectrally normalised D, or StyleGAN2's non-saturating logistic loss with R1 "
        "on a plain D",
    )
    p.add_argument("--r1", type=float, default=0.1, help="R1 weight gamma (logistic loss; every 16 steps)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--minutes", type=float, default=90.0, help="stop after this much training time")
    p.add_argument("--lr-g", type=float, default=None, help="default: 2e-3 for stylegan2, 2e-4 for sngan")
    p.add_argument("--lr-d", type=float, default=2e-4)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--device", default="cpu", help="cpu or cuda (draws stay on the CPU: same data either way)"
    )
    p.add_argument("--resume", action="store_true")
    p.add_argument("--export", type=Path, default=None, help="write the EMA generator (fp16 safetensors)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.out / "checkpoint.pt"

    data = build_generator(args.renderer, options={"image_size": args.size})  # the renderer: real images
    device = torch.device(args.device)
    renderer = copy.deepcopy(data).to(device)  # renders on the device; grid draws stay on the CPU
    channels = data.image_channels
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    if args.arch == "stylegan2":
        if channels != 3:
            raise SystemExit("the StyleGAN2 model renders RGB; use --arch sngan for one-channel data")
        G = StyleGAN2Trainee(args.size, args.channels, args.latent_dim, args.n_mlp, args.mixing)
        lr_g, betas_g = args.lr_g or 2e-3, (0.0, 0.99)
    else:
        G = SNGANTrainee(args.size, args.channels, args.latent_dim, channels)
        lr_g, betas_g = args.lr_g or 2e-4, (0.0, 0.9)
    spectral = args.loss == "hinge"
    D = discriminator(args.size, args.d_width, channels, minibatch_std=args.minibatch_std, spectral=spectral)
    if args.arch == "sngan":  # StyleGAN2's modulated weights are 5-D: no channels-last
        G = G.to(memory_format=torch.channels_last)
    D = D.to(memory_format=torch.channels_last)
    G, D = G.to(device), D.to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=betas_g)
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr_d, betas=(0.0, 0.9))
    rng = torch.Generator().manual_seed(args.seed + 1)
    step, trained_s = 0, 0.0
    if args.resume or args.export:
        state = torch.load(ckpt_path, weights_only=True, map_location=device)
        G.load_state_dict(state["G"]), D.load_state_dict(state["D"]), G_ema.load_state_dict(state["G_ema"])
        opt_g.load_state_dict(state["opt_g"]), opt_d.load_state_dict(state["opt_d"])
        rng.set_state(state["rng"].cpu())
        random.setstate((state["py_rng"][0], tuple(state["py_rng"][1]), state["py_rng"][2]))
        step, trained_s = state["step"], state["trained_s"]
    if args.export:
        from safetensors.torch import save

        tensors = {
            k: v.half().contiguous() if v.is_floating_point() else v for k, v in G_ema.export().items()
        }
        meta = {
            "arch": args.arch,
            "channels": json.dumps([int(c) for c in args.channels.split(",")]),
            "latent_dim": str(args.latent_dim),
            "image_channels": str(channels),
            "steps": str(step),
            "trained_minutes": f"{trained_s / 60:.1f}",
            "seed": str(args.seed),
            "data": f"{args.renderer} {args.size} px",
        }
        atomic_write_bytes(args.export, save(tensors, metadata=meta))
        print(f"exported EMA generator after {step} steps to {args.export}")
        return

    fixed_z = torch.randn(64, args.latent_dim, generator=torch.Generator().manual_seed(123)).to(device)
    log = open(args.out / "log.jsonl", "a")  # noqa: SIM115
    start = time.perf_counter() - trained_s

    def save_checkpoint() -> None:
        py_state = random.getstate()
        state = {
            "G": G.state_dict(),
            "D": D.state_dict(),
            "G_ema": G_ema.state_dict(),
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            "rng": rng.get_state(),
            "py_rng": [py_state[0], list(py_state[1]), py_state[2]],
            "step": step,
            "trained_s": time.perf_counter() - start,
        }
        atomic_torch_save(state, ckpt_path)

    sums = torch.zeros(3)
    while step < args.steps and (time.perf_counter() - start) < args.minutes * 60:
        for _ in range(args.d_steps):  # discriminator: hinge loss
            with torch.no_grad():
                real = renderer.render_indices(data.sample_grid(args.batch, rng).to(device))
                real = real.contiguous(memory_format=torch.channels_last)
                z = torch.randn(args.batch, args.latent_dim, generator=rng).to(device)
                mix = torch.randn(args.batch, args.latent_dim, generator=rng).to(device)
            fake = G(z, mix if random.random() < G.mixing else None)
            if args.loss == "hinge":
                d_loss = F.relu(1 - D(real)).mean() + F.relu(1 + D(fake.detach())).mean()
            else:
                d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
                if step % 16 == 0:  # lazy R1: gamma / 2 * |grad D(real)|^2, scaled by the interval
                    real.requires_grad_(True)
                    (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
                    d_loss = d_loss + args.r1 / 2 * grad.square().sum(dim=(1, 2, 3)).mean() * 16
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        # generator
        g_loss = -D(fake).mean() if args.loss == "hinge" else F.softplus(-D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        ema_update(G_ema, G, args.ema)
        step += 1
        sums += torch.tensor([d_loss.item(), g_loss.item(), 1.0])
        if step % 100 == 0:
            elapsed = time.perf_counter() - start
            row = {
                "step": step,
                "d_loss": sums[0].item() / sums[2].item(),
                "g_loss": sums[1].item() / sums[2].item(),
                "minutes": elapsed / 60,
                "steps_per_s": step / elapsed if step else 0.0,
            }
            write_row(log, row)
            sums.zero_()
        if step % 500 == 0:
            save_checkpoint()
            with torch.no_grad():
                samples = G_ema(fixed_z).clamp(-1, 1)
                coverage = factor_coverage(args.renderer, data.factor_names, G_ema, args.latent_dim)
            write_row(log, {"step": step, "coverage_tv": coverage})
            import torchvision.utils as vutils

            vutils.save_image(samples * 0.5 + 0.5, args.out / "samples.png", nrow=8)
    save_checkpoint()
    print(f"stopped at step {step} after {(time.perf_counter() - start) / 60:.1f} minutes")


if __name__ == "__main__":
    main()
