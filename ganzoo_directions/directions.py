"""Direction sets: the ``directions.safetensors`` file a run produces, and applying it to latents.

Layout of the file (safetensors, nothing is pickled):

tensors
    ``directions``        ``(K, D)`` float32 unit rows: direction k (for a nonlinear deformator, the
                          normalised centroid of its sign-aligned shift codes).
    ``deformator.<name>`` the deformator's weights, when the set has one.
metadata (string -> string)
    ``format``            ``"ganzoo-directions"``
    ``format_version``    ``"1"``
    ``spec``              JSON: generator (name, options, weights, fingerprint, latent space and dim,
                          image size), method (name, hyper-parameters), deformator config, settings
                          (K, eps range, steps, batch, lr, seed), package version, created, metrics,
                          ``ranking`` (``order``: indices strongest first, ``scores``, ``by``;
                          optional, :mod:`ganzoo_directions.ranking`), and ``labels``
                          (``{"3": "zoom"}``: names people gave directions; optional, files
                          without it load as unlabelled).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import defaults
from .deformators import Deformator, build_deformator
from .errors import DirectionFileError, GanzooError
from .files import read_tagged, refuse_cache_write, write_tagged
from .interfaces import GeneratorAdapter
from .safe_text import has_control

FORMAT_NAME = "ganzoo-directions"
FORMAT_VERSION = 1
FILE_NAME = "directions.safetensors"
MAX_LABEL_LENGTH = 60


def directions_problem(directions: torch.Tensor) -> str | None:
    """What makes ``directions`` unusable as a ``(K, D)`` direction tensor, or ``None``."""
    if directions.ndim != 2 or 0 in directions.shape:
        return f"'directions' must be a non-empty (K, D) tensor, got shape {tuple(directions.shape)}"
    if not directions.is_floating_point():
        return f"'directions' must be floating point, got {directions.dtype}"
    if not bool(torch.isfinite(directions).all()):
        return "'directions' holds NaN or infinite values (a diverged run?)"
    return None


#: the spec's sections and the JSON type each must have where present
SPEC_SECTIONS: dict[str, type | tuple[type, ...]] = {
    "generator": dict,
    "method": dict,
    "settings": dict,
    "metrics": dict,
    "ranking": dict,
    "labels": dict,
    "deformator": dict,
    "plugins": list,
    "method_summary": str,
    "package_version": str,
    "created": str,
}
#: fields of the ``generator`` and ``method`` sections that code reads, with their types
SPEC_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "generator": {
        "name": str,
        "latent_space": str,
        "fingerprint": str,
        "latent_dim": int,
        "image_size": int,
        "options": dict,
        "weights": (str, type(None)),
    },
    "method": {"name": str, "hyperparameters": dict},
}
#: run settings that are numbers, with the range a real run can have
SETTINGS_RANGES: dict[str, tuple[float, float]] = {
    "eps_max": (0.0, 1e4),
    "eps_min": (0.0, 1e4),
    "lr": (0.0, 1e3),
    "num_directions": (1, 1e7),
    "steps": (0, 1e12),
    "batch_size": (1, 1e7),
    "seed": (0, 2**63),
    "reconstructor_size": (0, 1e5),
}
#: the largest magnitude a recorded number (metrics, scores) may have
MAX_RECORDED = 1e12
#: how deeply the spec's JSON may nest (a real one nests 4 levels)
MAX_SPEC_DEPTH = 16


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "text", int: "an integer", type(None): "null"}
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(names.get(kind, kind.__name__) for kind in kinds)


def _is(value: Any, expected: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # JSON true/false are not numbers here
        return bool in (expected if isinstance(expected, tuple) else (expected,))
    return isinstance(value, expected)


def _numbers(value: Any) -> Iterator[Any]:
    """Every number inside a JSON value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            yield item


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def spec_problem(spec: Any, num_directions: int) -> str | None:
    """What is wrong with a direction file's ``spec`` metadata for a set of ``num_directions``, or
    ``None``: the one complete check of a header, so that no crafted value reaches the code that
    uses it (types of every section and read field, finite numbers in range, labels, the ranking)."""
    if not isinstance(spec, dict):
        return f"metadata 'spec' must be a JSON object, got {type(spec).__name__}"
    if _depth(spec) > MAX_SPEC_DEPTH:
        return f"metadata 'spec' nests deeper than {MAX_SPEC_DEPTH} levels"
    for section, expected in SPEC_SECTIONS.items():
        if section in spec and not _is(spec[section], expected):
            return f"metadata '{section}' must be {_type_name(expected)}"
    for section, fields in SPEC_FIELDS.items():
        for name, expected in fields.items():
            if name in spec.get(section, {}) and not _is(spec[section][name], expected):
                return f"metadata '{section}.{name}' must be {_type_name(expected)}"
    if not all(isinstance(name, str) for name in spec.get("plugins", [])):
        return "metadata 'plugins' must be a list of distribution names"
    for name, (low, high) in SETTINGS_RANGES.items():
        value = spec.get("settings", {}).get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            return f"metadata 'settings.{name}' must be a number in [{low:g}, {high:g}], got {value!r:.40}"
    for section in ("metrics", "ranking", "settings"):
        for number in _numbers(spec.get(section, {})):
            if not math.isfinite(number) or abs(number) > MAX_RECORDED:
                return f"metadata '{section}' holds {number!r}: recorded numbers are finite and below 1e12"
    labels = spec.get("labels", {})
    for key, text in labels.items():
        if not (key.isascii() and key.isdigit() and int(key) < num_directions) or not isinstance(text, str):
            return "metadata 'labels' must map direction indices (0..K-1) to text"
        if has_control(text) or len(text) > MAX_LABEL_LENGTH:
            return (
                f"the label of direction {key} holds control characters or is longer than "
                f"{MAX_LABEL_LENGTH} characters (not a label this project writes)"
            )
    ranking = spec.get("ranking", {})
    order, scores = ranking.get("order"), ranking.get("scores")
    if order is not None and (
        not isinstance(order, list)
        or not all(_is(k, int) for k in order)
        or sorted(order) != list(range(num_directions))
    ):
        return f"metadata 'ranking.order' must list the direction indices 0..{num_directions - 1}"
    if scores is not None and (not isinstance(scores, list) or len(scores) != num_directions):
        return f"metadata 'ranking.scores' must hold {num_directions} numbers"
    if not isinstance(ranking.get("by", ""), str):
        return "metadata 'ranking.by' must be text"
    return None


