"""Direction sets in other tools' formats: ``zoo-dirs import`` and ``zoo-dirs export``.

Read (never unpickling: ``torch.load(weights_only=True)``, ``numpy.load(allow_pickle=False)``):

``voynov``
    GANLatentDiscovery (Voynov & Babenko 2020): a results folder (``args.json``, ``models/deformator_N.pt``,
    ``human_annotation.txt``) or one ``deformator_N.pt``. ``ortho`` deformators store ``log_mat_half``
    L; the matrix is ``matrix_exp(L - L^T)``. ``linear`` / ``proj`` store ``linear.weight`` (D_out, K).
    Direction k is column k (their ``F.linear(one_hot * eps, M)``); a bias is a constant offset, not a
    direction, and is left out (said in the set). ``fc`` (an MLP) and ``random`` (not saved) are refused.
``ganspace``
    GANSpace (Härkönen et al. 2020) ``.npz``: ``lat_comp`` (N, 1, D) unit components, ``lat_stdev``
    (N,) the latents' spread along each; optional ``edit_start`` / ``edit_end`` (exclusive), the W+
    layer range of GANSpace's saved edits.
``vectors``
    InterFaceGAN / e4e / StyleCLIP-style unit vectors, ``.npy`` or ``.pt``: one direction per file,
    ``(D,)``, ``(1, D)`` or per-layer ``(1, L, D)`` (equal rows on a contiguous layer range, zero
    elsewhere), labelled by the file name; or ``(K, D)`` with labels in ``FILE.labels.txt``
    (``human_annotation.txt`` lines, ``k: label``), as ``export`` writes them.

Written by ``export``: ``npy`` / ``pt`` (``(K, D)`` unit rows, ``--split``: one ``(1, D)`` file per
direction named by its label), ``ganspace`` (``lat_comp`` (K, 1, D), ``lat_stdev``, ``lat_mean``, and
``edit_start`` / ``edit_end`` when the set acts on a W+ layer range). These formats carry no
generator fingerprint: an import names the generator and its weights, like ``discover``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .directions import FILE_NAME, MAX_LABEL_LENGTH, DirectionSet
from .errors import DirectionFileError, GanzooError

IMPORT_FORMATS = ("auto", "voynov", "ganspace", "vectors")
EXPORT_FORMATS = ("npy", "pt", "ganspace")
VOYNOV_ANNOTATION = "human_annotation.txt"
VOYNOV_SHIFT_SCALE = 6.0  # GANLatentDiscovery's Params defaults, when args.json does not say
VOYNOV_MIN_SHIFT = 0.5
INTERFACEGAN_RANGE = 3.0  # InterFaceGAN edits unit normals over about [-3, 3]
GANSPACE_SIGMAS = 3.0  # GANSpace edits in units of the spread: eps_max = 3 sigma (median over components)


@dataclass
class Foreign:
    """Directions read from another tool's files, before they meet a generator."""

    fmt: str
    directions: torch.Tensor  # (K, D) unit rows
    norms: list[float]  # each direction's length in the file (GANSpace: the latents' spread sigma)
    eps_max: float
    eps_min: float = 0.0
    labels: dict[int, str] = field(default_factory=dict)
    layers: tuple[int, int] | None = None  # W+ entries, inclusive, when the file says
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


# -- reading ---------------------------------------------------------------------------------------
def _torch_load(path: Path) -> Any:
    from .weights import unpickling_reason

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DirectionFileError(
            f"{path}: not readable as plain tensors (torch.load(weights_only=True) refuses pickled code): "
            f"{unpickling_reason(exc)}"
        ) from None


def _numpy_load(path: Path) -> Any:
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DirectionFileError(
                f"{path}: holds pickled Python objects, which are never loaded"
            ) from None
        raise DirectionFileError(f"{path}: not a NumPy file ({exc})") from None
    except OSError as exc:
        raise DirectionFileError(f"{path}: not a NumPy file ({exc})") from None


