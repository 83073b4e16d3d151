"""Labels that travel with a direction set: the file, the Python API, `zoo-dirs label`, traversals
(grid titles and GIF/MP4 animations). The Hub round trip is in test_hub.py, the explorer's in
test_explore.py."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from ganzoo_directions.directions import DirectionSet, update_labels
from ganzoo_directions.errors import DirectionFileError, GanzooError

from .helpers import invoke


def test_labels_in_the_api(run):
    dset = DirectionSet.load(run)
    assert dset.labels == {}  # a file without labels loads as unlabelled
    assert dset.set_labels({3: " zoom ", 7: "hair colour"}) == {3: "zoom", 7: "hair colour"}
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(dset.apply(z, "zoom", 2.0), dset.apply(z, 3, 2.0))
    assert dset.index("ZOOM") == 3 and dset.index(7) == 7 and dset.title(3) == "k=3 zoom"
    with pytest.raises(GanzooError, match=r"no direction is labelled 'tilt'; labels: 'zoom' \(3\)"):
        dset.apply(z, "tilt", 1.0)
    for assign, message in (
        ({4: "  "}, "is empty"),
        ({4: "x" * 61}, "at most 60"),
        ({4: "Zoom"}, "already direction 3's"),
        ({4: "12"}, "is a number"),
        ({4: "a\nb"}, "control character"),
        ({16: "far"}, "out of range"),
    ):
        with pytest.raises(GanzooError, match=message):
            dset.set_labels(assign)
    assert dset.labels == {3: "zoom", 7: "hair colour"}  # a refused change changes nothing
    dset.set_labels({3: "scale"}, clear=[7])
    back = DirectionSet.load(dset.save(run))
    assert back.labels == {3: "scale"} and back.title(4) == "k=4"


def test_a_file_with_malformed_labels_is_refused(run):
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = run / "directions.safetensors"
    with safe_open(str(path), framework="pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    spec = json.loads(metadata["spec"])
    spec["labels"] = {"zoom": 3}
    save_file(tensors, str(path), metadata={**metadata, "spec": json.dumps(spec)})
    with pytest.raises(DirectionFileError, match=r"'labels' must map direction indices \(0\.\.K-1\) to text"):
        DirectionSet.load(path)


def test_concurrent_writers_keep_each_others_labels(run):
    errors = []

    def label(k: int) -> None:
        try:
            update_labels(run, {k: f"direction number {k}"})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=label, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert DirectionSet.load(run).labels == {k: f"direction number {k}" for k in range(8)}


def test_label_command(run):
    result = invoke("label", str(run), "3=zoom", "7=hair colour")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["3\tzoom", "7\thair colour"]
    assert invoke("label", str(run), "--clear", "3").stdout.splitlines() == ["7\thair colour"]
    refused = invoke("label", str(run), "4=Hair Colour")
    assert refused.returncode == 1 and "already direction 7's" in refused.stderr
    assert "Traceback" not in refused.stderr
    bad = invoke("label", str(run), "zoom")
    assert bad.returncode == 2 and "expected INDEX=LABEL" in bad.stderr
    assert DirectionSet.load(run).labels == {7: "hair colour"}


def test_traverse_titles_rows_with_labels_and_takes_labels_as_directions(run, tmp_path):
    from ganzoo_directions.runs import generator_for
    from ganzoo_directions.traversal import traversal_images

    update_labels(run, {2: "colour"})
    dset = DirectionSet.load(run)
    G = generator_for(dset)
    z = G.sample_latents(1, torch.Generator().manual_seed(0))
    _, rows, _ = traversal_images(G, dset, z, [2, 5], torch.linspace(-1, 1, 3))
    assert rows == ["k=2 colour", "k=5"]
    result = invoke("traverse", str(run), "--directions", "0,colour", "--out", str(tmp_path / "g.png"))
    assert result.returncode == 0, result.stderr
    unknown = invoke("traverse", str(run), "--directions", "tilt", "--out", str(tmp_path / "g.png"))
    assert unknown.returncode == 1 and "no direction is labelled 'tilt'" in unknown.stderr


def test_traverse_writes_looping_gif_and_mp4_animations(run, tmp_path):
    import imageio.v3 as iio
    import numpy as np
    from PIL import Image

    gif = tmp_path / "t.gif"
    result = invoke("traverse", str(run), "--directions", "0,1,2", "--frames", "8", "--out", str(gif))
    assert result.returncode == 0, result.stderr
    with Image.open(gif) as image:
        assert image.n_frames == 8 and image.info["loop"] == 0
        frames = []
        for i in range(8):
            image.seek(i)
            frames.append(np.array(image.convert("RGB"), dtype=np.float64))
    assert np.abs(frames[0] - frames[4]).mean() > 1  # eps sweeps: the frames differ ...
    assert np.abs(frames[1] - frames[7]).mean() < 1e-6  # ... and come back (a triangle wave)
    mp4 = tmp_path / "t.mp4"
    result = invoke("traverse", str(run), "--frames", "6", "--fps", "6", "--out", str(mp4))
    assert result.returncode == 0, result.stderr
    video = iio.imread(mp4, plugin="FFMPEG")
    assert video.shape[0] == 6 and video.shape[3] == 3
    wrong = invoke("traverse", str(run), "--layout", "consecutive", "--directions", "0,1", "--out", str(gif))
    assert wrong.returncode == 1 and "PNG grid" in wrong.stderr


def test_mp4_without_imageio_ffmpeg_is_one_line(run, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if not installed
    result = invoke("traverse", str(run), "--out", str(tmp_path / "t.mp4"))
    assert result.returncode == 1 and 'pip install "ganzoo-directions[mp4]"' in result.stderr
    assert not (tmp_path / "t.mp4").exists()


def test_traversal_pictures_are_bounded(tmp_path):
    """Tiles above --tile pixels are downsampled (a 1024 px GAN's grid stays a few MB); --tile 0 keeps
    the full size; tiles below 96 px are enlarged by a whole factor (a 64 px GAN's to 128, a 32 px one's
    to 96), as in the animations; at most 16 rows, strongest first."""
    from PIL import Image

    from ganzoo_directions.directions import DirectionSet
    from ganzoo_directions.runs import build_generator
    from ganzoo_directions.traversal import save_traversal

    G = build_generator("sprites", options={"image_size": 64})
    dset = DirectionSet(
        torch.eye(8), None, {"ranking": {"by": "x", "order": list(range(8)), "scores": [0] * 8}}
    )
    small, full = tmp_path / "small.png", tmp_path / "full.png"
    save_traversal(small, G, dset, max_tile=16, magnitude_range=2.0)
    save_traversal(full, G, dset, max_tile=0, magnitude_range=2.0)
    pad, top = 2, 14
    assert Image.open(small).height == top + 8 * (16 + pad) + pad
    assert Image.open(full).height == top + 8 * (128 + pad) + pad
    tiny = build_generator("sprites", options={"image_size": 32})
    save_traversal(tmp_path / "tiny.png", tiny, dset, magnitude_range=2.0, steps=3)
    assert Image.open(tmp_path / "tiny.png").height == top + 8 * (96 + pad) + pad
    wide = DirectionSet(torch.randn(24, 8), None, {})
    save_traversal(tmp_path / "rows.png", G, wide, max_tile=16, magnitude_range=2.0)
    assert Image.open(tmp_path / "rows.png").height == top + 16 * (16 + pad) + pad


def test_column_labels_never_read_minus_zero():
    from ganzoo_directions.traversal import signed

    assert [signed(t) for t in (-1e-9, 0.0, -0.04, 1.25, -3.0)] == ["+0.0", "+0.0", "+0.0", "+1.2", "-3.0"]


def test_hostile_labels_and_names_are_shown_as_text(tmp_path):
    """HTML, Markdown and ANSI in labels and names never act: the Hub card and the page escape them,
    and a file whose labels hold control characters is refused when read."""
    import json as json_

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from ganzoo_directions.directions import DirectionSet
    from ganzoo_directions.errors import DirectionFileError
    from ganzoo_directions.hub import render_card
    from ganzoo_directions.safe_text import markdown_text, plain

    hostile = "<script>alert(1)</script> | **bold** [x](http://evil)"
    assert "<script>" not in markdown_text(hostile) and "&lt;script&gt;" in markdown_text(hostile)
    assert "\\|" in markdown_text(hostile) and "\\*\\*bold\\*\\*" in markdown_text(hostile)
    assert markdown_text("saved: 'zoom' & \"hue\"") == "saved: 'zoom' &amp; \"hue\""  # no entity to break
    assert plain("red \x1b[31mtext\x1b[0m") == "red [31mtext[0m"
    spec = {"generator": {"name": "sprites"}, "method": {"name": "x", "hyperparameters": {}}}
    dset = DirectionSet(torch.eye(4), None, spec)
    dset.set_labels({0: hostile[:60]})
    card = render_card(dset, "alice/x")
    assert "<script>" not in card and "&lt;script&gt;" in card
    path = tmp_path / "d.safetensors"
    dset.save(path)
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    spec = json_.loads(meta["spec"])
    spec["labels"] = {"1": "\x1b]0;pwned\x07title"}
    meta["spec"] = json_.dumps(spec)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(DirectionFileError, match="control characters"):
        DirectionSet.load(path)


def test_edits_move_latents_by_labels_and_indices_in_turn(run):
    from ganzoo_directions.directions import DirectionSet, update_labels
    from ganzoo_directions.editing import apply_edits

    update_labels(run, {1: "zoom"})
    dset = DirectionSet.load(run)
    z = torch.randn(3, dset.latent_dim, generator=torch.Generator().manual_seed(0))
    moved = apply_edits(dset, z, [("zoom", 2.0), (0, -1.0)], scale=0.5)
    expected = z + 1.0 * dset.directions[1] - 0.5 * dset.directions[0]
    assert torch.allclose(moved, expected, atol=1e-6) and not torch.equal(moved, z)
