"""The direction-set file: round trip, application, and every kind of bad file."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from ganzoo_directions.deformators import build_deformator
from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.errors import DirectionFileError


def _set(sprites, kind="mlp"):
    torch.manual_seed(0)
    A = build_deformator(kind, 4, sprites.latent_dim, **({"hidden": 16} if kind == "mlp" else {}))
    spec = {
        "generator": sprites.describe(),
        "method": {"name": "x", "hyperparameters": {}},
        "metrics": {"rca": 0.5},
    }
    return DirectionSet(A.unit_directions(), A.eval(), spec)


@pytest.mark.parametrize("kind", ["mlp", "ortho", "span"])
def test_round_trip(tmp_path, sprites, kind):
    dset = _set(sprites, kind)
    path = dset.save(tmp_path / "d.safetensors")
    back = DirectionSet.load(path)
    assert torch.equal(back.directions, dset.directions)
    assert back.spec["generator"]["fingerprint"] == sprites.fingerprint
    assert back.metrics == {"rca": 0.5}
    z = sprites.sample_latents(3, torch.Generator().manual_seed(0))
    assert torch.allclose(back.apply(z, 2, 1.5), dset.apply(z, 2, 1.5))
    back.check_generator(sprites)


def test_apply_without_deformator_is_eps_times_direction(sprites):
    directions = torch.nn.functional.normalize(torch.randn(3, sprites.latent_dim), dim=1)
    dset = DirectionSet(directions)
    z = torch.zeros(2, sprites.latent_dim)
    assert torch.allclose(
        dset.apply(z, torch.tensor([1, 2]), torch.tensor([2.0, -1.0])),
        torch.stack([2 * directions[1], -directions[2]]),
    )


def test_not_safetensors(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x00\x01 this is not a safetensors file")
    with pytest.raises(DirectionFileError, match="not a safetensors file"):
        DirectionSet.load(path)


def test_foreign_safetensors(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(DirectionFileError, match="not a direction set"):
        DirectionSet.load(path)


def test_other_format_version(tmp_path):
    path = tmp_path / "future.safetensors"
    save_file(
        {"directions": torch.zeros(2, 8)},
        str(path),
        metadata={"format": "ganzoo-directions", "format_version": "99", "spec": json.dumps({})},
    )
    with pytest.raises(DirectionFileError, match="version 99"):
        DirectionSet.load(path)


def test_damaged_deformator(tmp_path, sprites):
    path = _set(sprites).save(tmp_path / "d.safetensors")
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    del tensors["deformator.fc2.weight"]
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(DirectionFileError, match="deformator does not load"):
        DirectionSet.load(path)


def test_made_for_another_generator(tmp_path, registry, sprites):
    path = _set(sprites).save(tmp_path / "d.safetensors")
    other = registry.generator("sprites").cls(mixing_seed=3)
    dset = DirectionSet.load(path)
    with pytest.raises(DirectionFileError, match="--allow-mismatch"):
        dset.check_generator(other)
    dset.check_generator(other, allow_mismatch=True)
    wider = registry.generator("sprites").cls(latent_dim=12)
    with pytest.raises(DirectionFileError, match="latent dimension"):
        dset.check_generator(wider, allow_mismatch=True)