def _unit_rows(matrix: torch.Tensor, where: str) -> tuple[torch.Tensor, list[float]]:
    """``(K, D)`` -> unit rows and their norms; zero or non-finite rows are refused."""
    matrix = matrix.detach().double()
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise DirectionFileError(f"{where}: expected a (K, D) matrix, found shape {tuple(matrix.shape)}")
    if not bool(torch.isfinite(matrix).all()):
        raise DirectionFileError(f"{where}: holds NaN or infinite values")
    norms = matrix.norm(dim=1)
    if bool((norms <= 1e-12).any()):
        zero = [int(k) for k in torch.nonzero(norms <= 1e-12).flatten()]
        raise DirectionFileError(f"{where}: direction(s) {zero[:8]} have zero length")
    return (matrix / norms[:, None]).float(), [float(n) for n in norms]


def read_annotation(path: Path, num_directions: int) -> dict[int, str]:
    """Labels from GANLatentDiscovery's ``human_annotation.txt`` layout (``k: label`` per line),
    made to fit this project's labels (trimmed to the length limit, repeats numbered)."""
    labels: dict[int, str] = {}
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        index, sep, text = line.partition(":")
        if not sep or not index.strip().isdigit():
            raise DirectionFileError(f"{path}:{number}: expected 'INDEX: label', got {line[:60]!r}")
        k, text = int(index), " ".join(text.split())[:MAX_LABEL_LENGTH]
        if not text or not 0 <= k < num_directions:
            continue
        unique, n = text, 1
        while unique.casefold() in seen:
            n += 1
            suffix = f" ({n})"
            unique = text[: MAX_LABEL_LENGTH - len(suffix)] + suffix
        seen.add(unique.casefold())
        labels[k] = unique
    return labels


def _read_voynov(path: Path) -> Foreign:
    if path.is_dir():
        models = path / "models"
        candidates = sorted(
            (p for p in (models if models.is_dir() else path).glob("deformator_*.pt")),
            key=lambda p: int(re.sub(r"\D", "", p.stem) or 0),
        )
        if not candidates:
            raise DirectionFileError(
                f"{path}: no models/deformator_N.pt (a GANLatentDiscovery results folder)"
            )
        file, root = candidates[-1], path
    else:
        file = path
        root = path.parent.parent if path.parent.name == "models" else path.parent
    args: dict[str, Any] = {}
    if (root / "args.json").is_file():
        try:
            args = json.loads((root / "args.json").read_text())
        except json.JSONDecodeError as exc:
            raise DirectionFileError(f"{root / 'args.json'}: not JSON ({exc})") from None
    state = _torch_load(file)
    if not isinstance(state, dict):
        raise DirectionFileError(f"{file}: expected a deformator state dict, found {type(state).__name__}")
    kind = args.get("deformator")
    notes = []
    if "log_mat_half" in state:
        half = state["log_mat_half"].double()
        matrix = torch.linalg.matrix_exp(half - half.T)  # (D, D) orthogonal
        columns = matrix
    elif "linear.weight" in state:
        columns = state["linear.weight"].double()  # (D_out, K)
        bias = state.get("linear.bias")
        if bias is not None and float(bias.abs().max()) > 0:
            notes.append("the deformator's bias (a constant offset of every shift) is left out")
    elif any(key.startswith("fc1.") for key in state):
        raise DirectionFileError(
            f"{file}: an 'fc' deformator (an MLP: its shift is not a fixed direction); only ortho, "
            "linear, proj and id deformators hold directions"
        )
    elif not state and kind == "id":
        dim = int(args.get("max_latent_dim") or args.get("directions_count") or 0)
        if dim <= 0:
            raise DirectionFileError(f"{file}: an 'id' deformator, but args.json gives no dimension")
        columns = torch.eye(dim, dtype=torch.float64)
    elif not state and kind == "random":
        raise DirectionFileError(
            f"{file}: a 'random' deformator, whose matrix GANLatentDiscovery never saves"
        )
    else:
        keys = ", ".join(sorted(state)[:6]) or "none"
        raise DirectionFileError(f"{file}: not a GANLatentDiscovery deformator (tensors: {keys})")
    directions, norms = _unit_rows(columns.T, str(file))
    annotation = root / VOYNOV_ANNOTATION
    labels = read_annotation(annotation, len(directions)) if annotation.is_file() else {}
    if kind == "proj":
        notes.append(
            "a 'proj' deformator: shifts are rescaled to |eps|, so the file's column lengths do not matter"
        )
    return Foreign(
        "voynov",
        directions,
        norms,
        eps_max=float(args.get("shift_scale") or VOYNOV_SHIFT_SCALE),
        eps_min=float(args.get("min_shift") or VOYNOV_MIN_SHIFT),
        labels=labels,
        notes=notes,
        files=[file.name] + ([VOYNOV_ANNOTATION] if labels else []),
    )


