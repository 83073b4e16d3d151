"""SeFa, GANSpace, random and axes: closed-form methods, through the same registry and run code."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganzoo_directions.errors import GanzooError
from ganzoo_directions.interfaces import GeneratorAdapter
from ganzoo_directions.metrics import factor_alignment, random_directions
from ganzoo_directions.runs import build_generator

from .helpers import make_biggan, make_sngan, make_stylegan2


def discover(registry, name, generator, settings, **params):
    return registry.method(name).cls(**params).discover(generator, settings)


@pytest.mark.parametrize("name", ["sefa", "ganspace", "random", "axes"])
def test_unit_directions_on_sprites(registry, sprites, quick_settings, name):
    result = discover(registry, name, sprites, quick_settings(num_directions=8))
    d = result.directions
    assert d.shape == (8, 8) and result.deformator is None and result.reconstructor is None
    assert torch.allclose(d.norm(dim=1), torch.ones(8), atol=1e-5)
    if name != "ganspace":  # the regressed GANSpace directions need not be orthogonal
        assert torch.allclose(d @ d.t(), torch.eye(8), atol=1e-4)


def test_controls(registry, sprites, quick_settings):
    assert torch.equal(
        discover(registry, "axes", sprites, quick_settings(num_directions=3)).directions, torch.eye(8)[:3]
    )
    a = discover(registry, "random", sprites, quick_settings(seed=1)).directions
    assert torch.equal(a, random_directions(8, 8, 1))
    assert not torch.equal(a, discover(registry, "random", sprites, quick_settings(seed=2)).directions)
    with pytest.raises(GanzooError, match="at most D = 8"):
        discover(registry, "axes", sprites, quick_settings(num_directions=9))


def test_sefa_finds_the_subspace_the_latent_is_read_through(registry, quick_settings):
    # sprites with 12 latent dimensions reads z only through M (8 x 12): W^T W projects onto the
    # 8-dimensional factor subspace, so SeFa's top 8 eigenvectors must span exactly that subspace.
    sprites12 = registry.generator("sprites").cls(latent_dim=12)
    d = discover(registry, "sefa", sprites12, quick_settings(num_directions=8)).directions
    M = sprites12.known_factors().directions  # (8, 12)
    assert torch.allclose((d @ M.t()).norm(dim=1), torch.ones(8), atol=1e-5)


def test_sefa_matches_an_independent_svd(registry, tmp_path, quick_settings):
    G = build_generator("sngan", weights=str(make_sngan(tmp_path)), options={"arch": "custom"})
    d = discover(registry, "sefa", G, quick_settings(num_directions=5)).directions
    W = F.normalize(G.net.model[0].weight.detach().double(), dim=1)
    V = torch.linalg.svd(W, full_matrices=False).Vh[:5].float()  # right singular vectors, descending
    assert torch.allclose((d * V).sum(1).abs(), torch.ones(5), atol=1e-4)  # equal up to sign


def test_sefa_refuses_generators_that_do_not_expose_their_weights(registry, quick_settings):
    class Opaque(GeneratorAdapter):
        name = "opaque"
        latent_dim = 4
        image_size = 8

        def sample_latents(self, n, generator=None):
            return torch.randn(n, 4, generator=generator)

        def render(self, latents):
            return torch.tanh(latents.sum(1))[:, None, None, None].expand(-1, 3, 8, 8)

    with pytest.raises(GanzooError, match="does not expose"):
        discover(registry, "sefa", Opaque(), quick_settings(num_directions=2))
    # GANSpace still works through the default early features (pooled images)
    result = discover(registry, "ganspace", Opaque(), quick_settings(num_directions=2), samples=64)
    assert result.directions.shape == (2, 4)


def test_ganspace_in_w_is_the_pca_of_w(registry, tmp_path, quick_settings):
    G = build_generator("stylegan2", weights=str(make_stylegan2(tmp_path)))
    result = discover(registry, "ganspace", G, quick_settings(num_directions=4, seed=3), samples=512)
    rng = torch.Generator().manual_seed(3)  # the method samples 256 at a time from one seeded generator
    w = torch.cat([G.sample_latents(256, rng), G.sample_latents(256, rng)])
    wc = w - w.mean(0)
    variances = [(wc @ d).var().item() for d in result.directions]
    assert variances == sorted(variances, reverse=True)
    top = torch.linalg.svd(wc, full_matrices=False).Vh[0]
    assert abs(float(top @ result.directions[0])) > 0.999


def test_ganspace_regression_path_on_sngan_and_on_sprites(registry, tmp_path, quick_settings, sprites):
    G = build_generator("sngan", weights=str(make_sngan(tmp_path)), options={"arch": "custom"})
    result = discover(registry, "ganspace", G, quick_settings(num_directions=4), samples=256)
    assert result.directions.shape == (4, 16)
    # on sprites the factors have unequal pixel energies, so PCA separates them: measured 0.80
    # direction precision at 4096 samples, against 0.64 for random directions (docs/sprites.md)
    d = discover(registry, "ganspace", sprites, quick_settings(num_directions=8), samples=1024).directions
    score = factor_alignment(d, sprites.known_factors().directions)
    assert score["direction_precision"] > 0.72


def test_latent_weights_of_the_families(tmp_path):
    sg = build_generator("stylegan2", weights=str(make_stylegan2(tmp_path)), options={"layers": "0-2"})
    rows = sg.latent_weights()
    # W+ entries 0, 1, 2 feed conv1, convs.0 and convs.1 (entry 1 also feeds to_rgb1, left out): 3 x 32
    assert rows.shape == (96, 32)
    big = build_generator("biggan", weights=str(make_biggan(tmp_path)), options={"class": "3"})
    W = big.latent_weights()
    assert W.shape[1] == 24
    first = W[: big.net.linear.weight.shape[0]]
    assert first[:, 4:].abs().max() == 0 and first[:, :4].abs().max() > 0  # chunk 0 only (24 / 6 = 4)


def test_deepspectral_estimates_the_jacobian_gram_matrix_of_a_linear_layer(
    registry, tmp_path, quick_settings
):
    # SNGAN's first layer is linear in z: its Jacobian is the weight W at every z, so E[J^T J] is
    # W^T W and the method's estimate (random projections) must converge to it
    G = build_generator("sngan", weights=str(make_sngan(tmp_path)), options={"arch": "custom"})
    method = registry.method("deepspectral").cls(layer="net.model.0", samples=1024, probes=8)
    result = method.discover(G, quick_settings(num_directions=16, batch_size=128))
    W = G.net.model[0].weight.detach().double()  # (P, D)
    d, values = (
        result.directions.double(),
        torch.tensor(result.metrics["deepspectral_eigenvalues"], dtype=torch.float64),
    )
    M = d.t() @ torch.diag(values) @ d  # the estimate, rebuilt from its eigen-decomposition
    assert (M - W.t() @ W).norm() / (W.t() @ W).norm() < 0.1
    assert torch.allclose(d @ d.t(), torch.eye(16, dtype=torch.float64), atol=1e-6)
    assert result.metrics["deepspectral_layer"] == "net.model.0"


def test_deepspectral_beats_random_on_sprites_and_names_unknown_layers(registry, quick_settings):
    sprites = registry.generator("sprites").cls(image_size=16)
    truth = sprites.known_factors().directions
    found = discover(
        registry, "deepspectral", sprites, quick_settings(batch_size=64), layer="image", samples=512
    )
    random = factor_alignment(random_directions(8, 8, 0), truth)["direction_precision"]  # 0.60
    assert factor_alignment(found.directions, truth)["direction_precision"] > random + 0.2  # seen: 0.88
    with pytest.raises(GanzooError, match=r"has no layer 'conv9'; layers: image"):
        discover(registry, "deepspectral", sprites, quick_settings(), layer="conv9")
