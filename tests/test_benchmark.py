"""The range of the factor score (oracle), the field's MIG/DCI protocol, rankings and `zoo-dirs benchmark`."""

from __future__ import annotations

import json

import pytest
import torch

from ganzoo_directions.benchmark import Variant
from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.errors import GanzooError
from ganzoo_directions.interfaces import RunSettings

from .helpers import invoke


def test_variant_parsing():
    v = Variant.parse("centroid-eps2=centroid:eps_max=2,unit_shift=true")
    assert (v.label, v.method, v.settings, v.params) == (
        "centroid-eps2",
        "centroid",
        {"eps_max": 2.0},
        {"unit_shift": "true"},
    )
    assert Variant.parse("sefa") == Variant("sefa", "sefa")
    assert Variant.parse("s=baseline:reconstructor=siamese").settings == {"reconstructor": "siamese"}
    with pytest.raises(GanzooError, match="KEY=VALUE"):
        Variant.parse("x=centroid:steps")
    with pytest.raises(GanzooError, match="type int"):
        Variant.parse("x=centroid:steps=many")


@pytest.mark.slow
def test_benchmark_command_runs_a_grid_and_resumes(tmp_path):
    out = tmp_path / "bench"
    grid = ["--gen", "sprites", "-g", "image_size=32", "--methods", "random,baseline", "--seeds", "0,1"]
    quick = ["--steps", "4", "--samples", "32", "--protocol-steps", "10", "--protocol-images", "200"]
    args = ("benchmark", *grid, *quick, "--out", str(out))
    first = invoke(*args)
    assert first.returncode == 0, first.stderr
    assert "| random |" in first.stdout and "| baseline |" in first.stdout
    summary = json.loads((out / "results.json").read_text())
    assert {r["label"] for r in summary["rows"]} == {"random", "baseline"} and len(summary["rows"]) == 4
    assert all("disentanglement" in r and "mig" in r and "dci_disentanglement" in r for r in summary["rows"])
    assert all("rca" in r for r in summary["rows"] if r["label"] == "baseline")
    assert (out / "results.md").read_text().startswith("| directions |")
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    stamp = (out / "baseline" / "s0" / "directions.safetensors").stat().st_mtime_ns
    again = invoke(*args)  # everything is reused: nothing retrained
    assert again.returncode == 0, again.stderr
    assert (out / "baseline" / "s0" / "directions.safetensors").stat().st_mtime_ns == stamp
    assert again.stdout == first.stdout


def test_benchmark_heldout_steps_reach_the_cells_and_a_new_budget_rescores(tmp_path):
    out = tmp_path / "bench"
    args = ["benchmark", "--gen", "sprites", "-g", "image_size=32", "--methods", "random", "--seeds", "0"]
    args += ["--metrics", "heldout_rca", "--samples", "16", "--out", str(out)]
    for steps in (2, 3):
        result = invoke(*args, "--heldout-steps", str(steps))
        assert result.returncode == 0, result.stderr
        recorded = json.loads((out / "random" / "s0" / "metrics.json").read_text())
        assert recorded["heldout_rca_steps"] == steps  # 3: not the cell's 2-step score reused
        assert 0 <= recorded["heldout_rca"] <= 1


def test_benchmark_refuses_unknown_methods_with_the_valid_names(tmp_path):
    result = invoke("benchmark", "--methods", "centroid,nope", "--out", str(tmp_path / "b"))
    assert result.returncode != 0 and "nope" in result.stderr and "centroid" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_set_lists_its_directions_strongest_first(tmp_path):
    dset = DirectionSet(torch.eye(4), spec={"ranking": {"order": [2, 0, 3, 1], "by": "image_change"}})
    assert dset.ranked() == [2, 0, 3, 1]
    dset.save(tmp_path / "d.safetensors")
    assert DirectionSet.load(tmp_path / "d.safetensors").ranked() == [2, 0, 3, 1]
    assert DirectionSet(torch.eye(4)).ranked() == [0, 1, 2, 3]  # older files: their own order
    assert DirectionSet(torch.eye(4), spec={"ranking": {"order": [9, 0]}}).ranked() == [0, 1, 2, 3]


def test_discover_ranks_trained_sets_by_rca_and_closed_form_sets_by_image_change(registry, tmp_path):
    from ganzoo_directions.runs import RunRequest, execute

    for method in ("baseline", "sefa"):
        folder = tmp_path / method
        folder.mkdir()
        settings = RunSettings(num_directions=8, steps=2, batch_size=4, run_dir=folder)
        outcome = execute(RunRequest("sprites", method, {"image_size": 32}, None, {}, settings), rca_pairs=32)
        ranking = outcome.directions.spec["ranking"]
        assert ranking["by"] == ("rca" if method == "baseline" else "image_change")
        assert sorted(ranking["order"]) == list(range(8))
        scores = torch.tensor(ranking["scores"])
        assert (scores[ranking["order"]].diff() <= 0).all()  # strongest first
