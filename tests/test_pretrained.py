"""Which weights a generator trains on: registered checkpoints (downloaded, checked, recorded), no
silent random weights, and weights paths that travel. Real processes, the local Hub server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.weights import sha256_file

from .helpers import invoke, make_sngan, run_cli
from .hub_server import WRITE_TOKEN, HubServer

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_RUN = ["--method", "centroid", "--steps", "1", "--batch", "2", "--directions", "2", "--rca-pairs", "2"]
TINY_RUN += ["-p", "hidden=8"]


def hub_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "HF_HOME": str(tmp_path / "hf"),
        "HF_TOKEN": WRITE_TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_ETAG_TIMEOUT": "2",
        "HF_HUB_DOWNLOAD_TIMEOUT": "5",
        **extra,
    }


def run_registered(registry: dict, *args: str, env: dict) -> subprocess.CompletedProcess:
    """``zoo-dirs ARGS`` in a real process whose ``registry['generator']`` family knows ``registry``."""
    full = {**os.environ, **env, "ZOO_TEST_REGISTRY": json.dumps(registry), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "tests.registered_cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=full, cwd=REPO_ROOT, timeout=300)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("gen", ["biggan", "biggan-deep", "sngan", "stylegan2"])
def test_the_mission_command_never_trains_on_random_weights(gen, tmp_path):
    """No --weights, offline, empty cache: one line that says how to give weights; no run folder."""
    out = tmp_path / "run"
    env = hub_env(tmp_path, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
    result = run_cli("discover", "--gen", gen, "--method", "centroid", "--out", str(out), env=env)
    line = one_line_error(result)
    assert "--weights NAME" in line and "--random-weights" in line, line
    assert not out.exists()
    if gen == "biggan":  # the paper's BigGAN is not on the Hub: the line says where it is
        assert "biggan-128" in line and "github.com/ajbrock/BigGAN-PyTorch" in line
    if gen in ("biggan-deep", "stylegan2"):  # a default exists: the line says it could not be fetched
        assert "not in the local Hugging Face cache" in line, line


@pytest.mark.slow
def test_random_weights_only_when_asked_and_recorded(tmp_path):
    out = tmp_path / "run"
    args = ["--gen", "sngan", "-g", "arch=custom", "-g", "channels=16,8", "-g", "latent_dim=8", *TINY_RUN]
    result = run_cli("discover", *args, "--random-weights", "--out", str(out))
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "run.json").read_text())
    assert saved["random_weights"] is True and saved["weights"] is None
    both = run_cli("discover", *args, "--random-weights", "--weights", "x.pt", "--out", str(tmp_path / "b"))
    assert "exclude each other" in one_line_error(both)
    procedural = run_cli("discover", "--gen", "sprites", "--random-weights", "--out", str(tmp_path / "c"))
    assert "no random initialisation" in one_line_error(procedural)
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


@pytest.fixture
def tiny_hub(tmp_path):
    """A local Hub holding a tiny SNGAN (generator.pt + args.json) at a pinned commit."""
    weights_dir = make_sngan(tmp_path)
    with HubServer() as hub:
        hub.state.create("zoo/tiny", private=False)
        repo = hub.state.repos["zoo/tiny"]
        for file in weights_dir.iterdir():
            repo.commits[repo.branches["main"]][f"weights/{file.name}"] = file.read_bytes()
        source = f"hf:zoo/tiny/weights/generator.pt@{repo.branches['main']}"
        sha = sha256_file(weights_dir / "generator.pt")
        entry = {"name": "tiny", "source": source, "summary": "a test SNGAN", "license": "mit", "sha256": sha}
        yield hub, entry


def discover_registered(registry: dict, out: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    """A tiny `discover` on sngan in a process whose sngan family knows ``registry``."""
    return run_registered(
        registry, "discover", "--gen", "sngan", *extra, *TINY_RUN, "--out", str(out), env=env
    )


@pytest.mark.slow
def test_registered_default_is_downloaded_checked_and_recorded(tiny_hub, tmp_path):
    hub, entry = tiny_hub
    source, sha = entry["source"], entry["sha256"]
    env = hub_env(tmp_path, HF_ENDPOINT=hub.url)
    registry = {"generator": "sngan", "default": "tiny", "entries": [entry]}

    listed = run_registered(registry, "list", "--json", env=env)
    sngan = next(row for row in json.loads(listed.stdout) if row["name"] == "sngan")
    assert sngan["weights"] == [{**entry, "homepage": None, "paper": False, "default": True, "options": {}}]

    result = discover_registered(registry, tmp_path / "a", env)
    assert result.returncode == 0, result.stderr
    spec = DirectionSet.load(tmp_path / "a").spec["generator"]
    assert spec["weights"] == source and spec["fingerprint"] == sha
    by_name = discover_registered(registry, tmp_path / "b", env, "--weights", "tiny")
    assert by_name.returncode == 0, by_name.stderr
    assert json.loads((tmp_path / "b" / "run.json").read_text())["weights"] == "tiny"
    # cached now: the same name works offline
    offline = hub_env(tmp_path, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
    again = run_registered(
        registry, "traverse", str(tmp_path / "b"), "--out", str(tmp_path / "t.png"), env=offline
    )
    assert again.returncode == 0, again.stderr

    tampered = {**registry, "entries": [{**entry, "sha256": "0" * 64}]}
    bad = discover_registered(tampered, tmp_path / "c", env)
    assert "not the registered" in one_line_error(bad)

    cold = hub_env(tmp_path / "cold", HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
    refused = discover_registered(registry, tmp_path / "d", cold)
    line = one_line_error(refused)
    assert "HF_HUB_OFFLINE" in line and "--random-weights" in line and "tiny" in line
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_a_pulled_set_says_which_registered_weights_it_was_made_for(tiny_hub, tmp_path):
    hub, entry = tiny_hub
    env = hub_env(tmp_path, HF_ENDPOINT=hub.url)
    registry = {"generator": "sngan", "default": None, "entries": [entry]}
    made = discover_registered(registry, tmp_path / "a", env, "--weights", "tiny")
    assert made.returncode == 0, made.stderr
    assert run_registered(registry, "push", str(tmp_path / "a"), "alice/tiny-dirs", env=env).returncode == 0
    pulled = run_registered(registry, "pull", "alice/tiny-dirs", env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert (
        "made for sngan weights 'tiny' (mit" in pulled.stdout
        and "--weights tiny downloads them" in pulled.stdout
    )


@pytest.mark.slow
def test_weights_paths_travel(tmp_path):
    """A run made with a relative --weights is read from any folder; moved weights are named with --weights
    and checked against the recorded fingerprint."""
    (tmp_path / "work").mkdir()
    make_sngan(tmp_path)  # tmp_path/SN_Tiny
    made = run_cli(
        "discover",
        "--gen",
        "sngan",
        "--weights",
        "../SN_Tiny",
        *TINY_RUN,
        "--out",
        "run",
        cwd=tmp_path / "work",
    )
    assert made.returncode == 0, made.stderr
    run = tmp_path / "work" / "run"
    recorded = json.loads((run / "run.json").read_text())["weights"]
    assert recorded == str(tmp_path / "SN_Tiny")
    resumed = run_cli(
        "discover", "--resume", "--out", "run", "--weights", "../SN_Tiny", cwd=tmp_path / "work"
    )
    assert resumed.returncode == 0, resumed.stderr  # the same weights, written relative: not a change

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run_cli("traverse", str(run), "--out", "t.png", cwd=elsewhere).returncode == 0
    shutil.move(tmp_path / "SN_Tiny", tmp_path / "moved")
    lost = run_cli("traverse", str(run), "--out", "t.png", cwd=elsewhere)
    assert "pass --weights PATH" in one_line_error(lost)
    found = run_cli("traverse", str(run), "--weights", "../moved", "--out", "t.png", cwd=elsewhere)
    assert found.returncode == 0, found.stderr
    evaluated = run_cli(
        "evaluate", str(run), "--metrics", "rca", "--samples", "10", "--weights", str(tmp_path / "moved")
    )
    assert evaluated.returncode == 0, evaluated.stderr

    other = tmp_path / "other"
    other.mkdir()
    import torch

    torch.manual_seed(1)
    theirs = make_sngan(other)
    state = torch.load(theirs / "generator.pt", weights_only=True)
    torch.save(
        {k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}, theirs / "generator.pt"
    )
    wrong = run_cli("traverse", str(run), "--weights", str(theirs), "--out", "t.png", cwd=elsewhere)
    line = one_line_error(wrong)
    assert "direction set was made for weights" in line and sha256_file(theirs / "generator.pt")[:12] in line


def test_random_weights_are_the_same_in_every_process_so_their_sets_can_be_read_later(tmp_path):
    """An untrained model is drawn from a fixed seed (and leaves the caller's RNG alone): a set made
    with --random-weights is traversed in a later process without a fingerprint mismatch."""
    import torch

    from ganzoo_directions.runs import build_generator

    options = {"size": 32, "style_dim": 32, "n_mlp": 2, "max_channels": 32}
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first = build_generator("stylegan2", options=options, random_weights=True)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's draws are not moved
    second = build_generator("stylegan2", options=options, random_weights=True)
    assert first.fingerprint == second.fingerprint
    out = tmp_path / "run"
    made = invoke(
        "discover",
        "--gen",
        "stylegan2",
        *[a for k, v in options.items() for a in ("-g", f"{k}={v}")],
        "--random-weights",
        "--method",
        "sefa",
        "--directions",
        "2",
        "--out",
        str(out),
    )
    assert made.returncode == 0, made.stderr
    traversed = invoke("traverse", str(out), "--out", str(tmp_path / "t.png"))
    assert traversed.returncode == 0, traversed.stderr