def _read_ganspace(path: Path) -> Foreign:
    data = _numpy_load(path)
    if not hasattr(data, "files") or "lat_comp" not in data.files:
        raise DirectionFileError(f"{path}: not a GANSpace decomposition (no 'lat_comp' array)")
    comp = torch.from_numpy(data["lat_comp"].astype("float64"))
    if comp.ndim == 3 and comp.shape[1] == 1:
        comp = comp[:, 0]
    if comp.ndim != 2:
        raise DirectionFileError(
            f"{path}: 'lat_comp' of shape {tuple(comp.shape)}; expected (N, 1, D) or (N, D)"
        )
    directions, _ = _unit_rows(comp, f"{path} lat_comp")
    stdev = data["lat_stdev"].reshape(-1).tolist() if "lat_stdev" in data.files else [1.0] * len(directions)
    if len(stdev) != len(directions):
        raise DirectionFileError(
            f"{path}: 'lat_stdev' has {len(stdev)} values for {len(directions)} components"
        )
    layers = None
    if "edit_start" in data.files and "edit_end" in data.files:
        start, end = int(data["edit_start"]), int(data["edit_end"])
        if not 0 <= start < end:
            raise DirectionFileError(f"{path}: layer range edit_start={start}, edit_end={end} is empty")
        layers = (start, end - 1)
    import statistics

    median = statistics.median(stdev)
    return Foreign(
        "ganspace",
        directions,
        [float(s) for s in stdev],
        eps_max=GANSPACE_SIGMAS * float(median),
        layers=layers,
        files=[path.name],
    )


def _per_layer(vector: torch.Tensor, where: str) -> tuple[torch.Tensor, tuple[int, int]]:
    """``(L, D)`` per-layer vector -> one ``(D,)`` direction and its inclusive layer range."""
    active = [i for i in range(vector.shape[0]) if float(vector[i].abs().max()) > 0]
    if not active:
        raise DirectionFileError(f"{where}: the direction is zero on every layer")
    first, last = active[0], active[-1]
    block = vector[first : last + 1]
    if active != list(range(first, last + 1)) or not torch.allclose(block, block[:1].expand_as(block)):
        raise DirectionFileError(
            f"{where}: a per-layer direction that differs between layers (or skips some); this project's "
            "sets move one W direction on a contiguous layer range"
        )
    return block[0], (first, last)


def _read_vectors(paths: Sequence[Path]) -> Foreign:
    rows: list[torch.Tensor] = []
    labels: dict[int, str] = {}
    layer_ranges: set[tuple[int, int] | None] = set()
    for path in paths:
        raw = _numpy_load(path) if path.suffix == ".npy" else _torch_load(path)
        if isinstance(raw, dict) and len(raw) == 1:
            raw = next(iter(raw.values()))
        tensor = torch.as_tensor(raw) if not isinstance(raw, torch.Tensor) else raw
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise DirectionFileError(f"{path}: expected a floating-point array of directions")
        tensor = tensor.double()
        if tensor.ndim == 3 and tensor.shape[0] == 1:  # (1, L, D): one direction per layer
            vector, layers = _per_layer(tensor[0], str(path))
            block, layer_ranges = vector[None], layer_ranges | {layers}
        elif tensor.ndim == 1 or (tensor.ndim == 2 and tensor.shape[0] == 1):
            block, layer_ranges = tensor.reshape(1, -1), layer_ranges | {None}
        elif tensor.ndim == 2:
            block, layer_ranges = tensor, layer_ranges | {None}
        else:
            raise DirectionFileError(
                f"{path}: shape {tuple(tensor.shape)}; expected (D,), (1, D), (K, D) or per-layer (1, L, D)"
            )
        sidecar = path.with_name(path.name + ".labels.txt")
        if len(block) == 1 and not sidecar.is_file():
            labels[len(rows)] = path.stem[:MAX_LABEL_LENGTH]
        elif sidecar.is_file():
            labels.update({len(rows) + k: text for k, text in read_annotation(sidecar, len(block)).items()})
        rows.extend(block)
    if len(layer_ranges) > 1:
        raise DirectionFileError("the files act on different layer ranges; import them separately")
    dims = {len(r) for r in rows}
    if len(dims) > 1:
        raise DirectionFileError(f"the files have different latent dimensions: {sorted(dims)}")
    directions, norms = _unit_rows(torch.stack(rows), ", ".join(p.name for p in paths))
    # labels must be unique: file names of a folder are, sidecars are made unique on reading
    return Foreign(
        "vectors",
        directions,
        norms,
        eps_max=INTERFACEGAN_RANGE,
        labels=labels,
        layers=next(iter(layer_ranges)),
        files=[p.name for p in paths],
    )


