"""The metrics, each against values known in advance: MIG/DCI on constructed codes, the factor score,
the oracle against random directions, path length on a linear generator, RCA at chance, rankings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganzoo_directions.deformators import DEFORMATORS
from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.errors import GanzooError
from ganzoo_directions.factors import factor_scores
from ganzoo_directions.interfaces import GeneratorAdapter, RunSettings
from ganzoo_directions.metrics import (
    alignment_matrix,
    dci_scores,
    factor_alignment,
    lpips_distance,
    path_length,
    pixel_distance,
    random_directions,
    reconstructor_accuracy,
    trimmed_mean,
)
from ganzoo_directions.mig_dci import dci, mig, protocol_scores
from ganzoo_directions.ranking import rank_by_image_change, spearman
from ganzoo_directions.runs import build_generator, build_method

CHANCE = 1 / 8  # RCA of a guess among K = 8 directions


def _factors(n: int = 2000, f: int = 3) -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(n, f))


class LinearToy(GeneratorAdapter):
    """render(z) = z @ W, reshaped: PPL in pixel space is |W d|^2 / P exactly."""

    name = "linear-toy"
    latent_dim = 3
    image_size = 4

    def __init__(self):
        super().__init__()
        self.register_buffer("W", torch.randn(3, 48, generator=torch.Generator().manual_seed(0)) * 0.1)

    def sample_latents(self, n, generator=None):
        return torch.randn(n, 3, generator=generator) * 0.1

    def render(self, latents):
        return (latents @ self.W).view(-1, 3, 4, 4)


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


@pytest.mark.slow
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
    G = build_generator("sngan", random_weights=True)  # a random SNGAN: no known factors
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


@pytest.mark.slow
def test_protocol_scores_the_true_factor_directions_above_random_ones(registry):
    G = build_generator("sprites", options={"image_size": 32})
    readout = G.factor_readout()
    kwargs = dict(directions=range(8), train_images=1500, real_images=800, steps=250)
    true = protocol_scores(G, DirectionSet(G.known_factors().directions), readout, **kwargs)
    random = protocol_scores(G, DirectionSet(random_directions(8, 8, 0)), readout, **kwargs)
    assert true["dci_disentanglement"] > random["dci_disentanglement"] + 0.2
    assert true["mig"] > random["mig"]


def test_path_length_is_exact_on_a_linear_generator():
    G = LinearToy()
    directions = torch.eye(3)
    dset = DirectionSet(directions)
    result = path_length(G, dset.shift, 3, pixel_distance, samples=3000, delta=1e-2, seed=0)
    expected = torch.stack([(d @ G.W).square().mean() for d in directions])  # per direction |W d|^2 / P
    assert expected.min() < result["ppl"] < expected.max()
    assert result["ppl"] == pytest.approx(expected.mean().item(), rel=0.1)
    # a deformator twice as long: twice the image change per unit eps, the same per unit latent distance
    long = DirectionSet(2 * directions)
    doubled = path_length(G, long.shift, 3, pixel_distance, samples=3000, delta=1e-2, seed=0)
    assert doubled["ppl"] == pytest.approx(4 * result["ppl"], rel=1e-3)
    assert doubled["ppl_latent"] == pytest.approx(result["ppl_latent"], rel=1e-3)


def test_lpips_wiring_and_missing_backbone(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(GanzooError, match=r"vgg16-397923af\.pth"):
        lpips_distance("vgg", "cpu")
    distance, label = lpips_distance("vgg-random", "cpu")
    assert "RANDOM backbone" in label
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    d = distance(a, a.flip(0))
    assert d.shape == (2,) and (d > 0).all() and distance(a, a).abs().max() < 1e-6


def test_trimmed_mean_and_dci_scores():
    assert trimmed_mean(torch.cat([torch.ones(98), torch.tensor([-1000.0, 1000.0])])) == 1.0
    perfect = dci_scores(torch.eye(4))
    assert perfect == pytest.approx({"disentanglement": 1.0, "completeness": 1.0, "coverage": 1.0})
    uniform = dci_scores(torch.ones(4, 4))
    assert uniform["disentanglement"] == pytest.approx(0.0, abs=1e-9) and uniform["coverage"] == 0.25
    collapsed = dci_scores(torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]]))
    assert collapsed["disentanglement"] == pytest.approx(1.0)
    assert collapsed["completeness"] < 1.0 and collapsed["coverage"] == pytest.approx(2 / 3)


def test_regressor_reads_the_factors_of_renders(sprites):
    from ganzoo_directions_sprites.regressor import factor_readout

    readout = factor_readout()
    small = build_generator("sprites", options={"image_size": 32})
    z = small.sample_latents(512, torch.Generator().manual_seed(99))
    truth = (small.factor_values(z) - small.low) / (small.high - small.low)
    error = (readout.predict(small.render(z)) - truth).abs().mean(0)  # per factor, in units of the range
    assert error.max() < 0.06, dict(zip(readout.names, error.tolist(), strict=True))


def test_factor_score_separates_true_from_random_directions(sprites):
    readout = sprites.factor_readout()
    true = factor_scores(sprites, DirectionSet(sprites.known_factors().directions), readout, samples=128)
    randoms = [
        factor_scores(sprites, DirectionSet(random_directions(8, 8, s)), readout, samples=128)
        for s in range(3)
    ]
    assert true["disentanglement"] > 0.6 and true["coverage"] == 1.0
    assert max(r["disentanglement"] for r in randoms) < true["disentanglement"] - 0.25
    assert len(true["factor_effects"]) == 8 and true["factor_names"][0] == "x"


def test_factor_effects_are_measured_at_equal_latent_distance(sprites):
    """A set whose shifts are 5x longer (as MLP deformators learn) is judged at the same distance m."""
    from ganzoo_directions.factors import effect_matrix

    readout = sprites.factor_readout()
    unit = DirectionSet(random_directions(8, 8, 0))
    long = DirectionSet(unit.directions * 5.0)
    a = effect_matrix(sprites, unit, readout, samples=32)
    b = effect_matrix(sprites, long, readout, samples=32)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_untrained_reconstructor_is_at_chance(registry, small_sprites):
    """The RCA measurement itself: a fresh R cannot beat chance by much."""
    from ganzoo_directions.reconstructors import build_reconstructor

    torch.manual_seed(0)
    A = DEFORMATORS["ortho"](8, small_sprites.latent_dim)
    R = build_reconstructor("lenet", 8)
    rca = reconstructor_accuracy(small_sprites, A, R, 8, pairs=512)
    assert rca < 2.5 * CHANCE


def test_factor_alignment_separates_true_from_random(small_sprites):
    true = small_sprites.known_factors().directions  # (8, 8)
    assert factor_alignment(true, true) == pytest.approx({"factor_recall": 1.0, "direction_precision": 1.0})
    flipped = true[torch.randperm(8)] * torch.tensor([1, -1, 1, -1, 1, 1, -1, 1.0])[:, None]
    assert factor_alignment(flipped, true)["factor_recall"] == pytest.approx(1.0)  # order and sign ignored
    for seed in range(5):
        score = factor_alignment(random_directions(8, 8, seed), true)
        assert score["factor_recall"] < 0.85 and score["direction_precision"] < 0.85
    assert alignment_matrix(true, true).shape == (8, 8)


def test_ppl_measures_images_as_stylegan_does():
    """PPL's distance sees images area-downsampled to at most 256 px (a 1024 px pair: 256 px), and with
    the face crop the central region StyleGAN's PPL keeps."""
    from ganzoo_directions.metrics import path_length, ppl_view

    images = torch.arange(1024.0).repeat(1024, 1)[None, None].expand(2, 3, 1024, 1024)
    assert tuple(ppl_view(images).shape) == (2, 3, 256, 256)
    assert torch.allclose(ppl_view(images)[0, 0, 0, :2], torch.tensor([1.5, 5.5]))  # 4x4 means
    cropped = ppl_view(images, crop=True)
    assert tuple(cropped.shape) == (2, 3, 256, 256) and float(cropped[0, 0, 0, 0]) == 256 + 0.5  # 2x2 means
    small = torch.zeros(1, 3, 64, 64)
    assert ppl_view(small) is small

    class Big:  # a 512 px "generator": PPL's distance must never see more than 256 px
        device = torch.device("cpu")

        def sample_latents(self, n, rng):
            return torch.randn(n, 4, generator=rng)

        def render_shifted(self, z, s):
            return (z + s).sum(1).reshape(-1, 1, 1, 1).expand(-1, 3, 512, 512)

    seen = []

    def distance(a, b):
        seen.append(a.shape[-1])
        return (a - b).square().flatten(1).mean(1)

    shift = lambda k, t: torch.nn.functional.one_hot(k, 4).float() * t[:, None]  # noqa: E731
    path_length(Big(), shift, 4, distance, samples=8, batch_size=4)
    assert seen and set(seen) == {256}
