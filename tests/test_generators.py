"""Generator plugins for real GANs, on small random checkpoints saved in the public layouts.

For each family: a small configuration is built, saved the way the public checkpoints are saved,
loaded through the path a user takes (a local file or folder, and the Hugging Face cache with
HF_HUB_OFFLINE=1), and checked: shapes, determinism, that a latent shift changes the image, that a
damaged or mismatched file gets one clear error, and that the discovery loop runs on it.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from ganzoo_directions.errors import CheckpointError
from ganzoo_directions.runs import build_generator, build_method
from ganzoo_directions.testing import check_generator, check_method

from .helpers import FAMILIES, SMALL_BUILDS, make_biggan_deep, make_stylegan2, run_cli
from .hub_server import WRITE_TOKEN, HubServer


@pytest.fixture(params=FAMILIES, ids=lambda f: f.name)
def family(request, registry):
    return request.param


def test_loads_and_renders(family, tmp_path):
    source = family.make(tmp_path)
    G = build_generator(family.name, weights=str(source), options=family.options)
    check_generator(G)
    z = G.sample_latents(3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = G.render(z)
    # the same weights loaded again give the same fingerprint and images
    again = build_generator(family.name, weights=str(source), options=family.options)
    assert again.fingerprint == G.fingerprint
    with torch.no_grad():
        assert torch.equal(again.render(z), x)


def first_party(kind: str) -> list[str]:
    from ganzoo_directions import plugins

    registry = plugins.get_registry()
    entries = registry.generators if kind == "generator" else registry.methods
    return sorted(n for n, e in entries.items() if e.plugin.distribution.startswith("ganzoo-directions-"))


@pytest.mark.parametrize("name", first_party("generator"))
def test_every_registered_generator_meets_the_contract(name, registry, tmp_path):
    assert name in SMALL_BUILDS, f"add a small build of {name!r} to SMALL_BUILDS"
    check_generator(SMALL_BUILDS[name](tmp_path))


def test_check_generator_catches_draws_that_ignore_the_given_generator(registry):
    from ganzoo_directions_sprites.sprites import SpritesGenerator

    class OwnRandomness(SpritesGenerator):
        name = "own-randomness"

        def sample_latents(self, n, generator=None):  # the bug: a private CPU generator, then .to()
            return torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(0)).to(self.device)

    with pytest.raises(AssertionError, match=r"must draw from the torch\.Generator it is given"):
        check_generator(OwnRandomness(image_size=16))


@pytest.mark.parametrize("name", first_party("method"))
def test_every_registered_method_meets_the_contract(name, registry, tmp_path):
    generator = build_generator("sprites", options={"image_size": 16})
    # built as the host builds it: a closed-form start a method names (-p init=...) is resolved
    method = build_method(
        name, {"hidden": 16} if "hidden" in registry.method(name).cls.hyperparameters else {}
    )
    check_method(method, generator, tmp_path)


def test_damaged_and_mismatched_files(family, tmp_path):
    source = family.make(tmp_path)
    weights = source / family.weights_file if source.is_dir() else source
    state = torch.load(weights, weights_only=True)
    inner = state.get("g_ema", state) if isinstance(state, dict) else state
    key = sorted(inner)[0]
    del inner[key]
    broken = tmp_path / f"broken-{weights.name}"
    torch.save(state, broken)
    with pytest.raises(CheckpointError, match=f"missing keys: .*{key.split('.')[-1]}"):
        build_generator(family.name, weights=str(broken), options=family.options)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable weights file"):
        build_generator(family.name, weights=str(garbage), options=family.options)


def test_pickled_code_is_refused(family, tmp_path):
    class Evil:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    evil = tmp_path / "evil.pt"
    torch.save({"payload": Evil()}, evil)
    with pytest.raises(CheckpointError, match="refuses pickled code"):
        build_generator(family.name, weights=str(evil), options=family.options)
    assert (tmp_path / "victim").is_dir()


# the smallest discovery run: enough to go through loading, a training step and the RCA
TINY_RUN = ["--method", "centroid", "--batch", "2", "--directions", "2", "--rca-pairs", "2", "-p", "hidden=8"]


@pytest.mark.slow
def test_from_the_hub_cache_offline(family, tmp_path):
    source = family.make(tmp_path)
    weights = source / family.weights_file if source.is_dir() else source
    env = {
        "HF_HOME": str(tmp_path / "hf"),
        "HF_TOKEN": WRITE_TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    options = [arg for key, value in family.options.items() for arg in ("-g", f"{key}={value}")]
    with HubServer() as hub:
        hub.state.create("zoo/tiny", private=False)
        repo = hub.state.repos["zoo/tiny"]
        for file in weights.parent.iterdir():  # the weights and their companions (config.json)
            repo.commits[repo.branches["main"]][f"weights/{file.name}"] = file.read_bytes()
        sha = repo.branches["main"]
        ref = f"hf:zoo/tiny/weights/{family.weights_file}@{sha}"
        online = {**env, "HF_ENDPOINT": hub.url}
        result = run_cli(
            "discover",
            "--gen",
            family.name,
            "--weights",
            ref,
            *options,
            "--steps",
            "1",
            *TINY_RUN,
            "--out",
            str(tmp_path / "online"),
            env=online,
        )
        assert result.returncode == 0, result.stderr
    offline = {**env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    result = run_cli(
        "discover",
        "--gen",
        family.name,
        "--weights",
        ref,
        *options,
        "--steps",
        "2",
        *TINY_RUN,
        "--out",
        str(tmp_path / "offline"),
        env=offline,
    )
    assert result.returncode == 0, result.stderr
    from ganzoo_directions.directions import DirectionSet

    spec = DirectionSet.load(tmp_path / "offline").spec["generator"]
    assert spec["weights"] == ref
    from ganzoo_directions.weights import sha256_file

    assert spec["fingerprint"] == sha256_file(weights)


def test_discovery_runs_a_few_steps(family, registry, tmp_path, quick_settings):
    source = family.make(tmp_path)
    G = build_generator(family.name, weights=str(source), options=family.options)
    method = registry.method("centroid").cls(hidden=16)
    result = method.discover(
        G, quick_settings(num_directions=4, steps=3, batch_size=2, run_dir=tmp_path / "r")
    )
    assert result.directions.shape == (4, G.latent_dim)
    assert all(p.grad is None for p in G.parameters())


def test_stylegan2_layers_and_spaces(tmp_path):
    import argparse

    from ganzoo_directions.errors import GanzooError

    path = make_stylegan2(tmp_path)
    every = build_generator("stylegan2", weights=str(path))
    early = build_generator("stylegan2", weights=str(path), options={"layers": "0-3"})
    assert every.model_config.n_latent == 8 and early.layers == [0, 1, 2, 3]
    w = every.sample_latents(2, torch.Generator().manual_seed(0))
    shift = 4 * torch.nn.functional.normalize(torch.randn(1, every.latent_dim), dim=1).expand(2, -1)
    with torch.no_grad():
        base = every.render(w)
        moved_all, moved_early = every.render_shifted(w, shift), early.render_shifted(w, shift)
        assert torch.allclose(moved_all, every.render(w + shift))  # all layers: a plain W shift
        assert (moved_early - base).abs().mean() > 1e-3
        assert (moved_early - moved_all).abs().mean() > 1e-3  # later layers kept their w
        assert torch.equal(early.render_shifted(w, torch.zeros_like(w)), base)
    z_space = build_generator("stylegan2", weights=str(path), options={"space": "z", "truncation": 0.5})
    z = z_space.sample_latents(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = every.net.synthesis(z_space._truncate(every.net.mapping(z))[:, None].expand(-1, 8, -1))
        assert torch.allclose(z_space.render(z), expected.clamp(-1, 1))
    for bad in ("9", "3-1", "x"):
        with pytest.raises(GanzooError, match="layers"):
            build_generator("stylegan2", weights=str(path), options={"layers": bad})
    with pytest.raises(GanzooError, match="needs space=w"):
        build_generator("stylegan2", weights=str(path), options={"space": "z", "layers": "0-2"})
    # a train.py checkpoint stores argparse.Namespace args and no latent_avg: still loads, no unpickling
    state = torch.load(path, weights_only=True)
    torch.save({"g_ema": state["g_ema"], "args": argparse.Namespace(size=32)}, tmp_path / "train.pt")
    trained = build_generator("stylegan2", weights=str(tmp_path / "train.pt"))
    assert trained.latent_avg.shape == (32,)


def test_biggan_class_names_and_truncation(tmp_path):
    from ganzoo_directions_biggan import imagenet_class

    from ganzoo_directions.errors import GanzooError

    assert imagenet_class("207") == 207 and imagenet_class("Golden Retriever") == 207
    with pytest.raises(GanzooError, match="did you mean 'golden retriever'"):
        imagenet_class("golden retreiver")
    with pytest.raises(GanzooError, match="outside"):
        imagenet_class("1000")
    source = make_biggan_deep(tmp_path)
    G = build_generator("biggan-deep", weights=str(source), options={"class": "3", "truncation": 0.3})
    z = G.sample_latents(500, torch.Generator().manual_seed(0))
    assert z.abs().max() <= 2 * 0.3 + 1e-6  # truncated normal, scaled by the truncation
    with pytest.raises(GanzooError, match="truncation"):
        build_generator("biggan-deep", weights=str(source), options={"truncation": 1.5})


def _persistence_pickle(path: Path, g_ema_state: dict) -> None:
    """Write a pickle shaped like NVIDIA's network snapshots: modules stored through
    ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with their source code in ``meta``.
    The fake ``torch_utils`` module exists only while dumping, so loading cannot import it."""
    import pickle
    import sys
    import types

    package = types.ModuleType("torch_utils")
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - never called by the loader
        raise AssertionError("the loader must not run the persistence hook")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    sys.modules["torch_utils"], sys.modules["torch_utils.persistence"] = package, persistence

    class Persistent:
        def __init__(self, class_name, state):
            self.meta = {
                "type": "class",
                "version": 4,
                "class_name": class_name,
                "state": state,
                "module_src": "import os\nos.system('touch /tmp/ganzoo-pwned')\n",
            }

        def __reduce__(self):
            return (_reconstruct_persistent_obj, (self.meta,))

    def module(class_name, tensors, children=(), **attrs):
        params = {
            k: torch.nn.Parameter(v) for k, v in tensors.items() if not k.endswith(("noise_const", "w_avg"))
        }
        buffers = {k: v for k, v in tensors.items() if k.endswith(("noise_const", "w_avg"))}
        return Persistent(
            class_name,
            {
                "training": False,
                "_parameters": params,
                "_buffers": buffers,
                "_modules": dict(children),
                **attrs,
            },
        )

    def node(prefix, class_name, **attrs):
        own = {
            k[len(prefix) + 1 :]: v
            for k, v in g_ema_state.items()
            if k.startswith(prefix + ".") and "." not in k[len(prefix) + 1 :]
        }
        names = sorted(
            {
                k[len(prefix) + 1 :].split(".")[0]
                for k in g_ema_state
                if k.startswith(prefix + ".") and "." in k[len(prefix) + 1 :]
            }
        )
        children = {n: node(f"{prefix}.{n}", "Layer", **attrs) for n in names}
        return module(class_name, own, children.items(), **attrs)

    try:
        mapping = node("mapping", "MappingNetwork")
        synthesis = node("synthesis", "SynthesisNetwork", conv_clamp=256)
        g = module("Generator", {}, {"mapping": mapping, "synthesis": synthesis}.items(), c_dim=0)
        with open(path, "wb") as f:
            pickle.dump({"G_ema": g, "D": None}, f)
    finally:
        del sys.modules["torch_utils"], sys.modules["torch_utils.persistence"]


def _rosinality_to_nvidia(state: dict, latent_avg: torch.Tensor) -> dict:
    """The inverse of the loader's name map, written independently for the test."""
    out = {"mapping.w_avg": latent_avg}
    for key, value in state.items():
        if key.startswith("style."):
            i = int(key.split(".")[1]) - 1
            out[f"mapping.fc{i}.{key.split('.')[2]}"] = value
    out["synthesis.b4.const"] = state["input.input"][0]

    def styled(src, dst, noise):
        out[f"{dst}.weight"] = state[f"{src}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = state[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = state[f"{src}.conv.modulation.bias"]
        out[f"{dst}.noise_strength"] = state[f"{src}.noise.weight"][0]
        out[f"{dst}.bias"] = state[f"{src}.activate.bias"]
        out[f"{dst}.noise_const"] = state[f"noises.noise_{noise}"][0, 0]
        out[f"{dst}.resample_filter"] = torch.ones(4, 4) / 16

    def rgb(src, dst):
        out[f"{dst}.weight"] = state[f"{src}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = state[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = state[f"{src}.conv.modulation.bias"]
        out[f"{dst}.bias"] = state[f"{src}.bias"].flatten()

    styled("conv1", "synthesis.b4.conv1", 0)
    rgb("to_rgb1", "synthesis.b4.torgb")
    n = len({k.split(".")[1] for k in state if k.startswith("to_rgbs.")})
    for i in range(n):
        res = 2 ** (i + 3)
        styled(f"convs.{2 * i}", f"synthesis.b{res}.conv0", 2 * i + 1)
        styled(f"convs.{2 * i + 1}", f"synthesis.b{res}.conv1", 2 * i + 2)
        rgb(f"to_rgbs.{i}", f"synthesis.b{res}.torgb")
    return out


def test_nvidia_network_pickle_without_running_its_code(tmp_path):
    import os

    from ganzoo_directions_stylegan2.adapter import infer_config

    source = torch.load(make_stylegan2(tmp_path), weights_only=True)
    nvidia = _rosinality_to_nvidia(source["g_ema"], source["latent_avg"])
    path = tmp_path / "network-snapshot-000100.pkl"
    _persistence_pickle(path, nvidia)
    if os.path.exists("/tmp/ganzoo-pwned"):
        os.remove("/tmp/ganzoo-pwned")
    G = build_generator("stylegan2", weights=str(path), options={"truncation": 0.7})
    assert not os.path.exists("/tmp/ganzoo-pwned")  # module_src was never executed
    assert G.model_config.conv_clamp == 256.0 and G.model_config.size == 32
    assert torch.equal(G.latent_avg, source["latent_avg"])
    again = tmp_path / "again"
    again.mkdir()
    reference = build_generator("stylegan2", weights=str(make_stylegan2(again)), options={"truncation": 0.7})
    w = G.sample_latents(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(G.render(w), reference.render(w), atol=1e-6)  # nothing here reaches +-256
    inferred = infer_config(source["g_ema"], 0.01)  # from the tensors' names and shapes alone
    built = (32, 32, 2, ((4, 32), (8, 32), (16, 32), (32, 32)))  # make_stylegan2's (max_channels 32)
    assert (inferred.size, inferred.style_dim, inferred.n_mlp, inferred.widths) == built
    assert G.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()  # the file's, as recorded in sets


def test_hostile_or_foreign_pickles_are_refused(tmp_path):
    import pickle

    evil = tmp_path / "evil.pkl"
    with open(evil, "wb") as f:
        pickle.dump({"G_ema": __import__("collections").Counter()}, f)  # a global outside the allow-list
    with pytest.raises(CheckpointError, match=r"refused to load collections\.Counter"):
        build_generator("stylegan2", weights=str(evil))

    class RunsCode:
        def __reduce__(self):
            return (os_system, ("touch /tmp/ganzoo-pwned2",))

    import os

    os_system = os.system
    with open(evil, "wb") as f:
        pickle.dump({"G_ema": RunsCode()}, f)
    with pytest.raises(CheckpointError, match=r"refused to load (posix|os)\.system"):
        build_generator("stylegan2", weights=str(evil))
    assert not os.path.exists("/tmp/ganzoo-pwned2")

    source = torch.load(make_stylegan2(tmp_path), weights_only=True)
    nvidia = _rosinality_to_nvidia(source["g_ema"], source["latent_avg"])
    nvidia["synthesis.b4.conv1.extra_thing"] = torch.zeros(3)
    _persistence_pickle(tmp_path / "odd.pkl", nvidia)
    with pytest.raises(CheckpointError, match="cannot map"):
        build_generator("stylegan2", weights=str(tmp_path / "odd.pkl"))
    del nvidia["synthesis.b4.conv1.extra_thing"], nvidia["synthesis.b4.const"]
    _persistence_pickle(tmp_path / "short.pkl", nvidia)
    with pytest.raises(CheckpointError, match=r"lacks 'synthesis\.b4\.const'"):
        build_generator("stylegan2", weights=str(tmp_path / "short.pkl"))


def test_live_options_share_the_loaded_weights(tmp_path, monkeypatch):
    """The explorer's truncation / layer-range controls build variants from the loaded weights: nothing
    is read or hashed again, nothing copied, and each variant renders as a fresh build would."""
    from ganzoo_directions import weights as weights_module

    path = str(make_stylegan2(tmp_path))
    G = build_generator("stylegan2", weights=path, options={"truncation": 0.7})
    reads = []
    monkeypatch.setattr(weights_module, "read_weights", lambda *a: reads.append(a) or pytest.fail("re-read"))
    monkeypatch.setattr(weights_module, "sha256_file", lambda *a: pytest.fail("re-hashed"))
    variant = G.with_options(truncation=0.5, layers="0-3")
    assert variant.net is G.net and variant.latent_avg.data_ptr() == G.latent_avg.data_ptr()
    assert G.config["truncation"] == 0.7 and G.layers != variant.layers  # the original is unchanged
    monkeypatch.undo()
    fresh = build_generator("stylegan2", weights=path, options={"truncation": 0.5, "layers": "0-3"})
    w = fresh.sample_latents(2, torch.Generator().manual_seed(1))
    shift = torch.randn(2, fresh.latent_dim)
    assert torch.allclose(variant.render_shifted(w, shift), fresh.render_shifted(w, shift), atol=1e-5)
    assert torch.allclose(variant.sample_latents(2, torch.Generator().manual_seed(1)), w)
    assert fresh.fingerprint == variant.fingerprint