def detect_format(paths: Sequence[Path]) -> str:
    """The format of ``paths`` from their names (``auto``)."""
    first = paths[0]
    if first.is_dir() or first.name.startswith("deformator_"):
        return "voynov"
    if first.suffix == ".npz":
        return "ganspace"
    if all(p.suffix in (".npy", ".pt", ".pth") for p in paths):
        return "vectors"
    raise DirectionFileError(
        f"{first}: cannot tell its format from the name; give --format ({', '.join(IMPORT_FORMATS[1:])})"
    )


def read_foreign(paths: Sequence[Path], fmt: str = "auto") -> Foreign:
    """Read directions in another tool's format (``fmt``, or guessed from the names)."""
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise DirectionFileError(f"{missing[0]}: no such file")
    fmt = detect_format(paths) if fmt == "auto" else fmt
    if fmt in ("voynov", "ganspace") and len(paths) != 1:
        raise DirectionFileError(f"the {fmt} format is one file (or folder); got {len(paths)}")
    if fmt == "voynov":
        return _read_voynov(paths[0])
    if fmt == "ganspace":
        return _read_ganspace(paths[0])
    return _read_vectors(paths)


def foreign_spec(foreign: Foreign, generator: Any, *, plugins: list[str]) -> dict[str, Any]:
    """The metadata of an imported set (:mod:`ganzoo_directions.directions`): the generator it is
    applied to, where the directions came from, their original norms and the eps range."""
    import datetime as dt

    from . import __version__

    return {
        "generator": generator.describe(),
        "method": {"name": f"imported-{foreign.fmt}", "hyperparameters": {}},
        "method_summary": f"directions imported from {foreign.fmt} files ({', '.join(foreign.files)})",
        "plugins": plugins,
        "settings": {
            "num_directions": len(foreign.directions),
            "eps_max": foreign.eps_max,
            "eps_min": foreign.eps_min,
        },
        "imported": {
            "format": foreign.fmt,
            "files": foreign.files,
            "norms": foreign.norms,
            "latent_space": generator.latent_space,
            "layers": list(foreign.layers) if foreign.layers else None,
            "notes": foreign.notes,
        },
        "package_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "metrics": {},
    }


# -- writing ---------------------------------------------------------------------------------------
def _layer_range(dset: DirectionSet) -> tuple[int, int] | None:
    """The W+ entries a set acts on, when they are a strict part of the generator's (``layers``)."""
    layers = dset.spec.get("generator", {}).get("layers")
    if not isinstance(layers, list) or not layers:
        return None
    return (int(min(layers)), int(max(layers)))


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "direction"


