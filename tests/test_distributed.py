"""Data-parallel training under torchrun (2 CPU processes, gloo) equals one process with the global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from ganzoo_directions.directions import DirectionSet

from .helpers import run_cli

COMMON = [
    "--gen",
    "sprites",
    "-g",
    "image_size=32",
    "--method",
    "two-shift",
    "-p",
    "hidden=32",
    "--reconstructor",
    "lenet-gn",
    "--directions",
    "4",
    "--rca-pairs",
    "8",
    "--log-every",
    "1",
    "--checkpoint-every",
    "2",
]


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "ganzoo_directions",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def _close(a: DirectionSet, b: DirectionSet) -> bool:
    """Same directions and the same shifts A(k, eps) on a grid. (Raw parameters are not compared: the
    MLP's last bias cancels in f(x) - f(0), so its gradient is rounding noise that Adam turns into
    +-lr steps, with no effect on any shift.)"""
    k = torch.arange(4).repeat_interleave(7)
    eps = torch.linspace(-6, 6, 7).repeat(4)
    same_shifts = torch.allclose(a.shift(k, eps), b.shift(k, eps), atol=1e-5)
    return same_shifts and torch.allclose(a.directions, b.directions, atol=1e-5)


@pytest.mark.slow
def test_two_ranks_with_batch_b_equal_one_process_with_batch_2b(tmp_path):
    one = run_cli(
        "discover",
        *COMMON,
        "--steps",
        "4",
        "--batch",
        "8",
        "--out",
        str(tmp_path / "one"),
        env={"OMP_NUM_THREADS": "1"},
    )
    assert one.returncode == 0, one.stderr
    two = torchrun("discover", *COMMON, "--steps", "4", "--batch", "4", "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stdout + two.stderr
    single, parallel = DirectionSet.load(tmp_path / "one"), DirectionSet.load(tmp_path / "two")
    assert _close(single, parallel)
    # only rank 0 wrote: one log line per step, not two
    assert len((tmp_path / "two" / "log.jsonl").read_text().splitlines()) == 4

    # resume under torchrun continues to the same result as the single process run for longer
    more = run_cli(
        "discover", "--resume", "--steps", "6", "--out", str(tmp_path / "one"), env={"OMP_NUM_THREADS": "1"}
    )
    assert more.returncode == 0, more.stderr
    resumed = torchrun("discover", "--resume", "--steps", "6", "--out", str(tmp_path / "two"))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _close(DirectionSet.load(tmp_path / "one"), DirectionSet.load(tmp_path / "two"))


@pytest.mark.slow
def test_no_bucket_stride_warning_with_resnet_under_ddp(tmp_path):
    """ResNet-18's 1x1 convolutions kept channels-last gave each rank "Grad strides do not match
    bucket view strides" (and a copy per step); they keep the layout their gradients have."""
    args = [
        *COMMON,
        "--reconstructor",
        "resnet18",
        "--steps",
        "2",
        "--batch",
        "2",
        "--out",
        str(tmp_path / "r"),
    ]
    result = torchrun("discover", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Grad strides do not match" not in result.stdout + result.stderr
