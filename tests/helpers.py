"""Builders the tests share: the CLI (in this process, or as a real one), and small checkpoints of
every GAN family saved in the public layouts (import them from here; fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``zoo-dirs`` in a real subprocess (the installed console script)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    exe = Path(sys.executable).with_name("zoo-dirs")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )


def invoke(*args: str) -> subprocess.CompletedProcess:
    """Run ``zoo-dirs`` in this process through click's ``CliRunner`` (no process start, ~2 s less a
    call); the same ``returncode`` / ``stdout`` / ``stderr`` as :func:`run_cli`. Use :func:`run_cli`
    where the process matters: entry points, installs, signals, environment read at import."""
    from click.testing import CliRunner

    from ganzoo_directions.cli import cli

    result = CliRunner().invoke(cli, list(args), prog_name="zoo-dirs")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug, not a user mistake: show its traceback
    return subprocess.CompletedProcess(["zoo-dirs", *args], result.exit_code, result.stdout, result.stderr)


def wait_until(condition: Callable[[], bool], timeout: float = 120, poll: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


def make_sngan(folder: Path) -> Path:
    from ganzoo_directions_sngan import ResNetGenerator, ResNetGeneratorConfig

    torch.manual_seed(0)
    net = ResNetGenerator(ResNetGeneratorConfig((32, 16, 8), latent_dim=16))
    with torch.no_grad():  # non-trivial batch-norm statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    model_dir = folder / "SN_Tiny"
    model_dir.mkdir()
    torch.save(net.state_dict(), model_dir / "generator.pt")  # as their training code saves it
    (model_dir / "args.json").write_text(
        json.dumps({"model": "custom", "channels": [32, 16, 8], "latent_dim": 16, "image_channels": 3})
    )
    return model_dir


def make_stylegan2(folder: Path) -> Path:
    from ganzoo_directions_stylegan2 import Generator, StyleGAN2Config

    torch.manual_seed(0)
    net = Generator(StyleGAN2Config(size=32, style_dim=32, n_mlp=2, channel_multiplier=1, max_channels=32))
    with torch.no_grad():  # non-zero noise strengths and biases, as in a trained model
        for name, p in net.named_parameters():
            if name.endswith(("noise.weight", "bias")):
                p.normal_(0, 0.2)
    path = folder / "stylegan2-tiny.pt"
    # the layout convert_weight.py writes (and train.py, plus optimiser states and args)
    torch.save({"g_ema": net.state_dict(), "latent_avg": net.mean_latent(256)}, path)
    return path


def make_biggan_deep(folder: Path) -> Path:
    from ganzoo_directions_biggan import BigGANDeep, BigGANDeepConfig

    torch.manual_seed(0)
    layers = [(False, 16, 16), (True, 16, 8), (True, 8, 4), (True, 4, 2), (False, 2, 1)]
    config = BigGANDeepConfig(
        output_dim=32,
        z_dim=16,
        class_embed_dim=16,
        channel_width=8,
        num_classes=10,
        layers=layers,
        attention_layer_position=2,
    )
    net = BigGANDeep(config)
    with torch.no_grad():  # stored u, v are the leading singular vectors, as after power iteration
        for module in net.modules():
            if hasattr(module, "weight_u"):
                U, _, Vh = torch.linalg.svd(module.weight_orig.reshape(module.weight_orig.shape[0], -1))
                module.weight_u.copy_(U[:, 0])
                module.weight_v.copy_(Vh[0])
            if hasattr(module, "running_means"):
                module.running_means.normal_(0, 0.2)
                module.running_vars.uniform_(0.5, 1.5)
    model_dir = folder / "biggan-deep-tiny"
    model_dir.mkdir()
    torch.save(net.state_dict(), model_dir / "pytorch_model.bin")
    (model_dir / "config.json").write_text(json.dumps(vars(config)))
    return model_dir


def make_biggan(folder: Path) -> Path:
    from ganzoo_directions_biggan import BigGAN, BigGANConfig

    torch.manual_seed(0)
    net = BigGAN(BigGANConfig(resolution=128, ch=4, dim_z=24, shared_dim=8, n_classes=10))
    with torch.no_grad():
        for module in net.modules():
            if hasattr(module, "u0"):  # stored u: the leading left singular vector, as after training
                U, _, _ = torch.linalg.svd(module.weight.reshape(module.weight.shape[0], -1))
                module.u0.copy_(U[:, 0][None])
            if hasattr(module, "stored_mean"):
                module.stored_mean.normal_(0, 0.2)
                module.stored_var.uniform_(0.5, 1.5)
    path = folder / "G_ema.pth"
    torch.save(net.state_dict(), path)
    return path


@dataclass
class Family:
    name: str  # generator name
    options: dict  # generator options of the small configuration
    make: Callable[[Path], Path]  # (folder) -> path to pass as --weights
    weights_file: str  # file name inside the folder / repo


FAMILIES = [
    Family("sngan", {"arch": "custom", "channels": "32,16,8", "latent_dim": 16}, make_sngan, "generator.pt"),
    Family("stylegan2", {"truncation": 0.7}, make_stylegan2, "stylegan2-tiny.pt"),
    Family("biggan-deep", {"class": "3", "truncation": 0.5}, make_biggan_deep, "pytorch_model.bin"),
    Family("biggan", {"class": "3", "truncation": 1.5}, make_biggan, "G_ema.pth"),
]


#: how the contract test builds each first-party generator small (weights in the public layouts)
SMALL_BUILDS = {
    "sprites": lambda folder: _build("sprites", options={"image_size": 16}),
    "sngan-sprites": lambda folder: _build("sngan-sprites"),
    "shapes3d": lambda folder: _build("shapes3d", options={"image_size": 16}),
    "dsprites": lambda folder: _build("dsprites", options={"image_size": 16}),
    "sngan-dsprites": lambda folder: _build("sngan-dsprites"),
    "stylegan2-shapes3d": lambda folder: _build("stylegan2-shapes3d"),
    **{
        f.name: (lambda folder, f=f: _build(f.name, weights=str(f.make(folder)), options=f.options))
        for f in FAMILIES
    },
}


def _build(name: str, **kwargs):
    from ganzoo_directions.runs import build_generator

    return build_generator(name, **kwargs)
