"""The range of the factor score (oracle), the field's MIG/DCI protocol, rankings and `zoo-dirs benchmark`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganzoo_directions.benchmark import Variant
from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.errors import GanzooError
from ganzoo_directions.factors import factor_scores
from ganzoo_directions.interfaces import RunSettings
from ganzoo_directions.metrics import random_directions
from ganzoo_directions.protocol import dci, mig, protocol_scores
from ganzoo_directions.ranking import rank_by_image_change, spearman
from ganzoo_directions.runs import build_generator, build_method

from .helpers import run_cli


def _factors(n: int = 2000, f: int = 3) -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(n, f))


def test_mig_and_dci_of_a_perfect_code():
    v = _factors()
    m, d = mig(v, v), dci(v, v)
    assert m["mig"] > 0.95  # 1 minus the plug-in estimator's small bias on 20 x 20 bins
    assert d["dci_disentanglement"] > 0.99 and d["dci_completeness"] > 0.99
    assert d["dci_informativeness"] > 0.99


def test_mig_and_dci_do_not_care_about_the_order_or_scale_of_codes():
    v = _factors()
    permuted = 3.0 * v[:, [2, 0, 1]] - 1.0  # columns permuted, affine per code
    assert mig(permuted, v)["mig"] == pytest.approx(mig(v, v)["mig"], abs=1e-9)
    assert dci(permuted, v)["dci_disentanglement"] == pytest.approx(
        dci(v, v)["dci_disentanglement"], abs=0.01
    )


def test_mig_and_dci_of_a_mixed_code_take_their_known_values():
    # codes 0 and 1 are 45-degree mixtures of factors 0 and 1; code 2 is factor 2
    v = _factors()
    c = np.cos(np.pi / 4)
    mixed = v @ np.array([[c, -c, 0], [c, c, 0], [0, 0, 1]])
    # DCI D: two codes split evenly over two of three factors (1 - log 2 / log 3 each), one pure code
    expected_d = (2 * (1 - np.log(2) / np.log(3)) + 1) / 3
    assert dci(mixed, v)["dci_disentanglement"] == pytest.approx(expected_d, abs=0.03)
    # MIG: factors 0 and 1 are known equally by two codes (gap ~0); factor 2 by one (gap ~1)
    gaps = mig(mixed, v)["mig_per_factor"]
    assert gaps[0] < 0.1 and gaps[1] < 0.1 and gaps[2] > 0.9
    assert mig(mixed, v)["mig"] == pytest.approx(np.mean(gaps))


def test_oracle_beats_random_directions_on_the_shipped_gan():
    G = build_generator("sngan-sprites")
    result = build_method("oracle", {"samples": 1024}).discover(G, RunSettings(seed=0))
    assert result.directions.shape == (8, 16)
    r2 = result.metrics["oracle_r2"]
    assert set(r2) == set(G.factor_readout().names) and r2["background"] > 0.8  # decodable
    readout = G.factor_readout()
    oracle = factor_scores(G, DirectionSet(result.directions), readout, samples=128)
    random = factor_scores(G, DirectionSet(random_directions(8, 16, 0)), readout, samples=128)
    assert oracle["disentanglement"] > 1.5 * random["disentanglement"]


def test_oracle_needs_a_factor_readout(registry):
    G = build_generator("sngan")  # a random SNGAN: no known factors
    with pytest.raises(GanzooError, match="no factor readout"):
        build_method("oracle").discover(G, RunSettings())


def test_ranking_puts_a_known_strong_direction_first(registry):
    # sprites with D = 16: dimensions 8..15 change nothing; the background factor moves every pixel
    G = build_generator("sprites", options={"latent_dim": 16, "image_size": 32})
    factors = G.known_factors()
    background = factors.directions[factors.names.index("background")]
    nuisance = torch.eye(16)[:8] - (torch.eye(16)[:8] @ factors.directions.t()) @ factors.directions
    directions = torch.cat([torch.nn.functional.normalize(nuisance, dim=1)[:3], background[None]])
    ranking = rank_by_image_change(G, DirectionSet(directions), samples=16)
    assert ranking["order"][0] == 3 and ranking["by"] == "image_change"
    assert max(ranking["scores"][:3]) < 1e-3 < ranking["scores"][3]


def test_spearman():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)


def test_protocol_scores_the_true_factor_directions_above_random_ones(registry):
    G = build_generator("sprites", options={"image_size": 32})
    readout = G.factor_readout()
    kwargs = dict(directions=range(8), train_images=1500, real_images=800, steps=250)
    true = protocol_scores(G, DirectionSet(G.known_factors().directions), readout, **kwargs)
    random = protocol_scores(G, DirectionSet(random_directions(8, 8, 0)), readout, **kwargs)
    assert true["dci_disentanglement"] > random["dci_disentanglement"] + 0.2
    assert true["mig"] > random["mig"]


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


def test_benchmark_command_runs_a_grid_and_resumes(tmp_path):
    out = tmp_path / "bench"
    grid = ["--gen", "sprites", "-g", "image_size=32", "--methods", "random,baseline", "--seeds", "0,1"]
    quick = ["--steps", "4", "--samples", "32", "--protocol-steps", "10", "--protocol-images", "200"]
    args = ("benchmark", *grid, *quick, "--out", str(out))
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "| random |" in first.stdout and "| baseline |" in first.stdout
    summary = json.loads((out / "results.json").read_text())
    assert {r["label"] for r in summary["rows"]} == {"random", "baseline"} and len(summary["rows"]) == 4
    assert all("disentanglement" in r and "mig" in r and "dci_disentanglement" in r for r in summary["rows"])
    assert all("rca" in r for r in summary["rows"] if r["label"] == "baseline")
    assert (out / "results.md").read_text().startswith("| directions |")
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    stamp = (out / "baseline" / "s0" / "directions.safetensors").stat().st_mtime_ns
    again = run_cli(*args)  # everything is reused: nothing retrained
    assert again.returncode == 0, again.stderr
    assert (out / "baseline" / "s0" / "directions.safetensors").stat().st_mtime_ns == stamp
    assert again.stdout == first.stdout


def test_benchmark_refuses_unknown_methods_with_the_valid_names(tmp_path):
    result = run_cli("benchmark", "--methods", "centroid,nope", "--out", str(tmp_path / "b"))
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
