"""Writing files safely: atomic writes (a file is either the old one or the complete new one, never half
written), OS errors described in one line ("no space left on device"), and no write into the Hugging
Face cache (a pulled set stays as the Hub has it). The project's tagged safetensors files (direction
sets, latents): tensors with a ``format`` / ``format_version`` header and a JSON ``spec``."""

from __future__ import annotations

import errno
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import DirectionFileError, GanzooError

#: the ending of this project's temporary files (``.NAME.XXXXXXXX.ganzoo.tmp``): a run folder's claim
#: removes only these, never a user's own ``.*.tmp``
TEMPORARY_SUFFIX = ".ganzoo.tmp"
#: the file that makes a folder a run folder of ``zoo-dirs discover`` (:mod:`ganzoo_directions.runs`)
RUN_FILE = "run.json"


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], Any]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it over ``path``. An OS error
    on the way (a full disk) names ``path`` and leaves the old file as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename and exc.filename != tmp:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (plain dicts of tensors and numbers only: they load back
    with ``weights_only=True``)."""
    import torch

    buffer = io.BytesIO()  # serialised first: a failing write is then a plain OSError, not torch's own
    torch.save(obj, buffer)
    atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def describe_os_error(exc: OSError) -> str:
    """``"no space left on device"``-style text for an OSError, naming the file where known."""
    text = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        text = "no space left on device"
    if exc.filename:
        return f"{text} ({exc.filename})"
    return text


def in_hub_cache(path: str | os.PathLike) -> bool:
    """Whether ``path`` lies in the Hugging Face cache (a pulled snapshot: read-only here)."""
    from huggingface_hub import constants

    cache = Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE).expanduser().resolve()
    target = Path(path).expanduser().absolute()
    return any(p == cache for p in (target, *target.parents)) or cache in Path(path).resolve().parents


def refuse_cache_write(path: str | os.PathLike) -> None:
    """Refuse to change a set inside the Hugging Face cache: a later ``pull`` would hand the edit back
    as if it came from the Hub."""
    if in_hub_cache(path):
        raise GanzooError(
            f"{path} is a pulled set in the Hugging Face cache, which stays as the Hub has it: "
            "pull it with --out DIR (or copy the folder) to label or evaluate it"
        )


def write_tagged(
    path: str | os.PathLike, tensors: dict[str, Any], fmt: str, version: int, spec: dict[str, Any]
) -> None:
    """Write ``tensors`` as safetensors, atomically, with the header ``fmt`` / ``version`` and ``spec``
    as JSON (sorted keys, so a file's bytes depend only on its content)."""
    import json

    from safetensors.torch import save

    metadata = {"format": fmt, "format_version": str(version), "spec": json.dumps(spec, sort_keys=True)}
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def read_tagged(path: Path, fmt: str, version: int, *, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(tensors, spec)`` of a file :func:`write_tagged` wrote as ``fmt``; anything else (not
    safetensors, another format or version, a spec that is not JSON) is one
    :class:`DirectionFileError` naming the file. ``what`` names the kind in messages ("direction set")."""
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except Exception as exc:
        raise DirectionFileError(f"{path}: not a safetensors file ({exc})") from None
    if metadata.get("format") != fmt:
        raise DirectionFileError(f"{path}: not a {what} (no '{fmt}' header)")
    found = metadata.get("format_version")
    if found != str(version):
        raise DirectionFileError(
            f"{path}: {what} format version {found}, this package reads {version} (upgrade "
            "ganzoo-directions, or write the file again)"
        )
    try:
        spec = json.loads(metadata["spec"])
    except (KeyError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise DirectionFileError(f"{path}: metadata 'spec' is missing or not JSON ({reason})") from None
    if not isinstance(spec, dict):
        raise DirectionFileError(f"{path}: metadata 'spec' must be a JSON object")
    return tensors, spec
