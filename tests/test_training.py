"""The shared training loop: frozen generator, no graph for x0, checkpoints, exact resume, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace

import pytest
import torch

from ganzoo_directions.deformators import sample_magnitudes
from ganzoo_directions.errors import GanzooError, RunFolderError
from ganzoo_directions.training import CHECKPOINT_NAME, LOG_NAME, Trainer


def test_shift_law():
    eps = sample_magnitudes((10000,), 6.0, 0.5, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert eps.abs().min() >= 0.5 and eps.abs().max() <= 6.0
    assert abs(eps.mean().item()) < 0.15 and (eps > 0).float().mean().item() == pytest.approx(0.5, abs=0.03)


class SpyGenerator:
    """Wraps a generator and records, per render call, the batch size and whether autograd was on."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def render(self, latents):
        self.calls.append(("render", latents.shape[0], torch.is_grad_enabled()))
        return self.inner.render(latents)

    def render_shifted(self, latents, shifts):
        self.calls.append(("render_shifted", latents.shape[0], torch.is_grad_enabled()))
        return self.inner.render(latents + shifts)


@pytest.mark.parametrize("method_name, shifts", [("baseline", 1), ("two-shift", 2), ("centroid", 2)])
def test_step_renders_and_gradients(registry, quick_settings, method_name, shifts):
    method = registry.method(method_name).cls(hidden=32)
    generator = registry.generator("sngan-sprites").cls()  # has weights, left trainable: the loop freezes
    assert any(p.requires_grad for p in generator.parameters())
    spy = SpyGenerator(generator)
    trainer = Trainer(method, spy, quick_settings(run_dir=None, batch_size=4))
    before = {k: v.clone() for k, v in trainer.A.state_dict().items()}
    trainer.train_step()
    # x0 without a graph, then the S shifted images in one batched call with autograd
    assert spy.calls == [("render", 4, False), ("render_shifted", 4 * shifts, True)]
    assert all(p.grad is None for p in generator.parameters())  # no gradient reached G
    assert any(not torch.equal(before[k], v) for k, v in trainer.A.state_dict().items())


def _train(registry, sprites, settings, method="centroid"):
    return registry.method(method).cls(hidden=32).discover(sprites, settings)


def _same_weights(a, b):
    return all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_resume_equals_uninterrupted(registry, sprites, quick_settings, tmp_path):
    full = _train(registry, sprites, quick_settings(steps=10, run_dir=tmp_path / "full"))
    first = quick_settings(steps=6, run_dir=tmp_path / "split")
    _train(registry, sprites, first)
    resumed = _train(registry, sprites, replace(first, steps=10, resume=True))
    assert _same_weights(full.deformator, resumed.deformator)
    assert _same_weights(full.reconstructor, resumed.reconstructor)
    assert torch.equal(full.directions, resumed.directions)
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / LOG_NAME).read_text().splitlines()]
    assert steps == [2, 4, 6, 8, 10]


def test_a_method_that_trains_a_alone_resumes_exactly(sprites, quick_settings, tmp_path):
    """orojar (no image network, no optimiser for it): its checkpoint resumes to the same set."""
    from ganzoo_directions.runs import build_method

    def train(settings):
        return build_method("orojar", {"init": "random"}).discover(sprites, settings)

    full = train(quick_settings(steps=8, run_dir=tmp_path / "full"))
    first = quick_settings(steps=4, run_dir=tmp_path / "split")
    train(first)
    resumed = train(replace(first, steps=8, resume=True))
    assert full.reconstructor is None and torch.equal(full.directions, resumed.directions)
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / LOG_NAME).read_text().splitlines()]
    assert steps == [2, 4, 6, 8]  # continued from the checkpoint, not started again


