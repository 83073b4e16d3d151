"""The embedded default: the shipped sprites GAN, the shipped factor regressor, and the factor score."""

from __future__ import annotations

from importlib.resources import files

import torch

from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.runs import build_generator
from ganzoo_directions.weights import sha256_file

from .helpers import invoke


def test_shipped_gan_loads_through_the_sngan_adapter_and_is_deterministic(registry):
    entry = registry.generator("sngan-sprites")
    assert entry.plugin.distribution == "ganzoo-directions-sngan"
    G = build_generator("sngan-sprites")
    shipped = files("ganzoo_directions_sngan").joinpath("weights", "sngan-sprites.safetensors")
    assert G.fingerprint == sha256_file(str(shipped))
    assert G.image_size == 32 and G.latent_dim == 16
    z = G.sample_latents(8, torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = G.render(z), build_generator("sngan-sprites").render(z)
    assert torch.equal(a, b) and a.abs().max() <= 1
    assert a.std() > 0.1  # not a constant image
    assert shipped.read_bytes().__len__() < 4_000_000  # a few MB at most


def test_discover_without_arguments_uses_the_shipped_gan(tmp_path):
    out = tmp_path / "run"
    result = invoke("discover", "--steps", "3", "--rca-pairs", "16", "--out", str(out))
    assert result.returncode == 0, result.stderr
    spec = DirectionSet.load(out).spec
    assert spec["generator"]["name"] == "sngan-sprites" and spec["method"]["name"] == "orojar-span"
    assert spec["method"]["hyperparameters"]["init"] == "deepspectral"  # starts from closed form
    settings = spec["settings"]
    assert settings["num_directions"] == 8 and settings["eps_max"] == 2.0 and settings["lr"] == 1e-2
    assert "spread of" not in result.stderr  # its shifts stay inside the prior
    said = " ".join(result.stderr.split())  # --help says the default run prints what it took
    assert "orojar-span recommends for sngan-sprites: lr 0.01, eps_max 2, num_directions 8 (" in said
    # no reconstructor: ranked by image change, as closed-form sets
    assert spec["ranking"]["by"] == "image_change" and sorted(spec["ranking"]["order"]) == list(range(8))
    strongest = ",".join(str(k) for k in spec["ranking"]["order"][:3])
    assert f"--directions {strongest} --samples 4" in said  # "next:" suggests the strongest
    paper = invoke(
        "discover", "--method", "centroid", "--steps", "3", "--rca-pairs", "16", "--out", str(tmp_path / "p")
    )
    assert paper.returncode == 0, paper.stderr
    assert "1.5x the spread of 'sngan-sprites'" in " ".join(paper.stderr.split())  # eps 6 on |z| ~ 4
    assert DirectionSet.load(tmp_path / "p").spec["settings"]["num_directions"] == 16


def test_evaluate_factors_writes_the_heatmap_and_tells_the_truth_from_noise(tmp_path):
    """The factor score through `evaluate` on the analytic generator: the oracle's directions (each
    moves one true factor) score well above random ones (measured at 64 samples: 0.91 vs 0.16; on the
    shipped GAN 0.28 vs 0.12: test_metrics.py::test_oracle_beats_random_directions_on_the_shipped_gan)."""
    name, margin = "sprites", 0.4
    scores = {}
    for method in ("oracle", "random"):
        out = tmp_path / method
        assert invoke("discover", "--gen", name, "--method", method, "--out", str(out)).returncode == 0
        result = invoke("evaluate", str(out), "--metrics", "factors", "--samples", "64")
        assert result.returncode == 0, result.stderr
        assert (out / "factors.png").is_file()
        scores[method] = DirectionSet.load(out).metrics["disentanglement"]
    assert scores["oracle"] > scores["random"] + margin, scores
