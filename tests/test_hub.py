"""Direction sets on the Hub, over real HTTP: the real huggingface_hub client against a local server."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from ganzoo_directions.directions import FILE_NAME, DirectionSet
from ganzoo_directions.errors import GanzooError
from ganzoo_directions.interfaces import RunSettings
from ganzoo_directions.runs import RunRequest, execute

from .helpers import run_cli
from .hub_server import READ_TOKEN, WRITE_TOKEN, HubServer


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real (tiny) run folder made through the same path as `zoo-dirs discover`."""
    folder = tmp_path_factory.mktemp("hubrun") / "run"
    folder.mkdir()
    settings = RunSettings(num_directions=4, steps=4, batch_size=8, run_dir=folder, log_every=2)
    execute(
        RunRequest("sprites", "two-shift", {"image_size": 32}, None, {"hidden": 32}, settings), rca_pairs=16
    )
    return folder


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture
def env(hub, tmp_path):
    """Environment of a user logged in with a write token, with a private cache."""
    return {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_TOKEN": WRITE_TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_ETAG_TIMEOUT": "2",
        "HF_HUB_DOWNLOAD_TIMEOUT": "5",
    }


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.slow
def test_push_then_pull_round_trip(hub, env, run_dir, tmp_path):
    before = snapshot(run_dir)
    result = run_cli("push", str(run_dir), "alice/sprites-dirs", env=env)
    assert result.returncode == 0, result.stderr
    assert "zoo-dirs pull alice/sprites-dirs" in result.stdout
    assert set(hub.files("alice/sprites-dirs")) >= {FILE_NAME, "README.md", "traversal.png"}
    assert snapshot(run_dir) == before  # the local run folder is only read

    out = tmp_path / "pulled"
    result = run_cli("pull", "alice/sprites-dirs", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    local, remote = DirectionSet.load(run_dir), DirectionSet.load(out)
    assert torch.equal(local.directions, remote.directions)
    for key, value in local.deformator.state_dict().items():
        assert torch.equal(value, remote.deformator.state_dict()[key])
    assert remote.spec == local.spec
    assert (out / "README.md").is_file() and (out / "traversal.png").is_file()

    result = run_cli("traverse", str(out), "--directions", "0,1", "--out", str(tmp_path / "g.png"), env=env)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_a_pulled_set_in_the_cache_is_not_rewritten(hub, env, run_dir, tmp_path):
    """`label` / `evaluate` on the folder `pull` printed (the HF cache snapshot) refuse in one line, so a
    later pull never returns a local edit as the Hub's; with --out the copy is the user's to change."""
    assert run_cli("push", str(run_dir), "alice/cached", env=env).returncode == 0
    pulled = run_cli("pull", "alice/cached", env=env)
    assert pulled.returncode == 0, pulled.stderr
    folder = next(line.split(" in ", 1)[1] for line in pulled.stdout.splitlines() if "directions for" in line)
    before = snapshot(Path(folder))
    for args in (["label", folder, "0=zoom"], ["evaluate", folder, "--metrics", "rca", "--samples", "10"]):
        result = run_cli(*args, env=env)
        assert result.returncode == 1 and "pull it with --out DIR" in result.stderr, result.stderr
    assert snapshot(Path(folder)) == before
    copy = tmp_path / "mine"
    assert run_cli("pull", "alice/cached", "--out", str(copy), env=env).returncode == 0
    assert run_cli("label", str(copy), "0=zoom", env=env).returncode == 0


def test_card_header_parses_with_huggingface_hub(hub, env, run_dir, tmp_path):
    from huggingface_hub import ModelCard

    assert run_cli("push", str(run_dir), "alice/card", env=env).returncode == 0
    path = tmp_path / "README.md"
    path.write_bytes(hub.files("alice/card")["README.md"])
    card = ModelCard.load(path)
    data = card.data.to_dict()
    assert data["library_name"] == "ganzoo-directions"
    assert {"method:two-shift", "generator:sprites", "ganzoo-directions"} <= set(data["tags"])
    assert data["license"] == "mit"
    spec = DirectionSet.load(run_dir).spec
    assert spec["generator"]["fingerprint"] in card.text
    assert "| hidden | `32` |" in card.text and "| steps | `4` |" in card.text
    assert "arXiv:2011.11842" in card.text and "zoo-dirs pull alice/card" in card.text
    assert "ganzoo-directions-methods" in card.text  # the plugins a user must install


@pytest.mark.slow
def test_existing_card_is_kept_unless_asked(hub, env, run_dir):
    assert run_cli("push", str(run_dir), "alice/keep", env=env).returncode == 0
    hub.state.repos["alice/keep"].commits[hub.state.repos["alice/keep"].branches["main"]]["README.md"] = (
        b"mine"
    )
    result = run_cli("push", str(run_dir), "alice/keep", env=env)
    assert result.returncode == 0 and "kept the README.md" in result.stdout
    assert hub.files("alice/keep")["README.md"] == b"mine"
    assert run_cli("push", str(run_dir), "alice/keep", "--overwrite-card", env=env).returncode == 0
    assert hub.files("alice/keep")["README.md"].startswith(b"---")


@pytest.mark.slow
def test_branch_and_revision(hub, env, run_dir, tmp_path):
    result = run_cli("push", str(run_dir), "alice/br", "--branch", "exp", "--private", env=env)
    assert result.returncode == 0, result.stderr
    assert FILE_NAME in hub.files("alice/br", "exp") and FILE_NAME not in hub.files("alice/br", "main")
    assert hub.state.repos["alice/br"].private
    assert run_cli("pull", "alice/br@exp", env=env).returncode == 0
    result = run_cli("pull", "alice/br", env=env)
    assert result.returncode != 0 and "has no directions.safetensors" in result.stderr
    result = run_cli("pull", "alice/br@nope", env=env)
    assert result.returncode != 0 and "no such revision" in result.stderr


@pytest.mark.parametrize(
    "token, expected",
    [
        (None, "HF_TOKEN"),
        (READ_TOKEN, "refused the request (403)"),
        ("hf_wrong", "refused the request (401)"),
    ],
)
def test_push_without_rights_is_one_clear_line(hub, env, run_dir, token, expected):
    env = dict(env)
    env.pop("HF_TOKEN")
    if token:
        env["HF_TOKEN"] = token
    before = snapshot(run_dir)
    result = run_cli("push", str(run_dir), "alice/denied", env=env)
    assert result.returncode != 0
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert snapshot(run_dir) == before


@pytest.mark.slow
def test_server_error_mid_upload(hub, env, run_dir):
    hub.state.fail_next["commit"] = 500
    before = snapshot(run_dir)
    result = run_cli("push", str(run_dir), "alice/flaky", env=env)
    assert result.returncode != 0, result.stdout
    assert "server error" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(run_dir) == before
    assert FILE_NAME not in hub.files("alice/flaky")
    assert run_cli("push", str(run_dir), "alice/flaky", env=env).returncode == 0  # a retry works


@pytest.mark.slow
def test_missing_repo_and_private_repo(hub, env):
    result = run_cli("pull", "alice/nothing-here", env=env)
    assert result.returncode != 0 and "not found" in result.stderr and "Traceback" not in result.stderr
    hub.state.create("bob/secret", private=True)
    anonymous = {k: v for k, v in env.items() if k != "HF_TOKEN"}
    result = run_cli("pull", "bob/secret", env=anonymous)
    assert result.returncode != 0 and "not found" in result.stderr and "HF_TOKEN" in result.stderr


@pytest.mark.slow
def test_no_network_then_offline_from_cache(hub, env, run_dir, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = run_cli("pull", "alice/sprites-dirs", env={**env, "HF_ENDPOINT": dead})
    assert result.returncode != 0 and "cannot reach the Hub" in result.stderr
    assert result.stderr.count("\n") == 1  # one line
    result = run_cli("push", str(run_dir), "alice/x", env={**env, "HF_ENDPOINT": dead})
    assert result.returncode != 0 and "cannot reach the Hub" in result.stderr

    assert run_cli("push", str(run_dir), "alice/cached", env=env).returncode == 0
    assert run_cli("pull", "alice/cached", env=env).returncode == 0  # fills the cache
    offline = {**env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": dead}
    result = run_cli("pull", "alice/cached", "--out", str(tmp_path / "off"), env=offline)
    assert result.returncode == 0, result.stderr
    assert torch.equal(DirectionSet.load(tmp_path / "off").directions, DirectionSet.load(run_dir).directions)
    result = run_cli("pull", "alice/never-pulled", env=offline)
    assert result.returncode != 0 and "HF_HUB_OFFLINE is set" in result.stderr


def _upload_raw(hub, repo_id: str, files: dict[str, bytes]) -> None:
    hub.state.create(repo_id, private=False)
    repo = hub.state.repos[repo_id]
    repo.commits[repo.branches["main"]].update(files)


@pytest.mark.slow
def test_pull_checks_format_and_generator(hub, env, run_dir):
    data = (run_dir / FILE_NAME).read_bytes()
    dset = DirectionSet.load(run_dir)
    dset.spec["generator"]["fingerprint"] = "0" * 64
    foreign = dset.save(run_dir.parent / "foreign.safetensors").read_bytes()
    _upload_raw(hub, "eve/foreign", {FILE_NAME: foreign})
    result = run_cli("pull", "eve/foreign", env=env)
    assert result.returncode != 0 and "--allow-mismatch" in result.stderr
    assert run_cli("pull", "eve/foreign", "--allow-mismatch", env=env).returncode == 0

    future = save(
        {"directions": torch.zeros(4, 8)},
        metadata={"format": "ganzoo-directions", "format_version": "7", "spec": "{}"},
    )
    _upload_raw(hub, "eve/future", {FILE_NAME: future})
    result = run_cli("pull", "eve/future", env=env)
    assert result.returncode != 0 and "format version 7" in result.stderr

    _upload_raw(hub, "eve/pickle", {FILE_NAME: b"\x80\x04\x95 a pickle, never unpickled"})
    result = run_cli("pull", "eve/pickle", env=env)
    assert result.returncode != 0 and "not a safetensors file" in result.stderr
    assert data == (run_dir / FILE_NAME).read_bytes()


def test_python_api_round_trip_and_fetch_file(hub, env, run_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from ganzoo_directions.hub import fetch_file

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    dset = DirectionSet.load(run_dir)
    result = dset.push_to_hub("carol/api", previews=[run_dir / "traversal.png"], message="from python")
    assert "README.md" in result.uploaded and "traversal.png" in result.uploaded
    back = DirectionSet.from_pretrained("carol/api")
    assert torch.equal(back.directions, dset.directions) and back.spec == dset.spec
    sha = hub.state.repos["carol/api"].branches["main"]
    path = fetch_file(f"hf:carol/api/{FILE_NAME}@{sha}")
    assert path.read_bytes() == hub.files("carol/api")[FILE_NAME]
    assert DirectionSet.load(path).spec["settings"]["steps"] == 4


@pytest.mark.slow
def test_pull_and_evaluate_never_clobber_a_folder(hub, env, run_dir, tmp_path):
    import shutil

    assert run_cli("push", str(run_dir), "alice/other", env=env).returncode == 0
    mine = tmp_path / "mine"
    shutil.copytree(run_dir, mine)
    (mine / FILE_NAME).write_bytes(DirectionSet.load(run_dir).save(tmp_path / "x.safetensors").read_bytes())
    dset = DirectionSet.load(mine)
    dset.spec["note"] = "my own edit"
    dset.save(mine / FILE_NAME)
    before = snapshot(mine)
    # a training run's folder: its checkpoint, reconstructor and metrics belong to its own set
    result = run_cli("pull", "alice/other", "--out", str(mine), "--force", env=env)
    assert result.returncode == 1 and "would mix two sets" in result.stderr
    assert snapshot(mine) == before
    (mine / "run.json").unlink()  # now a folder of files: refused unless --force
    before = snapshot(mine)
    for args in (
        ["pull", "alice/other", "--out", str(mine)],
        ["evaluate", "alice/other", "--out", str(mine)],
    ):
        result = run_cli(*args, env=env)
        assert result.returncode == 1 and "already holds" in result.stderr and "--force" in result.stderr
        assert snapshot(mine) == before
    result = run_cli("pull", "alice/other", "--out", str(mine), "--force", env=env)
    assert result.returncode == 0, result.stderr
    assert "note" not in DirectionSet.load(mine).spec
    again = run_cli("pull", "alice/other", "--out", str(mine), env=env)  # the same set: reused
    assert again.returncode == 0, again.stderr

    # a pull refused by a check leaves nothing behind
    dset = DirectionSet.load(run_dir)
    dset.spec["generator"]["fingerprint"] = "0" * 64
    _upload_raw(hub, "eve/foreign2", {FILE_NAME: dset.save(tmp_path / "f.safetensors").read_bytes()})
    target = tmp_path / "new"
    result = run_cli("pull", "eve/foreign2", "--out", str(target), env=env)
    assert result.returncode == 1 and not target.exists()
    assert not [p for p in tmp_path.iterdir() if ".pull-" in p.name]  # no temporary folder left


def test_hub_file_references_and_the_sngan_args_json_beside_a_hub_checkpoint(hub, env, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from ganzoo_directions.hub import HubFile
    from ganzoo_directions.runs import build_generator

    from .helpers import make_sngan

    ref = HubFile.parse("hf:zoo/tiny/weights/generator.pt@abc")
    assert (ref.repo_id, ref.path, ref.revision) == ("zoo/tiny", "weights/generator.pt", "abc")
    assert str(ref.sibling("args.json")) == "hf:zoo/tiny/weights/args.json@abc"
    assert HubFile.parse("weights/generator.pt") is None
    for bad in ("hf:zoo/generator.pt", "hf:zoo//x.pt", "hf:a b/c/d.pt"):
        with pytest.raises(GanzooError, match="expected hf:OWNER/NAME/path"):
            HubFile.parse(bad)

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    folder = make_sngan(tmp_path)  # Voynov & Babenko's layout: generator.pt + args.json (channels 32,16,8)
    hub.state.create("zoo/tiny", private=False)
    repo = hub.state.repos["zoo/tiny"]
    for file in folder.iterdir():
        repo.commits[repo.branches["main"]][f"weights/{file.name}"] = file.read_bytes()
    G = build_generator("sngan", weights="hf:zoo/tiny/weights/generator.pt")  # no -g options: args.json
    assert G.model_config.channels == (32, 16, 8) and G.latent_dim == 16


@pytest.mark.slow
def test_labels_travel_through_push_card_and_pull(hub, env, run_dir, tmp_path):
    import shutil

    from ganzoo_directions.directions import update_labels

    labelled = tmp_path / "labelled"
    shutil.copytree(run_dir, labelled)
    update_labels(labelled, {1: "zoom", 3: "hair colour"})
    assert run_cli("push", str(labelled), "alice/labelled", env=env).returncode == 0
    card = hub.files("alice/labelled")["README.md"].decode()
    assert "## Labelled directions" in card and "| 1 | zoom |" in card and "| 3 | hair colour |" in card
    result = run_cli("pull", "alice/labelled", "--out", str(tmp_path / "pulled"), env=env)
    assert result.returncode == 0, result.stderr
    assert "labels: 1 zoom, 3 hair colour" in result.stdout
    pulled = DirectionSet.load(tmp_path / "pulled")
    assert pulled.labels == {1: "zoom", 3: "hair colour"}
    assert pulled.index("Zoom") == 1
    from ganzoo_directions.hub import render_card

    plain_card = render_card(DirectionSet.load(run_dir), "alice/plain")  # the same set, unlabelled
    assert "Labelled directions" not in plain_card and "Labelled directions" in render_card(pulled, "a/b")


def test_revisions_sizes_and_paths_from_the_hub_are_checked(hub, env, run_dir, tmp_path, monkeypatch):
    """The Hub and what users type about it are untrusted: a revision that walks out of the cache is
    refused before any call, a file larger than its kind can be is not downloaded (its size is asked
    first), and a path the client returns outside its cache is refused."""
    import huggingface_hub
    from huggingface_hub import constants

    from ganzoo_directions import hub as hub_module
    from ganzoo_directions.errors import HubError

    from .helpers import invoke

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cache = tmp_path / "cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    for ref in ("alice/x@../../..", "alice/x@main/../../y", "alice/x@-rf"):
        result = invoke("pull", ref, "--out", str(tmp_path / "out"))
        assert result.returncode == 1 and "is not a Hub revision" in result.stderr, result.stderr
    with pytest.raises(GanzooError, match="not a file path inside a Hub repo"):
        hub_module.fetch_file("hf:alice/x/../../etc/passwd")
    assert not (tmp_path / "out").exists() and not cache.exists()

    _upload_raw(hub, "eve/huge", {FILE_NAME: b"x" * 5000})
    monkeypatch.setitem(hub_module.MAX_BYTES, FILE_NAME, 4096)
    with pytest.raises(HubError, match=r"5,000 bytes, more than a directions\.safetensors can be"):
        hub_module.pull("eve/huge")
    assert not [p for p in cache.rglob("*") if p.is_file() and p.stat().st_size >= 5000]

    monkeypatch.undo()  # a normal size limit, environment and cache again
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert run_cli("push", str(run_dir), "alice/fine", env=env).returncode == 0
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes((run_dir / FILE_NAME).read_bytes())
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *args, **kwargs: str(outside))
    with pytest.raises(HubError, match="outside its cache"):
        hub_module.pull("alice/fine")