def export_set(dset: DirectionSet, out: Path, fmt: str, *, split: bool = False) -> list[Path]:
    """Write ``dset`` in another tool's format; returns the files written (atomically)."""
    import io

    import numpy as np

    from .files import atomic_write_bytes

    directions = dset.directions.detach().float().cpu()  # (K, D)
    if fmt not in EXPORT_FORMATS:
        raise DirectionFileError(f"unknown export format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}")
    written: list[Path] = []

    def write(path: Path, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        if path.suffix == ".pt":
            torch.save(torch.from_numpy(array), buffer)
        else:
            np.save(buffer, array, allow_pickle=False)
        atomic_write_bytes(path, buffer.getvalue())
        written.append(path)

    if fmt == "ganspace":
        if split:
            raise DirectionFileError("--split writes one file per direction: use it with npy or pt")
        layers = _layer_range(dset)
        arrays = {
            "lat_comp": directions.numpy()[:, None, :],
            "lat_stdev": np.full(
                len(directions),
                float(dset.spec.get("settings", {}).get("eps_max", 1.0)) / GANSPACE_SIGMAS,
                np.float32,
            ),
            "lat_mean": np.zeros((1, directions.shape[1]), np.float32),  # a set stores no latent mean
        }
        if layers is not None:
            arrays["edit_start"], arrays["edit_end"] = np.array(layers[0]), np.array(layers[1] + 1)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(out, buffer.getvalue())
        return [out]
    suffix = "." + fmt
    if split:
        out.mkdir(parents=True, exist_ok=True)
        names: set[str] = set()
        for k in range(len(directions)):
            name = _file_name(dset.labels.get(k) or f"direction_{k}")
            while name in names:
                name += f"_{k}"
            names.add(name)
            write(out / f"{name}{suffix}", directions[k : k + 1].numpy())
        return written
    write(out, directions.numpy())
    if dset.labels:
        text = "".join(f"{k}: {label}\n" for k, label in sorted(dset.labels.items()))
        sidecar = out.with_name(out.name + ".labels.txt")
        atomic_write_bytes(sidecar, text.encode())
        written.append(sidecar)
    return written


def import_set(
    files: Sequence[Path],
    fmt: str,
    generator_name: str,
    options: dict[str, str],
    out: Path,
    *,
    weights: str | None = None,
    device: str = "cpu",
) -> tuple[DirectionSet, Foreign]:
    """Read ``files`` in ``fmt`` (``"auto"``: from the names) as directions of the generator
    ``generator_name`` built with ``options`` (a W+ layer range the files carry sets ``layers``
    unless given), rank them and write ``out/directions.safetensors`` and ``out/traversal.png``.
    ``out`` must be new or empty."""
    from .plugins import get_registry
    from .ranking import rank_by_image_change
    from .runs import build_generator
    from .traversal import save_traversal

    if out.exists() and any(out.iterdir()):
        raise GanzooError(f"{out} exists and is not empty; name a new folder for the set")
    foreign = read_foreign(list(files), fmt)
    entry = get_registry().generator(generator_name)
    options = dict(options)
    if foreign.layers is not None and "layers" not in options:
        if "layers" not in entry.cls.options:
            raise GanzooError(
                f"the directions act on W+ layers {foreign.layers[0]}-{foreign.layers[1]}; generator "
                f"{generator_name!r} has no layer ranges"
            )
        options["layers"] = f"{foreign.layers[0]}-{foreign.layers[1]}"
    generator = build_generator(generator_name, weights=weights, options=options, device=device)
    if generator.latent_dim != foreign.directions.shape[1]:
        raise GanzooError(
            f"the directions have dimension {foreign.directions.shape[1]}; generator {generator_name!r} "
            f"({generator.latent_space}) has {generator.latent_dim}"
        )
    spec = foreign_spec(foreign, generator, plugins=[entry.plugin.distribution])
    dset = DirectionSet(foreign.directions.to(device), None, spec)
    dset.set_labels(foreign.labels)
    dset.spec["ranking"] = rank_by_image_change(generator, dset, magnitude=foreign.eps_max / 2)
    out.mkdir(parents=True, exist_ok=True)
    dset.save(out / FILE_NAME)
    save_traversal(out / "traversal.png", generator, dset, magnitude_range=foreign.eps_max)
    return dset, foreign


#: export formats by the output file's extension
FORMAT_BY_SUFFIX = {".npy": "npy", ".pt": "pt", ".npz": "ganspace"}


def format_for(out: Path) -> str:
    """The export format ``out``'s extension names."""
    if out.suffix not in FORMAT_BY_SUFFIX:
        raise GanzooError(f"give --format, or an --out ending in {', '.join(FORMAT_BY_SUFFIX)}")
    return FORMAT_BY_SUFFIX[out.suffix]
