"""Train the embedded default GAN: an SNGAN-family generator on images of the `sprites` renderer.

The generator is the `sngan` plugin's ResNet generator (same code as the adapter), small widths; the
discriminator a spectrally-normalised conv net; hinge loss; Adam; an exponential moving average of the
generator's weights is what ships. Seeded; checkpoints atomically (resume with --resume); logs JSON
lines and sample grids into --out.

    python scripts/train_sprites_gan.py --out runs/sprites-gan --minutes 90
    python scripts/train_sprites_gan.py --out runs/sprites-gan --export \
        plugins/ganzoo-directions-sngan/ganzoo_directions_sngan/weights/sngan-sprites.safetensors
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from ganzoo_directions_sngan import ResNetGenerator, ResNetGeneratorConfig
from torch import nn
from torch.nn.utils import spectral_norm

from ganzoo_directions.files import atomic_torch_save, atomic_write_bytes
from ganzoo_directions.runs import build_generator
from ganzoo_directions.traversal import grid_png


class MinibatchStd(nn.Module):
    """StyleGAN's minibatch standard deviation: appends one channel holding the mean standard deviation
    of the features over groups of ``group`` samples, so the discriminator sees a batch's variety."""

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        g = min(self.group, B)
        y = x.reshape(g, -1, C, H, W)  # (g, B/g, C, H, W)
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B/g,)
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, H, W)  # (B, 1, H, W)
        return torch.cat([x, y], dim=1)


def discriminator(
    size: int, width: int, channels: int = 3, minibatch_std: bool = False, spectral: bool = True
) -> nn.Module:
    """SN conv net: stride-2 convs halve the image down to 4 x 4 (then, optionally, the minibatch
    standard deviation channel and one more conv), then one linear score. ``spectral=False``: plain
    layers (for a loss regularised otherwise, e.g. R1)."""
    sn = spectral_norm if spectral else (lambda m: m)
    layers, ch_in, res = [], channels, size
    ch = width
    while res > 4:
        layers += [
            sn(nn.Conv2d(ch_in, ch, 3, 1, 1)),
            nn.LeakyReLU(0.1),
            sn(nn.Conv2d(ch, ch, 4, 2, 1)),
            nn.LeakyReLU(0.1),
        ]
        ch_in, ch, res = ch, ch * 2, res // 2
    if minibatch_std:
        layers += [MinibatchStd(), sn(nn.Conv2d(ch_in + 1, ch_in, 3, 1, 1)), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers, nn.Flatten(), sn(nn.Linear(ch_in * 16, 1)))


@torch.no_grad()
def ema_update(G_ema: nn.Module, G: nn.Module, decay: float) -> None:
    """G_ema <- decay * G_ema + (1 - decay) * G for parameters; buffers copied (BN statistics, noise)."""
    for pe, pg in zip(G_ema.parameters(), G.parameters(), strict=True):
        pe.lerp_(pg, 1 - decay)
    for be, bg in zip(G_ema.buffers(), G.buffers(), strict=True):
        be.copy_(bg)


def write_row(log, row: dict) -> None:
    """One JSON line into the open log and onto stdout."""
    log.write(json.dumps(row) + "\n")
    log.flush()
    print(json.dumps(row), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=int, default=32, choices=(32, 64))
    p.add_argument("--channels", default="256,128,64,32", help="generator widths (4 px doubled per width)")
    p.add_argument("--latent-dim", type=int, default=16)
    p.add_argument("--d-width", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--minutes", type=float, default=90.0, help="stop after this much training time")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resume", action="store_true")
    p.add_argument(
        "--export", type=Path, default=None, help="write the EMA generator (fp16 safetensors) and stop"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.out / "checkpoint.pt"

    channels = tuple(int(c) for c in args.channels.split(","))
    config = ResNetGeneratorConfig(channels, latent_dim=args.latent_dim)
    if config.image_size != args.size:
        raise SystemExit(f"--channels {args.channels} gives {config.image_size} px, not --size {args.size}")
    torch.manual_seed(args.seed)
    G = ResNetGenerator(config)
    D = discriminator(args.size, args.d_width)
    G = G.to(memory_format=torch.channels_last)  # about 1.5x faster convolutions on CPU
    D = D.to(memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.0, 0.9))
    data = build_generator("sprites", options={"image_size": args.size})  # the renderer: real images
    rng = torch.Generator().manual_seed(args.seed + 1)
    step, trained_s = 0, 0.0
    if args.resume or args.export:
        state = torch.load(ckpt_path, weights_only=True)
        G.load_state_dict(state["G"]), D.load_state_dict(state["D"]), G_ema.load_state_dict(state["G_ema"])
        opt_g.load_state_dict(state["opt_g"]), opt_d.load_state_dict(state["opt_d"])
        rng.set_state(state["rng"])
        step, trained_s = state["step"], state["trained_s"]
    if args.export:
        from safetensors.torch import save

        tensors = {
            k: v.half().contiguous() if v.is_floating_point() else v for k, v in G_ema.state_dict().items()
        }
        meta = {
            "channels": json.dumps(list(channels)),
            "latent_dim": str(args.latent_dim),
            "steps": str(step),
            "trained_minutes": f"{trained_s / 60:.1f}",
            "seed": str(args.seed),
            "data": f"sprites {args.size} px",
        }
        atomic_write_bytes(args.export, save(tensors, metadata=meta))
        print(f"exported EMA generator after {step} steps to {args.export}")
        return

    fixed_z = torch.randn(64, args.latent_dim, generator=torch.Generator().manual_seed(123))
    log = open(args.out / "log.jsonl", "a")  # noqa: SIM115
    start = time.perf_counter() - trained_s

    def save_checkpoint() -> None:
        state = {
            "G": G.state_dict(),
            "D": D.state_dict(),
            "G_ema": G_ema.state_dict(),
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            "rng": rng.get_state(),
            "step": step,
            "trained_s": time.perf_counter() - start,
        }
        atomic_torch_save(state, ckpt_path)

    sums = torch.zeros(3)
    while step < args.steps and (time.perf_counter() - start) < args.minutes * 60:
        with torch.no_grad():
            real = data.render(data.sample_latents(args.batch, rng)).contiguous(
                memory_format=torch.channels_last
            )
            z = torch.randn(args.batch, args.latent_dim, generator=rng)
        # discriminator: hinge loss
        fake = G(z)
        d_loss = F.relu(1 - D(real)).mean() + F.relu(1 + D(fake.detach())).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # generator
        g_loss = -D(fake).mean()
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
        if step % 1000 == 0:
            save_checkpoint()
            with torch.no_grad():
                samples = G_ema(fixed_z).view(8, 8, 3, args.size, args.size)
            atomic_write_bytes(args.out / "samples.png", grid_png(samples, [""] * 8, [""] * 8))
    save_checkpoint()
    print(f"stopped at step {step} after {(time.perf_counter() - start) / 60:.1f} minutes")


if __name__ == "__main__":
    main()
