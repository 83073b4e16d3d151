"""Reading generator weights safely, fingerprinting them, and loading them with clear errors.

Shared by generator plugins. Nothing here knows a particular GAN: plugins pass their module, their
key map and a description of the architecture they expect.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, in hex (the fingerprint recorded in direction sets)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_weights(path: str | Path) -> dict[str, Any]:
    """The tensors (or nested dicts of tensors) stored in ``path``, never unpickling arbitrary code.

    ``.safetensors`` is read with safetensors; anything else with ``torch.load(weights_only=True)``,
    which accepts only tensors, containers and numbers (plus ``argparse.Namespace``, which training
    scripts commonly store as ``args``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = unpickling_reason(exc)
        raise CheckpointError(
            f"{path}: not a readable weights file (read with torch.load(weights_only=True), which refuses "
            f"pickled code): {first}"
        ) from None
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path}: expected a dictionary of tensors, found {type(data).__name__}")
    return dict(data)


def _summarise(keys: Iterable[str], limit: int = 8) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_state_dict_checked(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    source: str,
    architecture: str,
    aliases: Mapping[str, str] | None = None,
    transform: Callable[[str], str | None] | None = None,
) -> None:
    """Load ``state`` into ``module`` strictly; on mismatch raise one :class:`CheckpointError` naming the
    missing, unexpected and mis-shaped keys and the architecture that was expected.

    :param aliases: ``{key: other}``: ``key`` may be absent when ``other`` is present (the same
        tensor registered under two names, as ``nn.Sequential`` aliases produce).
    :param transform: maps a checkpoint key to the module's key (an explicit key map), or ``None`` to
        drop it.
    """
    if transform is not None:
        state = {new: v for k, v in state.items() if (new := transform(k)) is not None}
    state = dict(state)
    for key, other in (aliases or {}).items():
        if key not in state and other in state:
            state[key] = state[other]
        if other not in state and key in state:
            state[other] = state[key]
    expected = module.state_dict()
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    bad_shapes = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in sorted(set(state) & set(expected))
        if hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or bad_shapes:
        parts = []
        if missing:
            parts.append(f"missing keys: {_summarise(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_summarise(unexpected)}")
        if bad_shapes:
            parts.append(f"wrong shapes: {', '.join(bad_shapes[:5])}")
        raise CheckpointError(f"{source} does not fit {architecture}: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def unpickling_reason(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without torch's advice to retry with
    ``weights_only=False`` (which would run whatever code the file carries)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if "WeightsUnpickler error:" in str(exc):
        after = str(exc).split("WeightsUnpickler error:", 1)[1]
        reason = next((line.strip() for line in after.splitlines() if line.strip()), "")
        return f"unsupported content ({reason})" if reason else "unsupported content"
    first = lines[0]
    return "not a torch file" if "weights_only" in first else first