def generator_mismatches(made_for: Mapping[str, Any], generator: GeneratorAdapter) -> list[str]:
    """How ``generator`` differs from the one a file was ``made_for`` (its recorded ``generator``
    entry): name, latent space, weights fingerprint; empty when it is that generator."""
    problems = []
    if made_for.get("name") not in (None, generator.name):
        problems.append(f"generator {made_for.get('name')!r} (this is {generator.name!r})")
    if made_for.get("latent_space") not in (None, generator.latent_space):
        problems.append(f"latent space {made_for.get('latent_space')!r} (this is {generator.latent_space!r})")
    if made_for.get("fingerprint") not in (None, generator.fingerprint):
        problems.append(
            f"weights {made_for.get('fingerprint', '')[:12]} (these are {generator.fingerprint[:12]})"
        )
    return problems


def label_problem(text: str, index: int, labels: Mapping[int, str]) -> str | None:
    """Why ``text`` cannot label direction ``index`` next to the other ``labels``, or ``None``."""
    if not text.strip():
        return f"the label of direction {index} is empty (use --clear {index} to remove one)"
    if len(text) > MAX_LABEL_LENGTH:
        return f"the label of direction {index} has {len(text)} characters, at most {MAX_LABEL_LENGTH}"
    if has_control(text):
        return f"the label of direction {index} holds a control character (a line break?)"
    if text.strip().isdigit():
        return f"the label {text!r} is a number: it would read as a direction index"
    for other, existing in labels.items():
        if other != index and existing.casefold() == text.strip().casefold():
            return f"the label {text.strip()!r} is already direction {other}'s"
    return None


