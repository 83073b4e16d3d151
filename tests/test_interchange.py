"""zoo-dirs import / export: other tools' direction formats, in their exact layouts, through the CLI;
every import goes on into traverse, explore and push, every export reads back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.explore import Explorer
from ganzoo_directions.runs import generator_for

from .helpers import invoke, run_cli
from .hub_server import WRITE_TOKEN, HubServer

D_SNGAN = 16  # sngan-sprites' z
D_W = 32  # stylegan2-shapes3d's W


def voynov_folder(root: Path, *, kind: str = "ortho", seed: int = 0) -> tuple[Path, torch.Tensor]:
    """A GANLatentDiscovery results folder as their trainer writes it; returns it and the matrix M
    whose F.linear(one_hot * eps, M) is their shift."""
    g = torch.Generator().manual_seed(seed)
    (root / "models").mkdir(parents=True)
    args = {"deformator": kind, "directions_count": D_SNGAN, "max_latent_dim": D_SNGAN, "shift_scale": 4.5}
    args |= {"min_shift": 0.25, "gan_type": "SN_Anime"}
    (root / "args.json").write_text(json.dumps(args))
    if kind == "ortho":
        half = 0.3 * torch.randn(D_SNGAN, D_SNGAN, generator=g)
        state = {"log_mat_half": half}
        matrix = torch.linalg.matrix_exp(half - half.T)
    else:
        weight, bias = torch.randn(D_SNGAN, D_SNGAN, generator=g), 0.1 * torch.randn(D_SNGAN, generator=g)
        state = {"linear.weight": weight, "linear.bias": bias}
        matrix = weight
    torch.save(state, root / "models" / "deformator_100.pt")
    torch.save({k: v * 0 for k, v in state.items()}, root / "models" / "deformator_20.pt")  # an earlier one
    (root / "human_annotation.txt").write_text("3: zoom\n7: hair color\n9: zoom\n")
    return root, matrix


def import_set(*args: str) -> DirectionSet:
    result = invoke("import", *args)
    assert result.returncode == 0, result.stderr + result.stdout
    out = Path(args[args.index("--out") + 1])
    return DirectionSet.load(out)


def goes_on(folder: Path, tmp_path: Path) -> None:
    """The imported set works where sets are used: traverse (a real process), the explorer, and a push
    to the (local) Hub that a pull reads back."""
    result = run_cli("traverse", str(folder), "--out", str(tmp_path / "t.png"), "--directions", "0,1")
    assert result.returncode == 0, result.stderr
    dset = DirectionSet.load(folder)
    generator = generator_for(dset)
    explorer = Explorer(dset, lambda changed: generator, sliders=2, magnitude=2.0)
    assert explorer.render(0, 1, [2.0, 0]).width > 0
    with HubServer() as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": WRITE_TOKEN}
        env |= {"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
        pushed = run_cli("push", str(folder), "alice/imported", env=env)
        assert pushed.returncode == 0, pushed.stderr
        assert (
            f"imported-{dset.spec['imported']['format']}" in hub.files("alice/imported")["README.md"].decode()
        )
        pulled = run_cli("pull", "alice/imported", "--out", str(tmp_path / "pulled"), env=env)
        assert pulled.returncode == 0, pulled.stderr
        assert torch.equal(DirectionSet.load(tmp_path / "pulled").directions, dset.directions)


@pytest.mark.slow
def test_voynov_ortho_folder(tmp_path):
    folder, matrix = voynov_folder(tmp_path / "SN_Anime")
    dset = import_set(str(folder), "--gen", "sngan-sprites", "--out", str(tmp_path / "set"))
    eps = torch.tensor([1.5, -2.0])
    k = torch.tensor([3, 11])
    theirs = F.linear(F.one_hot(k, D_SNGAN).float() * eps[:, None], matrix)  # their forward
    assert torch.allclose(dset.shift(k, eps), theirs, atol=1e-5)
    assert dset.labels == {3: "zoom", 7: "hair color", 9: "zoom (2)"}
    assert dset.spec["settings"]["eps_max"] == 4.5 and dset.spec["settings"]["eps_min"] == 0.25
    imported = dset.spec["imported"]
    assert imported["format"] == "voynov" and imported["files"][0] == "deformator_100.pt"
    assert np.allclose(imported["norms"], 1.0, atol=1e-5)
    goes_on(tmp_path / "set", tmp_path)


def test_voynov_linear_deformator_file_keeps_columns_and_says_the_bias_is_left_out(tmp_path):
    folder, matrix = voynov_folder(tmp_path / "run", kind="linear", seed=1)
    result = invoke(
        "import",
        str(folder / "models" / "deformator_100.pt"),
        "--gen",
        "sngan-sprites",
        "--out",
        str(tmp_path / "s"),
    )
    assert result.returncode == 0, result.stderr
    assert "bias" in result.stdout
    dset = DirectionSet.load(tmp_path / "s")
    expected = matrix.T / matrix.T.norm(dim=1, keepdim=True)
    assert torch.allclose(dset.directions, expected, atol=1e-5)
    assert np.allclose(dset.spec["imported"]["norms"], matrix.norm(dim=0).tolist(), atol=1e-4)
    assert dset.labels[3] == "zoom"  # human_annotation.txt two folders up


def test_unreadable_and_unsupported_files_are_one_line(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"log_mat_half": Evil()}, tmp_path / "deformator_1.pt")
    result = run_cli(
        "import", str(tmp_path / "deformator_1.pt"), "--gen", "sngan-sprites", "--out", str(tmp_path / "a")
    )
    assert (
        result.returncode == 1
        and "refuses pickled code" in result.stderr
        and "Traceback" not in result.stderr
    )
    assert "pwned" not in result.stdout
    torch.save({"fc1.weight": torch.zeros(4, 4)}, tmp_path / "deformator_2.pt")
    result = invoke(
        "import", str(tmp_path / "deformator_2.pt"), "--gen", "sngan-sprites", "--out", str(tmp_path / "b")
    )
    assert result.returncode == 1 and "'fc' deformator" in result.stderr
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    result = invoke(
        "import", str(tmp_path / "objects.npy"), "--gen", "sngan-sprites", "--out", str(tmp_path / "c")
    )
    assert result.returncode == 1 and "pickled Python objects" in result.stderr
    np.save(tmp_path / "wrong.npy", np.ones((1, 7), np.float32))
    result = invoke(
        "import", str(tmp_path / "wrong.npy"), "--gen", "sngan-sprites", "--out", str(tmp_path / "d")
    )
    assert result.returncode == 1 and "dimension 7" in result.stderr  # a file for another generator
    assert not any((tmp_path / n).exists() for n in "abcd")


@pytest.mark.slow
def test_ganspace_npz_with_a_layer_range_and_its_round_trip(tmp_path):
    g = np.random.default_rng(0)
    comp = g.normal(size=(6, 1, D_W)).astype(np.float32)
    comp /= np.linalg.norm(comp, axis=-1, keepdims=True)
    stdev = np.array([2.0, 1.5, 1.2, 1.0, 0.9, 0.8], np.float32)
    npz = tmp_path / "stylegan2-shapes3d-w-ipca_c6_n1000.npz"
    np.savez_compressed(  # as GANSpace's decomposition.py writes it, plus a saved edit's layer range
        npz,
        act_comp=g.normal(size=(6, 512)).astype(np.float32),
        act_mean=np.zeros(512, np.float32),
        act_stdev=np.ones(6, np.float32),
        lat_comp=comp,
        lat_mean=np.zeros((1, D_W), np.float32),
        lat_stdev=stdev,
        var_ratio=np.full(6, 0.1, np.float32),
        random_stdevs=np.ones(6, np.float32),
        edit_start=np.array(0),
        edit_end=np.array(4),
    )
    dset = import_set(str(npz), "--gen", "stylegan2-shapes3d", "--out", str(tmp_path / "set"))
    assert torch.allclose(dset.directions, torch.from_numpy(comp[:, 0]), atol=1e-6)
    made_for = dset.spec["generator"]
    assert made_for["options"]["layers"] == "0-3" and made_for["layers"] == [0, 1, 2, 3]
    assert dset.spec["imported"]["norms"] == pytest.approx(stdev.tolist())
    assert dset.spec["settings"]["eps_max"] == pytest.approx(3 * 1.1)  # 3 x the median spread
    goes_on(tmp_path / "set", tmp_path)

    exported = invoke("export", str(tmp_path / "set"), "--out", str(tmp_path / "back.npz"))
    assert exported.returncode == 0, exported.stderr
    data = np.load(tmp_path / "back.npz", allow_pickle=False)
    assert data["lat_comp"].shape == (6, 1, D_W) and np.allclose(data["lat_comp"], comp, atol=1e-6)
    assert (int(data["edit_start"]), int(data["edit_end"])) == (0, 4)
    again = import_set(
        str(tmp_path / "back.npz"), "--gen", "stylegan2-shapes3d", "--out", str(tmp_path / "again")
    )
    assert torch.allclose(again.directions, dset.directions) and again.spec["generator"]["layers"] == [
        0,
        1,
        2,
        3,
    ]
    assert again.spec["settings"]["eps_max"] == pytest.approx(dset.spec["settings"]["eps_max"])


@pytest.mark.slow
def test_interfacegan_and_e4e_vectors(tmp_path):
    g = torch.Generator().manual_seed(2)
    age, smile = torch.randn(1, D_W, generator=g), torch.randn(D_W, generator=g)
    np.save(tmp_path / "age.npy", (age / age.norm()).numpy())  # InterFaceGAN boundary: (1, D) .npy
    torch.save(smile / smile.norm(), tmp_path / "smile.pt")  # an e4e-style tensor
    dset = import_set(
        str(tmp_path / "age.npy"),
        str(tmp_path / "smile.pt"),
        "--gen",
        "stylegan2-shapes3d",
        "--out",
        str(tmp_path / "s"),
    )
    assert dset.labels == {0: "age", 1: "smile"} and dset.num_directions == 2
    assert torch.allclose(dset.directions[1], smile / smile.norm(), atol=1e-6)
    goes_on(tmp_path / "s", tmp_path)

    layered = torch.zeros(1, 8, D_W)  # (1, L, D): the same w direction on layers 2-5
    layered[0, 2:6] = age / age.norm()
    torch.save(layered, tmp_path / "pose.pt")
    per_layer = import_set(
        str(tmp_path / "pose.pt"), "--gen", "stylegan2-shapes3d", "--out", str(tmp_path / "p")
    )
    assert per_layer.spec["generator"]["layers"] == [2, 3, 4, 5] and per_layer.labels == {0: "pose"}
    layered[0, 3] *= 2
    torch.save(layered, tmp_path / "odd.pt")
    result = invoke(
        "import", str(tmp_path / "odd.pt"), "--gen", "stylegan2-shapes3d", "--out", str(tmp_path / "o")
    )
    assert result.returncode == 1 and "differs between layers" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["npy", "pt"])
def test_exports_read_back(fmt, tmp_path):
    folder, _ = voynov_folder(tmp_path / "v")
    dset = import_set(str(folder), "--gen", "sngan-sprites", "--out", str(tmp_path / "set"))
    out = tmp_path / f"dirs.{fmt}"
    assert invoke("export", str(tmp_path / "set"), "--out", str(out)).returncode == 0
    array = np.load(out, allow_pickle=False) if fmt == "npy" else torch.load(out, weights_only=True).numpy()
    assert array.shape == (D_SNGAN, D_SNGAN) and np.allclose(array, dset.directions.numpy())
    assert (tmp_path / f"dirs.{fmt}.labels.txt").read_text() == "3: zoom\n7: hair color\n9: zoom (2)\n"
    back = import_set(str(out), "--gen", "sngan-sprites", "--out", str(tmp_path / "back"))
    assert torch.allclose(back.directions, dset.directions) and back.labels == dset.labels

    split = tmp_path / "split"
    assert (
        invoke("export", str(tmp_path / "set"), "--out", str(split), "--format", fmt, "--split").returncode
        == 0
    )
    files = sorted(p.name for p in split.iterdir())
    assert len(files) == D_SNGAN and f"zoom.{fmt}" in files and f"hair_color.{fmt}" in files
    one = (
        np.load(split / "zoom.npy")
        if fmt == "npy"
        else torch.load(split / "zoom.pt", weights_only=True).numpy()
    )
    assert one.shape == (1, D_SNGAN) and np.allclose(one[0], dset.directions[3].numpy())