def test_ctrl_c_checkpoints_at_a_step_boundary_and_resumes(registry, sprites, quick_settings, tmp_path):
    full = _train(registry, sprites, quick_settings(steps=9, run_dir=tmp_path / "full", checkpoint_every=100))

    class InterruptAt(CrashAt):
        def advance(self, step, stats):
            if step == self.step:
                os.kill(os.getpid(), signal.SIGINT)

    settings = quick_settings(
        steps=9, run_dir=tmp_path / "cut", checkpoint_every=100, reporter=InterruptAt(5)
    )
    with pytest.raises(KeyboardInterrupt):
        _train(registry, sprites, settings)
    state = torch.load(tmp_path / "cut" / CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 5
    resumed = _train(registry, sprites, quick_settings(steps=9, run_dir=tmp_path / "cut", resume=True))
    assert _same_weights(full.deformator, resumed.deformator)


def test_resume_refuses_changed_settings(registry, sprites, quick_settings, tmp_path):
    settings = quick_settings(steps=4, run_dir=tmp_path / "r")
    _train(registry, sprites, settings)
    with pytest.raises(RunFolderError, match="settings differ"):
        _train(registry, sprites, replace(settings, steps=6, lr=1e-3, resume=True))
    with pytest.raises(RunFolderError, match="nothing to resume"):
        _train(registry, sprites, quick_settings(run_dir=tmp_path / "empty", resume=True))


class CrashAt:
    """A reporter that raises (like a crash) after a given step."""

    def __init__(self, step):
        self.step = step

    def start(self, total, first):
        pass

    def message(self, text):
        pass

    def finish(self):
        pass

    def advance(self, step, stats):
        if step == self.step:
            raise RuntimeError("simulated crash")


def test_resume_after_a_crash_drops_log_lines_past_the_checkpoint(
    registry, sprites, quick_settings, tmp_path
):
    full = _train(registry, sprites, quick_settings(steps=8, run_dir=tmp_path / "full"))
    settings = quick_settings(steps=8, run_dir=tmp_path / "r", checkpoint_every=4, reporter=CrashAt(6))
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(registry, sprites, settings)
    assert torch.load(tmp_path / "r" / CHECKPOINT_NAME, weights_only=True)["step"] == 4
    resumed = _train(registry, sprites, quick_settings(steps=8, run_dir=tmp_path / "r", resume=True))
    steps = [json.loads(line)["step"] for line in (tmp_path / "r" / LOG_NAME).read_text().splitlines()]
    assert steps == [2, 4, 6, 8]
    assert _same_weights(full.deformator, resumed.deformator)


def test_fast_paths_match_the_plain_path(registry, tmp_path, quick_settings):
    """channels-last and activation checkpointing change speed and rounding only."""
    from .helpers import make_sngan

    G = registry.generator("sngan").cls(weights=str(make_sngan(tmp_path)), arch="custom")
    G.requires_grad_(False).eval()

    def run(**perf):
        method = registry.method("two-shift").cls(hidden=32)
        settings = quick_settings(num_directions=4, steps=3, batch_size=4, run_dir=None, **perf)
        return method.discover(G, settings)

    plain = run(channels_last=False)
    for perf in ({"channels_last": True}, {"channels_last": False, "grad_checkpoint": True}):
        fast = run(**perf)
        assert torch.allclose(plain.directions, fast.directions, atol=1e-4), perf
        for a, b in zip(plain.reconstructor.parameters(), fast.reconstructor.parameters(), strict=True):
            assert torch.allclose(a, b, atol=1e-3), perf


def test_amp_setting_is_checked(registry, sprites, quick_settings):
    method = registry.method("baseline").cls()
    with pytest.raises(GanzooError, match="amp must be"):
        Trainer(method, sprites, quick_settings(amp="fp8", run_dir=None))


def test_the_reconstructor_sees_large_images_resized(registry, tmp_path):
    """Images above the reconstructor size are resized (anti-aliased) before R: recorded in the run
    and in the reconstructor file, read back by evaluate; below it nothing changes (bit for bit)."""
    from ganzoo_directions.directions import DirectionSet
    from ganzoo_directions.evaluation import EvalOptions, evaluate
    from ganzoo_directions.interfaces import RunSettings
    from ganzoo_directions.reconstructors import load_reconstructor
    from ganzoo_directions.runs import RunRequest, execute

    def run(name, image_size, size):
        folder = tmp_path / name
        settings = RunSettings(
            num_directions=2, steps=2, batch_size=2, run_dir=folder, log_every=1, reconstructor_size=size
        )
        execute(
            RunRequest("sprites", "baseline", {"image_size": image_size}, None, {}, settings), rca_pairs=4
        )
        return folder

    big = run("big", 64, 32)
    assert json.loads((big / "run.json").read_text())["settings"]["reconstructor_size"] == 32
    R = load_reconstructor(big, 64, 3, "cpu")
    assert R.input_size == 32
    seen = []
    R.features[0].register_forward_hook(lambda module, args, out: seen.append(args[0].shape[-1]))
    x = torch.zeros(2, 3, 64, 64)
    R(x, x)
    assert seen == [32]
    assert "rca" in evaluate(big, EvalOptions(metrics=("rca",), samples=10))
    same = [run(f"s{size}", 32, size) for size in (0, 64)]  # 32 px: below both sizes, no resize
    a, b = (DirectionSet.load(f).directions for f in same)
    assert torch.equal(a, b)


def test_grad_checkpoint_recomputes_stylegan2_per_block_with_the_same_gradients(
    registry, tmp_path, quick_settings
):
    """--grad-checkpoint on an adapter that checkpoints per synthesis block: the trainer leaves the
    whole render alone (the blocks are recomputed one at a time), the gradients reaching the latent
    are those of the plain render, and the generator is left as it was after the run."""
    from ganzoo_directions.runs import build_generator

    from .helpers import make_stylegan2

    G = build_generator("stylegan2", weights=str(make_stylegan2(tmp_path))).requires_grad_(False)
    w = G.sample_latents(3, torch.Generator().manual_seed(0)).requires_grad_(True)
    (plain,) = torch.autograd.grad(G.render(w).square().sum(), w)
    assert G.checkpoint_blocks(True)
    (blocks,) = torch.autograd.grad(G.render(w).square().sum(), w)
    assert torch.allclose(plain, blocks, atol=1e-5) and G.net.checkpoint_blocks
    G.checkpoint_blocks(False)

    method = registry.method("baseline").cls()
    trainer = Trainer(
        method, G, quick_settings(num_directions=4, grad_checkpoint=True, steps=2, batch_size=2)
    )
    assert trainer.block_checkpointing and G.net.checkpoint_blocks
    trainer.run()
    assert not G.net.checkpoint_blocks
    sprites = registry.generator("sprites").cls(image_size=16)  # no blocks: the whole render is checkpointed
    assert not Trainer(method, sprites, quick_settings(grad_checkpoint=True)).block_checkpointing
