"""Projecting images into the latent space (`zoo-dirs project`) and editing them (`zoo-dirs edit`):
every first-party family recovers a generated image, the files and the bad inputs."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from ganzoo_directions import defaults
from ganzoo_directions.errors import DirectionFileError, GanzooError
from ganzoo_directions.projection import load_image, load_latents, project, psnr, save_latents
from ganzoo_directions.runs import build_generator
from ganzoo_directions.traversal import image_png

from .helpers import SMALL_BUILDS, invoke


@pytest.mark.parametrize("name", sorted(SMALL_BUILDS))
def test_every_family_recovers_a_generated_image(name, registry, tmp_path):
    G = SMALL_BUILDS[name](tmp_path)
    z = G.sample_latents(2, torch.Generator(G.device).manual_seed(3))
    with torch.no_grad():
        target = G.render(z)
        start = psnr(G.render(G.projection_start(2, torch.Generator(G.device).manual_seed(0))), target)
    steps = 20 if G.image_size >= 128 else 160  # BigGAN's smallest layout renders 128 px
    # the default restarts: the testbed renderers' hue is a circle, and 4 starts can all miss its basin
    result = project(G, target, steps=steps, restarts=defaults.PROJECT_RESTARTS, loss="pixel")
    assert result.latents.shape == (2, G.latent_dim) and result.loss == "pixel"
    gained = torch.tensor(result.psnr) - start
    assert min(result.psnr) >= 17 and float(gained.mean()) >= 5, (result.psnr, start.tolist())
    assert result.history[-1] < result.history[0]


def test_one_restart_and_one_image_projects(registry):
    """The noise scale comes from prior draws, not from the starts: one start has no spread (was NaN)."""
    G = SMALL_BUILDS["sngan-sprites"](None)
    with torch.no_grad():
        target = G.render(G.sample_latents(1, torch.Generator().manual_seed(3)))
    result = project(G, target, steps=10, restarts=1, loss="pixel")
    assert result.latents.shape == (1, G.latent_dim) and math.isfinite(result.history[-1])


def test_a_generator_that_does_not_opt_in_cannot_be_inverted(registry):
    from ganzoo_directions_sprites.sprites import SpritesGenerator

    class Opaque(SpritesGenerator):
        name = "opaque"
        projection_start = SpritesGenerator.__mro__[1].projection_start  # the interface's default

    G = Opaque(image_size=16)
    with pytest.raises(GanzooError, match="'opaque' cannot be inverted"):
        project(G, torch.zeros(1, 3, 16, 16), steps=1)


def test_images_are_cropped_resized_and_converted(tmp_path):
    from PIL import Image

    wide = tmp_path / "wide.png"
    Image.new("RGB", (90, 30), (255, 0, 0)).save(wide)
    Image.new("L", (40, 40), 128).save(tmp_path / "gray.png")
    Image.new("RGBA", (20, 20), (0, 0, 255, 0)).save(tmp_path / "clear.png")
    red = load_image(wide, 16)
    assert red.shape == (3, 16, 16) and torch.allclose(red[0], torch.ones(16, 16))
    gray = load_image(tmp_path / "gray.png", 16)
    assert gray.shape == (3, 16, 16) and torch.allclose(gray[0], gray[2])  # repeated to RGB
    assert torch.allclose(load_image(tmp_path / "clear.png", 8), torch.ones(3, 8, 8))  # on white
    assert load_image(wide, 16, channels=1).shape == (1, 16, 16)


def test_huge_and_unreadable_images_are_one_line(tmp_path, monkeypatch):
    from PIL import Image

    from ganzoo_directions import projection

    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(projection, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(GanzooError, match="too large"):
        load_image(tmp_path / "big.png", 16)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(GanzooError, match="not a readable image"):
        load_image(tmp_path / "junk.png", 16)


def test_latents_file_round_trip_and_refusals(tmp_path):
    latents = torch.randn(3, 16)
    path = save_latents(tmp_path, latents, {"generator": {"name": "x"}})
    back, spec = load_latents(tmp_path)
    assert (
        path.name == "latents.safetensors" and torch.equal(back, latents) and spec["generator"]["name"] == "x"
    )
    from safetensors.torch import save_file

    save_file({"latents": torch.randn(3, 16)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(DirectionFileError, match="not a latents file"):
        load_latents(tmp_path / "plain.safetensors")
    with pytest.raises(DirectionFileError, match="no such latents file"):
        load_latents(tmp_path / "nothing")


@pytest.fixture(scope="module")
def renderer_images(tmp_path_factory):
    """Real images of the shipped GAN's domain (the renderer's, which the GAN never saw)."""
    folder = tmp_path_factory.mktemp("images")
    G = build_generator("sngan-sprites")
    images, _ = G.factor_readout().labelled(2, torch.Generator().manual_seed(0))
    for i, image in enumerate(images):
        (folder / f"sprite{i}.png").write_bytes(image_png(image))
    return folder


def test_project_then_edit_on_the_command_line(renderer_images, tmp_path):
    out = tmp_path / "projected"
    result = invoke("project", str(renderer_images), "--out", str(out), "--steps", "40", "--loss", "pixel")
    assert result.returncode == 0, result.stderr
    latents, spec = load_latents(out)
    assert latents.shape == (2, 16) and spec["generator"]["name"] == "sngan-sprites"
    assert [Path(i["source"]).name for i in spec["images"]] == ["sprite0.png", "sprite1.png"]
    assert all(i["psnr"] > 15 for i in spec["images"]) and spec["settings"]["steps"] == 40
    assert (out / "projection.png").is_file()
    again = invoke("project", str(renderer_images), "--out", str(out))
    assert again.returncode == 1 and "already holds files" in again.stderr

    dset = tmp_path / "dirs"
    assert invoke("discover", "--method", "sefa", "--out", str(dset)).returncode == 0
    assert invoke("label", str(dset), "0=background").returncode == 0
    edited = tmp_path / "edited.png"
    result = invoke(
        "edit",
        str(dset),
        "--latents",
        str(out),
        "--apply",
        "background=2,3=-1",
        "--out",
        str(edited),
        "--gif",
    )
    assert result.returncode == 0, result.stderr
    assert "k=0 background +2, k=3 -1" in result.stdout
    assert (
        edited.is_file() and (tmp_path / "edited-0.png").is_file() and (tmp_path / "edited-1.png").is_file()
    )
    assert (tmp_path / "edited.gif").is_file()
    import numpy as np
    from PIL import Image

    G = build_generator("sngan-sprites")
    with torch.no_grad():
        before = G.render(load_latents(out)[0][:1])[0]  # (3, 32, 32)
    written = torch.from_numpy(np.array(Image.open(tmp_path / "edited-0.png"), dtype=np.float32))
    assert (written.permute(2, 0, 1) / 127.5 - 1 - before).abs().mean() > 0.05  # the edit changed it
    samples = invoke("edit", str(dset), "--apply", "1=2", "--samples", "3", "--out", str(tmp_path / "s.png"))
    assert samples.returncode == 0 and "3 edited image(s)" in samples.stdout

    unknown = invoke("edit", str(dset), "--latents", str(out), "--apply", "tilt=1", "--out", str(edited))
    assert unknown.returncode == 1 and "no direction is labelled 'tilt'" in unknown.stderr
    other = tmp_path / "other"
    shutil.copytree(out, other)
    latents, spec = load_latents(other)
    spec["generator"]["fingerprint"] = "f" * 64
    save_latents(other, latents, spec)
    refused = invoke("edit", str(dset), "--latents", str(other), "--apply", "0=1", "--out", str(edited))
    assert refused.returncode == 1 and "latents were projected for weights ffffffffffff" in refused.stderr


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.png", "no such file or folder"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no image files in this folder"),
        (lambda d: (d / "junk.png").write_bytes(b"x") and d / "junk.png", "not a readable image"),
    ],
)
def test_bad_project_inputs_are_one_line_and_write_nothing(tmp_path, make, message):
    out = tmp_path / "out"
    result = invoke("project", str(make(tmp_path)), "--out", str(out), "--steps", "2")
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
