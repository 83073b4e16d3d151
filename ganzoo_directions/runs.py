"""Discovery runs: build the generator and method by name, train, and write the run folder.

A run folder holds:

``run.json``                what was asked (generator, method, their settings, shared settings)
``checkpoint.pt``           the training state (resume); plain tensors, loaded with weights_only=True
``log.jsonl``               one JSON line per log step: losses, running RCA, steps/s
``directions.safetensors``  the direction set (see :mod:`ganzoo_directions.directions`)
``reconstructor.safetensors`` the trained reconstructor, when the method has one
``traversal.png``           a picture of the directions
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .directions import FILE_NAME, DirectionSet
from .errors import GanzooError, RunFolderError
from .interfaces import DirectionMethod, GeneratorAdapter, RunSettings
from .io import atomic_write_bytes, atomic_write_text
from .metrics import factor_alignment, reconstructor_accuracy
from .plugins import get_registry
from .ranking import rank_by_image_change, ranking_record
from .traversal import save_traversal

RUN_FILE = "run.json"
RECONSTRUCTOR_FILE = "reconstructor.safetensors"
TRAVERSAL_FILE = "traversal.png"


def pick_device(requested: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise GanzooError("--device cuda was asked for, but torch sees no CUDA device")
    return requested


def build_generator(
    name: str, *, weights: str | None = None, options: dict[str, Any] | None = None, device: str = "cpu"
) -> GeneratorAdapter:
    """The registered generator ``name``, built, frozen and moved to ``device``."""
    cls = get_registry().generator(name).cls
    try:
        generator = cls(weights=weights, **(options or {}))
    except GanzooError:
        raise
    except (TypeError, ValueError) as exc:
        raise GanzooError(f"generator {name!r}: {exc}") from None
    generator.requires_grad_(False).eval()
    return generator.to(device)


def build_method(name: str, params: dict[str, Any] | None = None) -> DirectionMethod:
    """The registered method ``name`` with hyper-parameters ``params``."""
    return get_registry().method(name).cls(**(params or {}))


@dataclass
class RunRequest:
    """Everything that defines a discovery run (saved as ``run.json``)."""

    generator: str
    method: str
    generator_options: dict[str, Any]
    weights: str | None
    params: dict[str, Any]
    settings: RunSettings

    def to_json(self) -> str:
        return json.dumps(
            {
                "generator": self.generator,
                "method": self.method,
                "generator_options": self.generator_options,
                "weights": self.weights,
                "params": self.params,
                "settings": {
                    **self.settings.describe(),
                    **self.settings.performance(),
                    "checkpoint_every": self.settings.checkpoint_every,
                    "log_every": self.settings.log_every,
                },
                "package_version": __version__,
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_folder(cls, run_dir: Path) -> RunRequest:
        path = run_dir / RUN_FILE
        try:
            data = json.loads(path.read_text())
            settings = RunSettings(**data["settings"], run_dir=run_dir)
            return cls(
                data["generator"],
                data["method"],
                data["generator_options"],
                data["weights"],
                data["params"],
                settings,
            )
        except FileNotFoundError:
            raise RunFolderError(f"{run_dir} is not a run folder (no {RUN_FILE})") from None
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise RunFolderError(f"{path} is damaged: {exc}") from None


@dataclass
class RunOutcome:
    run_dir: Path
    directions: DirectionSet
    traversal: Path


def default_run_dir(generator: str, method: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{generator}-{method}-{stamp}"


def prepare_run_dir(run_dir: Path, *, resume: bool) -> None:
    """Create a fresh run folder, or check that a resumed one exists; never overwrite silently."""
    if resume:
        if not (run_dir / RUN_FILE).exists():
            raise RunFolderError(f"cannot resume: {run_dir} is not a run folder (no {RUN_FILE})")
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunFolderError(
            f"{run_dir} already exists and is not empty; pass --resume to continue that run, "
            "or choose another --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)


def execute(
    request: RunRequest, *, rca_pairs: int = 2000, device: str = "cpu", default_directions: int = 128
) -> RunOutcome | None:
    """Run a discovery end to end and write the run folder (see the module docstring).

    A zero ``num_directions`` means ``default_directions`` capped at the generator's maximum; zero
    ``steps`` means the generator's recommended steps. Under ``torchrun`` every rank trains and only
    rank 0 writes and returns the outcome (the others return ``None``).
    """
    run_dir = Path(request.settings.run_dir) if request.settings.run_dir is not None else None
    if run_dir is None:
        raise RunFolderError("a run needs a run folder")
    generator = build_generator(
        request.generator, weights=request.weights, options=request.generator_options, device=device
    )
    method = build_method(request.method, request.params)
    if request.settings.num_directions <= 0:
        request.settings.num_directions = min(default_directions, generator.max_directions)
    if not method.trained:
        request.settings.steps = 0  # closed form: no training steps
    elif request.settings.steps <= 0:
        request.settings.steps = generator.recommended_steps
    settings = replace(request.settings, device=device)
    from .training import distributed_context

    rank, _ = distributed_context()
    if settings.num_directions > generator.max_directions:
        raise GanzooError(
            f"generator {generator.name!r} allows at most {generator.max_directions} directions, "
            f"asked for {settings.num_directions}"
        )
    if rank == 0:
        atomic_write_text(run_dir / RUN_FILE, request.to_json())
        if method.trained:
            note_shift_scale(generator, settings)
    result = method.discover(generator, settings)
    if rank != 0:  # data-parallel training: rank 0 evaluates and writes
        return None
    if not method.trained and len(result.directions) != settings.num_directions:
        settings = replace(settings, num_directions=len(result.directions))  # e.g. one per known factor

    K = settings.num_directions
    metrics: dict[str, Any] = dict(result.metrics)
    dset = DirectionSet(result.directions, result.deformator)
    dset.to(device)
    if result.reconstructor is not None:
        metrics["rca"], per_direction = reconstructor_accuracy(
            generator,
            dset.shift,
            result.reconstructor,
            K,
            pairs=rca_pairs,
            eps_max=settings.eps_max,
            eps_min=settings.eps_min,
            per_direction=True,
        )
        metrics["rca_per_direction"] = per_direction.tolist()
        metrics["rca_pairs"] = rca_pairs
        metrics["rca_chance"] = 1.0 / K
        save_reconstructor(run_dir / RECONSTRUCTOR_FILE, result.reconstructor, K)
    factors = generator.known_factors()
    if factors is not None:
        metrics.update(factor_alignment(dset.directions.cpu(), factors.directions.cpu()))
    registry = get_registry()
    dset.spec = {
        "generator": generator.describe(),
        "method": method.describe(),
        "method_summary": registry.method(request.method).cls.summary,
        "plugins": sorted(
            {
                registry.generator(request.generator).plugin.distribution,
                registry.method(request.method).plugin.distribution,
            }
        ),
        "settings": settings.describe(),
        "package_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "metrics": metrics,
    }
    if "rca_per_direction" in metrics:  # the better ranking for trained sets (docs/results.md)
        dset.spec["ranking"] = ranking_record(
            torch.tensor(metrics["rca_per_direction"]), "rca", pairs=rca_pairs
        )
    else:
        dset.spec["ranking"] = rank_by_image_change(generator, dset, magnitude=settings.eps_max / 2)
    dset.save(run_dir / FILE_NAME)
    traversal = run_dir / TRAVERSAL_FILE
    save_traversal(traversal, generator, dset, magnitude_range=settings.eps_max)
    return RunOutcome(run_dir, dset, traversal)


def typical_latent_norm(generator: GeneratorAdapter, samples: int = 256) -> float:
    """Mean norm of latents from the generator's prior (a fixed seed)."""
    rng = torch.Generator(generator.device).manual_seed(0)
    with torch.no_grad():
        return generator.sample_latents(samples, rng).norm(dim=1).mean().item()


