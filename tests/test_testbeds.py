"""The ground-truth testbeds: the renderers with the field's factor grids, their readouts, the GANs this
project trained on them (shipped in the sngan and stylegan2 plugins), and the protocol's discrete factors."""

from __future__ import annotations

import math
from importlib.resources import files

import numpy as np
import pytest
import torch

from ganzoo_directions.mig_dci import dci, mig
from ganzoo_directions.runs import build_generator
from ganzoo_directions.weights import sha256_file

from .helpers import invoke

GRIDS = {
    "shapes3d": {
        "floor_hue": 10,
        "wall_hue": 10,
        "object_hue": 10,
        "scale": 8,
        "shape": 4,
        "orientation": 15,
    },
    "dsprites": {"shape": 3, "scale": 6, "orientation": 40, "x": 32, "y": 32},
}
#: (generator, plugin distribution, module, shipped file, testbed, image size, latent dim)
SHIPPED = [
    ("stylegan2-shapes3d", "ganzoo-directions-stylegan2", "ganzoo_directions_stylegan2",
     "stylegan2-shapes3d.safetensors", "shapes3d", 32, 32),
    ("sngan-dsprites", "ganzoo-directions-sngan", "ganzoo_directions_sngan",
     "sngan-dsprites.safetensors", "dsprites", 32, 16),
]  # fmt: skip


