"""zoo-dirs evaluate and compare: RCA, held-out RCA, PPL, factor scores, Table-1 layout."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from ganzoo_directions.compare import Cell, collect, plot_png
from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.evaluation import EvalOptions, evaluate
from ganzoo_directions.interfaces import RunSettings
from ganzoo_directions.runs import RunRequest, execute

from .helpers import invoke


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval") / "run"
    folder.mkdir()
    settings = RunSettings(num_directions=4, steps=40, batch_size=8, lr=1e-3, run_dir=folder, log_every=10)
    execute(RunRequest("sprites", "baseline", {"image_size": 32}, None, {}, settings), rca_pairs=64)
    return folder


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_evaluate_records_metrics_and_never_touches_training(trained_run):
    before = {name: _digest(trained_run / name) for name in ("checkpoint.pt", "reconstructor.safetensors")}
    options = EvalOptions(
        metrics=("rca", "heldout_rca", "ppl"), samples=128, heldout_steps=5, ppl_net="pixel"
    )
    results = evaluate(trained_run, options)
    assert results["rca_chance"] == 0.25 and results["rca_pairs"] == 128
    assert results["rca"] > results["rca_chance"] + 0.08  # 0.39 when written: 3.7 sigma above chance
    correct = results["heldout_rca"] * 128  # a count of 128 fresh pairs (5 steps: about chance)
    assert abs(correct - round(correct)) < 1e-6
    per_direction = results["heldout_rca_per_direction"]  # (K,) accuracy on each direction's pairs
    assert len(per_direction) == 4 and all(0 <= a <= 1 for a in per_direction)
    assert min(per_direction) <= results["heldout_rca"] <= max(per_direction)
    assert results["ppl"] > 0 and "not comparable" in results["ppl_distance"]
    # ortho (unit) directions: per unit eps and per unit latent distance agree
    assert results["ppl_latent"] == pytest.approx(results["ppl"], rel=1e-3)
    assert json.loads((trained_run / "metrics.json").read_text())["rca"] == results["rca"]
    assert DirectionSet.load(trained_run).metrics["heldout_rca"] == results["heldout_rca"]
    assert {name: _digest(trained_run / name) for name in before} == before
    again = evaluate(trained_run, EvalOptions(metrics=("rca",), samples=128))
    assert again["rca"] == results["rca"]  # fixed seed: the same pairs


def _fake_run(folder, method, seed, metrics, generator="sprites"):
    folder.mkdir(parents=True)
    spec = {
        "generator": {"name": generator},
        "method": {"name": method, "hyperparameters": {"x": 1}},
        "settings": {"seed": seed},
        "metrics": metrics,
    }
    DirectionSet(torch.eye(4), None, spec).save(folder / "directions.safetensors")
    return folder


def test_compare_layout_mean_and_std(tmp_path):
    runs = [
        _fake_run(tmp_path / "b0", "baseline", 0, {"rca": 0.80, "ppl": 100.0}),
        _fake_run(tmp_path / "b1", "baseline", 1, {"rca": 0.90, "ppl": 120.0}),
        _fake_run(tmp_path / "c0", "centroid", 0, {"rca": 0.70, "ppl": 50.0}),
        _fake_run(tmp_path / "g0", "centroid", 0, {"rca": 0.60}, generator="sngan"),
    ]
    comparison = collect(runs)
    assert comparison.methods == ["baseline", "centroid"] and comparison.generators == ["sprites", "sngan"]
    assert comparison.header() == ["method", "sprites RCA↑", "sprites PPL↓", "sngan RCA↑", "sngan PPL↓"]
    assert comparison.rows()[0] == ["baseline", "0.850 ± 0.071", "110.00 ± 14.14", "-", "-"]
    assert comparison.rows()[1] == ["centroid", "0.700", "50.00", "0.600", "-"]
    assert "| baseline | 0.850 ± 0.071 |" in comparison.markdown()
    rows = json.loads(comparison.as_json())
    (cell,) = [
        r for r in rows if (r["method"], r["generator"], r["metric"]) == ("baseline", "sprites", "rca")
    ]
    assert cell["mean"] == pytest.approx(0.85) and cell["n"] == 2 and cell["seeds"] == [0, 1]
    png = plot_png(comparison)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # PPL keeps 3 significant digits, from pixel-space values to LPIPS-scale ones
    assert Cell([0.0055714]).text("ppl") == "0.00557"
    assert Cell([0.03, 0.0312]).text("ppl_latent") == "0.0306 ± 0.0008"
    assert Cell([179.234]).text("ppl") == "179.23"


def test_evaluate_and_compare_on_the_command_line(trained_run, tmp_path):
    result = invoke(
        "evaluate", str(trained_run), "--metrics", "rca,ppl", "--samples", "64", "--ppl-net", "pixel"
    )
    assert result.returncode == 0, result.stderr
    assert "rca" in result.stdout and "recorded in" in result.stdout
    assert "rca_per_direction" not in result.stdout  # (K,) lists stay in metrics.json
    result = invoke("evaluate", str(trained_run), "--metrics", "rca,nonsense")
    assert result.returncode != 0 and "unknown metrics" in result.stderr
    plot = tmp_path / "table.png"
    result = invoke("compare", str(trained_run), "--format", "markdown", "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("| method | sprites RCA↑ |") and "sprites PPL↓" in result.stdout
    assert plot.is_file()
    empty = _fake_run(tmp_path / "empty", "baseline", 0, {})
    result = invoke("compare", str(empty))
    assert result.returncode != 0 and "run `zoo-dirs evaluate" in result.stderr
    stopped = tmp_path / "stopped"  # a run folder with no set yet (running, stopped, failed)
    stopped.mkdir()
    (stopped / "run.json").write_text("{}")
    result = invoke("compare", str(trained_run), str(stopped), "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert f"skipping {stopped}" in " ".join(result.stderr.split()) and "sprites RCA" in result.stdout
    result = invoke("compare", str(stopped))
    assert result.returncode == 1 and "none of these folders holds a finished run" in result.stderr


def test_evaluate_keeps_every_finished_metric_and_labels_saved_meanwhile(trained_run, tmp_path, monkeypatch):
    """A failure after RCA keeps RCA (metrics.json and the file); a missing LPIPS backbone fails before
    any work; labels written while an evaluation runs survive its write."""
    import shutil

    from ganzoo_directions import evaluation
    from ganzoo_directions.directions import update_labels
    from ganzoo_directions.errors import GanzooError

    folder = tmp_path / "run"
    shutil.copytree(trained_run, folder)
    (folder / "metrics.json").unlink(missing_ok=True)
    real_accuracy = evaluation.reconstructor_accuracy

    def accuracy_then_label(*args, **kwargs):  # a label saved (by the explorer) while RCA is measured
        update_labels(folder, {1: "zoom"})
        return real_accuracy(*args, **kwargs)

    def broken_ppl(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(evaluation, "reconstructor_accuracy", accuracy_then_label)
    monkeypatch.setattr(evaluation, "path_length", broken_ppl)
    with pytest.raises(RuntimeError, match="out of memory"):
        evaluate(folder, EvalOptions(metrics=("rca", "ppl"), samples=32, ppl_net="pixel"))
    kept = json.loads((folder / "metrics.json").read_text())
    assert "rca" in kept and DirectionSet.load(folder).metrics["rca"] == kept["rca"]
    assert DirectionSet.load(folder).labels == {1: "zoom"}

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.setattr(evaluation, "reconstructor_accuracy", lambda *a, **k: pytest.fail("worked first"))
    with pytest.raises(GanzooError, match="LPIPS-vgg needs"):
        evaluate(folder, EvalOptions(metrics=("rca", "ppl"), samples=32, ppl_net="vgg"))


def test_renders_after_training_follow_the_run_batch(registry, tmp_path, monkeypatch):
    """The final RCA, the ranking and evaluate render at most the run's batch at a time (a 1024 px run
    that trained at batch 2 must not meet 64 renders at the end), with the same pairs as one piece."""
    from ganzoo_directions.metrics import reconstructor_accuracy
    from ganzoo_directions.reconstructors import load_reconstructor

    folder = tmp_path / "run"
    settings = RunSettings(num_directions=4, steps=2, batch_size=3, run_dir=folder, log_every=1)
    execute(RunRequest("sprites", "centroid", {"image_size": 16}, None, {}, settings), rca_pairs=64)
    cls = registry.generator("sprites").cls
    sizes: list[int] = []
    original = cls.render

    def counting(self, latents):
        sizes.append(len(latents))
        return original(self, latents)

    monkeypatch.setattr(cls, "render", counting)
    results = evaluate(folder, EvalOptions(metrics=("rca", "ppl"), samples=64, ppl_net="pixel"))
    assert sizes and max(sizes) <= 3
    from ganzoo_directions.runs import generator_for

    dset = DirectionSet.load(folder)
    G = generator_for(dset)
    R = load_reconstructor(folder, G.image_size, G.image_channels, "cpu")
    whole = reconstructor_accuracy(
        G,
        dset.shift,
        R,
        4,
        pairs=64,
        eps_max=dset.spec["settings"]["eps_max"],
        eps_min=dset.spec["settings"]["eps_min"],
        seed=1234,
    )
    assert results["rca"] == whole


def test_evaluate_announces_the_heldout_training_and_ctrl_c_says_what_was_kept(trained_run, tmp_path):
    import shutil
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from .helpers import wait_until

    folder = tmp_path / "run"
    shutil.copytree(trained_run, folder)
    (folder / "metrics.json").unlink(missing_ok=True)
    exe = Path(sys.executable).with_name("zoo-dirs")
    args = [str(exe), "evaluate", str(folder), "--metrics", "rca,heldout_rca", "--samples", "10"]
    args += ["--heldout-steps", "1000000"]
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    assert wait_until(lambda: (folder / "metrics.json").is_file())
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    said = " ".join(stderr.split())
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert "trains a fresh reconstructor for 1000000 steps" in said and "interrupted: kept rca" in said


def test_the_closed_form_ranking_costs_a_bounded_number_of_renders(registry, monkeypatch):
    """Ranking K directions by image change renders (2K + 1) images per latent: 64 latents up to 32
    directions (the sets results.md measured keep their ranking), fewer above, so a 128-direction
    SeFa set of a 256 px StyleGAN2 costs ~2,000 renders, not 16,448."""
    from ganzoo_directions import defaults
    from ganzoo_directions.ranking import rank_by_image_change

    cls = registry.generator("sprites").cls
    rendered: list[int] = []
    original = cls.render

    def counting(self, latents):
        rendered.append(len(latents))
        return original(self, latents)

    monkeypatch.setattr(cls, "render", counting)
    generator = cls(image_size=16)
    for K, samples in ((16, 64), (32, 64), (64, 32), (128, 16)):
        rendered.clear()
        dset = DirectionSet(torch.randn(K, generator.latent_dim).clamp(-1, 1), None, {})
        record = rank_by_image_change(generator, dset, magnitude=1.0)
        assert record["samples"] == samples and sum(rendered) == samples * (2 * K + 1)
        assert sum(rendered) <= defaults.RANKING_RENDERS


def test_recorded_metrics_reads_scores_and_notes_by_the_metric_table(tmp_path):
    from ganzoo_directions.evaluation import recorded_metrics

    (tmp_path / "metrics.json").write_text(
        json.dumps({"disentanglement": 0.2, "protocol_note": "no labelled images", "rca_pairs": 10})
    )
    assert recorded_metrics(tmp_path) == ["factors", "mig", "dci"]  # not rca: only its pair count is there
    assert recorded_metrics(tmp_path / "elsewhere") == []