def note_shift_scale(generator: GeneratorAdapter, settings: RunSettings) -> None:
    """Tell the user when the largest shift is longer than a typical latent (it leaves the prior).

    The paper's eps_max = 6 was set for latents of norm 11-22; on `sngan-sprites` (norm about 4) it
    is 1.5 latents long. Measured there, a range relative to the latent's norm did not change how
    disentangled the directions are (docs/results.md), so the paper's default stays, with this note.
    """
    norm = typical_latent_norm(generator)
    if settings.eps_max > norm:
        settings.reporter.message(
            f"note: --eps-max {settings.eps_max:g} is {settings.eps_max / norm:.1f}x the typical latent norm "
            f"({norm:.1f}) of {generator.name!r}, so the largest shifts leave the prior and traversals "
            f"saturate; --eps-max {norm / 2:.1f} keeps them inside (docs/results.md, shift scale)"
        )


def save_reconstructor(path: Path, reconstructor: torch.nn.Module, num_directions: int) -> None:
    """The trained R as safetensors (its architecture class name and K in the metadata)."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in reconstructor.state_dict().items()}
    metadata = {
        "class": type(reconstructor).__name__,
        "kind": getattr(reconstructor, "kind", ""),
        "num_directions": str(num_directions),
    }
    atomic_write_bytes(path, save(tensors, metadata=metadata))