@pytest.mark.parametrize("name", GRIDS)
def test_renderer_has_the_published_grid_and_draws_it(name, registry):
    assert registry.generator(name).plugin.distribution == "ganzoo-directions-testbeds"
    G = build_generator(name)
    assert G.factors == GRIDS[name] and G.image_size == 64
    assert G.image_channels == (1 if name == "dsprites" else 3)
    idx = G.sample_grid(512, torch.Generator().manual_seed(0))
    levels = torch.tensor(list(GRIDS[name].values()))
    assert (idx >= 0).all() and (idx < levels).all()
    assert ((idx == 0).any(0) & (idx == levels - 1).any(0)).all()  # both ends of every factor are drawn
    images = G.render_indices(idx[:16])
    assert images.shape == (16, G.image_channels, 64, 64) and images.min() >= -1 and images.max() <= 1
    # one factor at a time changes the image, and each grid point renders as it did
    base = idx[:1].repeat(len(levels), 1)
    moved = base.clone()
    for j in range(len(levels)):
        moved[j, j] = (base[j, j] + levels[j] // 2) % levels[j]
    diff = (G.render_indices(moved) - G.render_indices(base)).abs().flatten(1).mean(1)
    assert (diff > 1e-3).all(), diff
    # as a generator: z drives the factors through the mixing; its rows are the true directions
    truth = G.known_factors()
    assert truth.names == tuple(GRIDS[name]) and torch.allclose(
        truth.directions @ truth.directions.t(), torch.eye(len(levels)), atol=1e-5
    )


@pytest.mark.parametrize("name", GRIDS)
def test_readout_recovers_every_factor_on_renders(name):
    G = build_generator(name)
    readout = G.factor_readout()
    assert readout.names == tuple(GRIDS[name]) and readout.levels == tuple(GRIDS[name].values())
    from ganzoo_directions_testbeds.readout import shipped

    model = shipped(name)
    idx = G.sample_grid(400, torch.Generator().manual_seed(7))
    accuracy = (model.classify(G.render_indices(idx)) == idx).float().mean(0)
    chance = 1 / torch.tensor(list(GRIDS[name].values()), dtype=torch.float32)
    # every factor far above chance; dSprites' orientation is ambiguous for the square (90-degree
    # symmetry) and the ellipse (180), so it is held to a lower bar (docs/testbeds.md has the figures)
    bar = torch.where(chance < 0.05, torch.full_like(chance, 0.25), torch.full_like(chance, 0.8))
    assert (accuracy > bar).all(), dict(zip(GRIDS[name], accuracy.tolist(), strict=True))
    # the readout's values follow the true ones on labelled real images
    images, units = readout.labelled(256, torch.Generator().manual_seed(3))
    predicted = readout.predict(images)
    for j, factor in enumerate(GRIDS[name]):
        r = np.corrcoef(predicted[:, j].numpy(), units[:, j].numpy())[0, 1]
        # an expected value over a symmetric shape's equivalent orientations sits between them
        assert r > (0.4 if (name, factor) == ("dsprites", "orientation") else 0.9), (factor, r)


@pytest.mark.parametrize("entry", SHIPPED, ids=lambda e: e[0])
def test_shipped_gan_loads_through_its_plugin(entry, registry):
    name, distribution, module, filename, testbed, size, dim = entry
    assert registry.generator(name).plugin.distribution == distribution
    G = build_generator(name)
    shipped = files(module).joinpath("weights", filename)
    assert G.fingerprint == sha256_file(str(shipped)) and G.describe()["weights"] is None
    assert G.image_size == size and G.latent_dim == dim
    assert len(shipped.read_bytes()) < 8_000_000  # a few MB at most
    z = G.sample_latents(16, torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = G.render(z)
    assert x.std() > 0.1  # not a constant image
    readout = G.factor_readout()
    assert readout is not None and readout.names == tuple(GRIDS[testbed])
    assert readout.predict(x).shape == (16, len(GRIDS[testbed]))


def test_stylegan2_shapes3d_is_a_w_space_stylegan2():
    G = build_generator("stylegan2-shapes3d")
    # an ordinary StyleGAN2 in rosinality's layout, as safetensors: the stylegan2 generator reads it too
    shipped = files("ganzoo_directions_stylegan2").joinpath("weights", "stylegan2-shapes3d.safetensors")
    plain = build_generator("stylegan2", weights=str(shipped))
    assert plain.fingerprint == G.fingerprint and torch.equal(plain.latent_avg, G.latent_avg)
    assert G.latent_space == "w" and G.model_config.n_latent == 8
    w = G.sample_latents(4, torch.Generator().manual_seed(0))
    assert not torch.allclose(w.mean(0), torch.zeros_like(w[0]), atol=0.05)  # W is not centred at 0
    truncated = build_generator("stylegan2-shapes3d", options={"truncation": 0.5})
    w_half = truncated.sample_latents(4, torch.Generator().manual_seed(0))
    assert torch.allclose(w_half - G.latent_avg, 0.5 * (w - G.latent_avg), atol=1e-5)
    coarse = build_generator("stylegan2-shapes3d", options={"layers": "0-3"})
    shift = torch.zeros_like(w)
    shift[:, 0] = 5.0
    with torch.no_grad():  # a shift on the coarse layers differs from one on every layer
        assert not torch.allclose(coarse.render_shifted(w, shift), G.render_shifted(w, shift))


@pytest.mark.parametrize(
    "name",
    [
        # the default starts from DeepSpectral: 2,048 image Jacobians take a minute on these two
        pytest.param("shapes3d", marks=pytest.mark.slow),
        "dsprites",
        pytest.param("stylegan2-shapes3d", marks=pytest.mark.slow),
        "sngan-dsprites",
    ],
)
def test_discover_with_the_default_method_on_each_testbed(name, tmp_path):
    out = tmp_path / "run"
    result = invoke("discover", "--gen", name, "--steps", "3", "--rca-pairs", "16", "--out", str(out))
    assert result.returncode == 0, result.stderr
    from ganzoo_directions.directions import DirectionSet

    spec = DirectionSet.load(out).spec
    assert spec["generator"]["name"] == name and spec["method"]["name"] == "orojar-span"
    assert spec["generator"]["weights"] is None  # shipped or procedural: nothing to download
    assert (out / "traversal.png").is_file()


@pytest.mark.slow
def test_benchmark_on_a_testbed_gan_scores_grid_factors(tmp_path):
    # one GAN and one method: DCI fits one boosted classifier per factor value (57 here), the slow part
    out = tmp_path / "bench"
    grid = ["--gen", "stylegan2-shapes3d", "--methods", "sefa", "--seeds", "0"]
    quick = ["--samples", "32", "--protocol-steps", "10", "--protocol-images", "200"]
    result = invoke("benchmark", *grid, *quick, "--out", str(out))
    assert result.returncode == 0, result.stderr
    import json

    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["label"] for r in rows] == ["sefa"]
    for row in rows:
        assert 0 <= row["mig"] <= 1 and 0 <= row["dci_disentanglement"] <= 1
        assert 0 <= row["dci_informativeness"] <= 1  # grid factors: a test accuracy, not an R^2


def _full_grid(levels: tuple[int, ...], repeats: int = 4) -> np.ndarray:
    """Every combination of the grid, ``repeats`` times: ``(prod(levels) * repeats, F)`` indices."""
    mesh = np.meshgrid(*[np.arange(n) for n in levels], indexing="ij")
    return np.tile(np.stack([m.ravel() for m in mesh], axis=1), (repeats, 1))


def test_mig_treats_grid_factors_as_classes():
    levels = (32, 5)
    idx = _full_grid(levels)
    units = idx / (np.array(levels) - 1)
    codes = idx.astype(np.float64)  # code i is factor i exactly
    # factor 0 has 32 values, codes are cut into 20 bins: the binned code keeps
    # H(bin) = (12 * 2/32 * log 16 + 8 * 1/32 * log 32) = 4.25 log 2 of H(factor) = 5 log 2;
    # factor 1 (5 values) is kept whole; the other code knows nothing of either (a full product grid)
    expected = (4.25 / 5 + 1.0) / 2
    assert mig(codes, units, levels=levels)["mig"] == pytest.approx(expected, abs=1e-9)
    # read as continuous, factor 0 would be binned like its code and look perfectly captured
    assert mig(codes, units)["mig"] == pytest.approx(1.0, abs=1e-9)
    # a code that mixes both factors equally gives no gap for either
    mixed = np.stack([idx[:, 0] * 5 + idx[:, 1], idx[:, 0] * 5 + idx[:, 1]], axis=1).astype(np.float64)
    assert mig(mixed, units, levels=levels)["mig"] == pytest.approx(0.0, abs=1e-9)


def test_dci_classifies_grid_factors():
    levels = (4, 3)
    idx = _full_grid(levels, repeats=20)
    rng = np.random.default_rng(0)
    idx = idx[rng.permutation(len(idx))]
    units = idx / (np.array(levels) - 1)
    codes = idx + 0.1 * rng.standard_normal(idx.shape)
    scores = dci(codes, units, levels=levels)
    assert scores["dci_informativeness"] == pytest.approx(1.0)  # test accuracy: every class recovered
    assert scores["dci_disentanglement"] > 0.9 and scores["dci_completeness"] > 0.9
    swapped = dci(codes[:, ::-1], units, levels=levels)
    assert np.argmax(swapped["dci_importance"], axis=0).tolist() == [1, 0]
    assert math.isfinite(swapped["dci_disentanglement"])
