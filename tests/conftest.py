"""Shared fixtures: the real plugin registry (built-ins arrive through their entry points) and tiny runs."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from ganzoo_directions import plugins
from ganzoo_directions.interfaces import RunSettings

# One core's worth of threads per test process: under pytest-xdist (.ci/run) each worker gets its
# share of the cores, and the `zoo-dirs` processes the tests start inherit it through
# OMP_NUM_THREADS. More threads than cores made every process slower (issue 27: 2 threads under load
# cost 4-5x the CPU-seconds of 1).
THREADS = max(1, min(2, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
torch.set_num_threads(THREADS)
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
# A suite started in the background (`./.ci/run &`, nohup) gets SIGINT ignored, and every child process
# inherits that: the Ctrl-C tests' children would then ignore their Ctrl-C. Act as from a terminal.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def registry():
    plugins.reset()
    yield plugins.get_registry()
    plugins.reset()


@pytest.fixture
def sprites(registry):
    return registry.generator("sprites").cls()


@pytest.fixture
def small_sprites(registry):
    """The analytic sprites generator at 32 px (the methods' tests)."""
    return registry.generator("sprites").cls(image_size=32)


@pytest.fixture
def quick_settings(tmp_path):
    """Settings of a few-step CPU run writing into a temporary run folder."""

    def make(**overrides) -> RunSettings:
        values = dict(
            num_directions=8,
            steps=6,
            batch_size=8,
            seed=0,
            run_dir=tmp_path / "run",
            checkpoint_every=4,
            log_every=2,
        )
        values.update(overrides)
        if values["run_dir"] is not None:
            Path(values["run_dir"]).mkdir(parents=True, exist_ok=True)
        return RunSettings(**values)

    return make


@pytest.fixture(scope="session")
def sefa_made(tmp_path_factory):
    """A real run folder of the shipped GAN (SeFa: closed form, seconds), made once per session."""
    from .helpers import invoke

    out = tmp_path_factory.mktemp("sefa") / "run"
    result = invoke("discover", "--gen", "sngan-sprites", "--method", "sefa", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def run(sefa_made, tmp_path):
    """A copy of :func:`sefa_made` of the test's own (labels and edits may change it)."""
    import shutil

    return shutil.copytree(sefa_made, tmp_path / "run")