@dataclass
class DirectionSet:
    """K directions in a generator's latent space, with what made them.

    ``spec`` is the metadata dictionary described in the module docstring.
    """

    directions: torch.Tensor  # (K, D)
    deformator: Deformator | None = None
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def num_directions(self) -> int:
        return self.directions.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.directions.shape[1]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.spec.setdefault("metrics", {})

    @property
    def eps_range(self) -> float:
        """The magnitude range the set was made with (``settings.eps_max``; the tool's default for a
        file that records none): what traversals and the explorer's sliders reach by default."""
        return float(self.spec.get("settings", {}).get("eps_max", defaults.EPS_MAX))

    @property
    def labels(self) -> dict[int, str]:
        """``{index: label}`` of the directions people named (``zoo-dirs label``, the explorer)."""
        return {int(k): str(v) for k, v in (self.spec.get("labels") or {}).items()}

    def set_labels(
        self, assign: Mapping[int, str] | None = None, clear: Iterable[int] = ()
    ) -> dict[int, str]:
        """Label directions (``assign``: ``{index: text}``) and remove labels (``clear``), in memory;
        every change is checked first (an index out of range, an empty, too long or duplicate
        label raises :class:`GanzooError` and changes nothing). Returns the new labels."""
        labels = self.labels
        for k in [*clear, *(assign or {})]:
            if not 0 <= int(k) < self.num_directions:
                raise GanzooError(f"direction {k} out of range 0..{self.num_directions - 1}")
        for k in clear:
            labels.pop(int(k), None)
        for k, text in (assign or {}).items():
            problem = label_problem(text, int(k), labels)
            if problem is not None:
                raise GanzooError(problem)
            labels[int(k)] = text.strip()
        self.spec["labels"] = {str(k): labels[k] for k in sorted(labels)}
        if not labels:
            self.spec.pop("labels")
        return labels

    def index(self, direction: int | str) -> int:
        """The index of a direction given by index or by label (``dset.index("zoom")``)."""
        if isinstance(direction, str):
            wanted = direction.strip().casefold()
            for k, text in self.labels.items():
                if text.casefold() == wanted:
                    return k
            known = ", ".join(f"{text!r} ({k})" for k, text in sorted(self.labels.items()))
            raise GanzooError(
                f"no direction is labelled {direction!r}; "
                + (f"labels: {known}" if known else "this set has no labels (zoo-dirs label)")
            )
        k = int(direction)
        if not 0 <= k < self.num_directions:
            raise GanzooError(f"direction {k} out of range 0..{self.num_directions - 1}")
        return k

    def title(self, k: int) -> str:
        """How direction ``k`` is shown: ``"k=3 zoom"``, or ``"k=3"`` without a label."""
        label = self.labels.get(k)
        return f"k={k} {label}" if label else f"k={k}"

    def ranked(self) -> list[int]:
        """Direction indices, strongest first: the stored ranking (``spec["ranking"]``, see
        :mod:`ganzoo_directions.ranking`), or 0..K-1 for a set without one."""
        order = self.spec.get("ranking", {}).get("order")
        if isinstance(order, list) and sorted(order) == list(range(self.num_directions)):
            return [int(k) for k in order]
        return list(range(self.num_directions))

    # -- using it ---------------------------------------------------------------------------------
    def to(self, device: torch.device | str) -> DirectionSet:
        """Move the tensors to ``device`` (in place); returns ``self``."""
        self.directions = self.directions.to(device)
        if self.deformator is not None:
            self.deformator.to(device)
        return self

    def shift(
        self, k: torch.Tensor | int | str, eps: torch.Tensor | float, n: int | None = None
    ) -> torch.Tensor:
        """The latent shift A(k, eps): ``(B, D)``.

        ``k`` and ``eps`` are ``(B,)`` tensors, or numbers broadcast to ``n`` rows (default 1); ``k``
        may be a direction's label. Without a deformator the shift is ``eps * directions[k]``.
        """
        if isinstance(k, str):
            k = self.index(k)
        device = self.directions.device
        rows = n if n is not None else max(torch.as_tensor(k).numel(), torch.as_tensor(eps).numel())
        k = torch.as_tensor(k, device=device, dtype=torch.long).reshape(-1).expand(rows)
        eps = torch.as_tensor(eps, device=device, dtype=torch.float32).reshape(-1).expand(rows)
        if bool((k < 0).any() or (k >= self.num_directions).any()):
            raise GanzooError(f"direction index out of range 0..{self.num_directions - 1}")
        if self.deformator is not None:
            return self.deformator(k, eps)
        return self.directions[k] * eps[:, None]

    def apply(
        self, latents: torch.Tensor, k: torch.Tensor | int | str, eps: torch.Tensor | float
    ) -> torch.Tensor:
        """``latents + A(k, eps)`` for a ``(B, D)`` batch of latents; ``k`` an index or a label
        (``dset.apply(z, "zoom", 2.0)``)."""
        if latents.shape[-1] != self.latent_dim:
            raise GanzooError(
                f"latents have dimension {latents.shape[-1]}, the direction set {self.latent_dim}"
            )
        return latents + self.shift(k, eps, n=latents.shape[0])

    def check_generator(
        self,
        generator: GeneratorAdapter,
        *,
        allow_mismatch: bool = False,
        hint: str = "pass allow_mismatch=True (--allow-mismatch in the CLI) to apply it anyway",
    ) -> None:
        """Refuse a generator other than the one the set was made for.

        Latent space and dimension must match; a different weights fingerprint is refused too unless
        ``allow_mismatch`` (the latent dimension must match even then). ``hint`` ends the message:
        what the caller lets the user do about it.
        """
        if generator.latent_dim != self.latent_dim:
            raise DirectionFileError(
                f"direction set has latent dimension {self.latent_dim}, generator "
                f"{generator.name!r} has {generator.latent_dim}"
            )
        if allow_mismatch:
            return
        problems = generator_mismatches(self.spec.get("generator", {}), generator)
        if problems:
            raise DirectionFileError("direction set was made for " + ", ".join(problems) + f"; {hint}")

    # -- the Hub ----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, repo_id: str, *, revision: str | None = None, device: torch.device | str = "cpu"
    ) -> DirectionSet:
        """Load ``OWNER/NAME[@REVISION]`` from the Hugging Face Hub, through its cache (works offline
        once cached). See :mod:`ganzoo_directions.hub`."""
        from .hub import from_pretrained

        return from_pretrained(repo_id, revision=revision, device=str(device))

    def push_to_hub(self, repo_id: str, **options: Any) -> Any:
        """Upload to ``repo_id`` with a model card; ``options`` as :func:`ganzoo_directions.hub.push`
        (``previews``, ``private``, ``branch``, ``message``, ``overwrite_card``, ``license``)."""
        from .hub import push

        return push(self, repo_id, **options)

    # -- the file ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the set to ``path`` (a file, or a folder that gets ``directions.safetensors``)."""
        path = Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        problem = directions_problem(self.directions)
        if problem is not None:
            raise DirectionFileError(f"refusing to save {path}: {problem}")
        tensors = {"directions": self.directions.detach().float().cpu().contiguous()}
        spec = dict(self.spec)
        if self.deformator is not None:
            spec["deformator"] = self.deformator.config()
            for name, tensor in self.deformator.state_dict().items():
                tensors[f"deformator.{name}"] = tensor.detach().cpu().contiguous()
        else:
            spec.pop("deformator", None)
        write_tagged(path, tensors, FORMAT_NAME, FORMAT_VERSION, spec)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu") -> DirectionSet:
        """Read a direction set; anything that is not one gets a :class:`DirectionFileError`."""
        path = Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        if not path.is_file():
            raise DirectionFileError(f"{path}: no such file")
        tensors, spec = read_tagged(path, FORMAT_NAME, FORMAT_VERSION, what="direction set")
        directions = tensors.pop("directions", None)
        if directions is None:
            raise DirectionFileError(f"{path}: no 'directions' tensor")
        problem = directions_problem(directions) or spec_problem(spec, directions.shape[0])
        if problem is not None:
            raise DirectionFileError(f"{path}: {problem}")
        directions = directions.float()  # float16 / bfloat16 / float64 files: the package computes in fp32
        for key, tensor in tensors.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise DirectionFileError(f"{path}: tensor {key!r} holds NaN or infinite values")
        deformator = None
        if "deformator" in spec:
            config = dict(spec["deformator"])
            state = {
                k.removeprefix("deformator."): v for k, v in tensors.items() if k.startswith("deformator.")
            }
            # sizes read from the file are bounded by what it holds before anything is allocated: K and
            # D are the directions', every other size (an MLP's hidden width) a stored tensor's
            stored = {size for tensor in state.values() for size in tensor.shape}
            K, D = directions.shape
            if (config.get("num_directions"), config.get("latent_dim")) != (K, D) or any(
                isinstance(v, int) and not isinstance(v, bool) and v not in stored
                for key, v in config.items()
                if key not in ("num_directions", "latent_dim")
            ):
                raise DirectionFileError(
                    f"{path}: deformator sizes disagree with the tensors the file holds (K, D = {K}, {D})"
                )
            try:
                deformator = build_deformator(config.pop("kind"), **config)
                deformator.load_state_dict(state)
            except (GanzooError, KeyError, TypeError, RuntimeError) as exc:
                raise DirectionFileError(f"{path}: deformator does not load ({exc})") from None
            if (deformator.num_directions, deformator.latent_dim) != tuple(directions.shape):
                raise DirectionFileError(f"{path}: deformator and directions disagree on (K, D)")
            deformator.eval()
        return cls(directions, deformator, spec).to(device)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s sidecar ``.NAME.lock`` (other label writers wait)."""
    lock = path.with_name(f".{path.name}.lock")
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_file(path: str | os.PathLike, change: Callable[[DirectionSet], Any]) -> Any:
    """Apply ``change`` to the direction file at ``path`` (a file or a run folder) and write it back
    atomically: the one read-modify-write every writer of a set's metadata goes through (labels,
    recorded metrics). Under a lock the file is re-read first, so two writers (an explorer, ``zoo-dirs
    label``, an ``evaluate`` that runs for an hour) never lose each other's changes. Returns what
    ``change`` returns."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    refuse_cache_write(path)
    with _locked(path):
        dset = DirectionSet.load(path)
        result = change(dset)
        dset.save(path)
    return result


def update_labels(
    path: str | os.PathLike, assign: Mapping[int, str] | None = None, clear: Iterable[int] = ()
) -> dict[int, str]:
    """Change the labels of the direction file at ``path`` (:func:`update_file`). Returns the labels
    now in the file."""
    return update_file(path, lambda dset: dset.set_labels(assign, clear))
