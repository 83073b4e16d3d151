"""The settings of a discovery run (:class:`RunSettings`), each declared once with its role and its
command-line flag, and the :class:`Reporter` a run talks through. No torch here: ``zoo-dirs --help``
builds discover's options from these declarations without importing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from . import defaults

__all__ = [
    "PERFORMANCE",
    "RESULT",
    "RESUMABLE",
    "RUNTIME",
    "SCHEDULE",
    "VARIANT_SETTINGS",
    "Flag",
    "Reporter",
    "RunSettings",
    "SilentReporter",
    "resume_differences",
]


class Reporter(Protocol):
    """Receives progress from a running discovery (the CLI draws it; tests ignore it)."""

    def start(self, total_steps: int, first_step: int) -> None:
        """Training is about to run steps ``first_step .. total_steps - 1``."""

    def advance(self, step: int, stats: Mapping[str, float] | None) -> None:
        """Step ``step`` finished; ``stats`` (averaged losses, running RCA) when it was a log step."""

    def message(self, text: str) -> None:
        """A line for the user."""

    def finish(self) -> None:
        """Training ended (normally or not)."""


class SilentReporter:
    """A :class:`Reporter` that shows nothing."""

    def start(self, total_steps: int, first_step: int) -> None:
        pass

    def advance(self, step: int, stats: Mapping[str, float] | None) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def finish(self) -> None:
        pass


#: what a :class:`RunSettings` field is, in its ``metadata["role"]``
RESULT, SCHEDULE, PERFORMANCE, RUNTIME = "result", "schedule", "performance", "runtime"


@dataclass(frozen=True)
class Flag:
    """How a :class:`RunSettings` field is given on the command line: ``zoo-dirs discover``'s option
    is generated from it (name, help, bounds), and so are the fields a resume reconciles and the keys a
    benchmark ``--variant`` takes. ``unset`` fields default to "not chosen" (``0`` in the settings):
    the method's recommendation or the generator's default fills them, as ``unset`` says;
    ``recommended`` ones show their plain default beside "what the method recommends"."""

    name: str  # "--batch"
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is refused
    choices: tuple[str, ...] | None = None
    unset: str | None = None  # what fills the field when the flag is not given
    recommended: bool = False  # methods may recommend it per generator


def _setting(default: Any, role: str, flag: Flag | None = None) -> Any:
    return field(default=default, metadata={"role": role, "flag": flag})


@dataclass
class RunSettings:
    """The settings every discovery run shares (the paper's defaults where it gives them; the
    values live in :mod:`ganzoo_directions.defaults`).

    Each field has a role (``dataclasses.fields(RunSettings)[i].metadata["role"]``), the one place
    that decides where it goes: ``result`` fields define what a run computes (recorded in direction
    files; a resume must keep them), ``schedule`` fields when it logs and checkpoints, ``performance``
    fields how the step executes (speed and float rounding, not the method), and ``runtime`` fields
    belong to this process only (never saved).
    """

    num_directions: int = _setting(
        defaults.NUM_DIRECTIONS,
        RESULT,
        Flag(
            "--directions",
            "Number of directions K.",
            low=1,
            recommended=True,
            unset=f"{defaults.NUM_DIRECTIONS}, capped at the latent dimension",
        ),
    )
    steps: int = _setting(
        defaults.STEPS,
        RESULT,
        Flag(
            "--steps",
            "Training steps; on --resume not fewer than already trained.",
            low=1,
            high=defaults.MAX_STEPS,
            recommended=True,
            unset="the generator's recommended steps (sprites: 2000)",
        ),
    )
    batch_size: int = _setting(defaults.BATCH_SIZE, RESULT, Flag("--batch", "Batch size.", low=2))
    lr: float = _setting(
        defaults.LR,
        RESULT,
        Flag(
            "--lr",
            "Adam learning rate of the deformator and the reconstructor.",
            low=0,
            low_open=True,
            recommended=True,
        ),
    )
    eps_max: float = _setting(
        defaults.EPS_MAX,
        RESULT,
        Flag(
            "--eps-max",
            "Shift magnitudes are drawn from U[-eps-max, eps-max] ...",
            low=0,
            low_open=True,
            recommended=True,
        ),
    )
    eps_min: float = _setting(
        defaults.EPS_MIN, RESULT, Flag("--eps-min", "... with |eps| >= eps-min.", low=0)
    )
    seed: int = _setting(defaults.SEED, RESULT, Flag("--seed", "Random seed.", low=0, high=2**63 - 1))
    device: str = _setting("cpu", RUNTIME)
    run_dir: Path | None = _setting(None, RUNTIME)  # noqa: RUF009 (a field() with metadata)
    resume: bool = _setting(False, RUNTIME)
    checkpoint_every: int = _setting(
        defaults.CHECKPOINT_EVERY, SCHEDULE, Flag("--checkpoint-every", "Steps between checkpoints.", low=1)
    )
    log_every: int = _setting(
        defaults.LOG_EVERY, SCHEDULE, Flag("--log-every", "Steps between log lines.", low=1)
    )
    rca_pairs: int = _setting(
        defaults.RCA_PAIRS, SCHEDULE, Flag("--rca-pairs", "Fresh pairs for the final RCA.", low=1)
    )
    reconstructor: str = _setting(
        defaults.RECONSTRUCTOR,
        RESULT,
        Flag(
            "--reconstructor",
            "auto: LeNet up to 64 px, ResNet-18 above; lenet-gn: LeNet without batch "
            "statistics; siamese: sees only the change between the images, one feature per direction.",
            choices=("auto", *defaults.RECONSTRUCTORS),
        ),
    )
    reconstructor_size: int = _setting(
        0,
        RESULT,
        Flag(
            "--reconstructor-size",
            "Side in pixels the reconstructor sees; larger images are resized to it (anti-aliased).",
            low=0,
            unset=str(defaults.RECONSTRUCTOR_SIZE),
        ),
    )  # 0 = defaults.RECONSTRUCTOR_SIZE
    channels_last: bool = _setting(
        True,
        PERFORMANCE,
        Flag("--channels-last", "Channels-last memory format for the convolutions (faster on CPU and GPU)."),
    )
    amp: str = _setting(
        "auto",
        PERFORMANCE,
        Flag(
            "--amp",
            "Mixed precision of generator and reconstructor (auto: bf16 on CUDA, off on CPU); "
            "losses stay fp32.",
            choices=defaults.AMP_MODES,
        ),
    )
    compile: bool = _setting(
        False, PERFORMANCE, Flag("--compile", "torch.compile the reconstructor and the render.")
    )
    grad_checkpoint: bool = _setting(
        False,
        PERFORMANCE,
        Flag(
            "--grad-checkpoint", "Recompute the generator's activations in backward: less memory, more time."
        ),
    )
    reporter: Reporter = field(default_factory=SilentReporter, metadata={"role": RUNTIME})

    @classmethod
    def names(cls, *roles: str) -> tuple[str, ...]:
        """The fields with one of ``roles``, in declaration order."""
        return tuple(f.name for f in fields(cls) if f.metadata["role"] in roles)

    @classmethod
    def flags(cls) -> dict[str, Flag]:
        """``{field: Flag}`` for the fields given on the command line, in declaration order."""
        return {f.name: f.metadata["flag"] for f in fields(cls) if f.metadata.get("flag") is not None}

    @classmethod
    def types(cls, *roles: str) -> dict[str, type]:
        """``{field: type}`` of the fields with one of ``roles`` (the type of each default)."""
        return {f.name: type(f.default) for f in fields(cls) if f.metadata["role"] in roles}

    def _values(self, *roles: str) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.names(*roles)}

    def describe(self) -> dict[str, Any]:
        """The settings that define the result (for metadata and resume checks)."""
        return self._values(RESULT)

    def saved(self) -> dict[str, Any]:
        """What ``run.json`` keeps: every field but the runtime ones."""
        return self._values(RESULT, SCHEDULE, PERFORMANCE)


#: run settings a benchmark ``--variant`` (or a script's ``--param``) may set, and their types: those
#: that define a result, but the seed (the benchmark's grid sets it)
VARIANT_SETTINGS: dict[str, type] = {k: t for k, t in RunSettings.types(RESULT).items() if k != "seed"}


#: the fields a resume may change: the length (not below the checkpoint), the device, and the
#: schedule and performance fields; every other result field must stay as the run was started
RESUMABLE: tuple[str, ...] = ("steps", "device", *RunSettings.names(SCHEDULE, PERFORMANCE))


def resume_differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{field: (saved, now)}`` for the result settings a resume may not change (all but
    :data:`RESUMABLE`) whose value differs: ``saved`` is what the run recorded
    (:meth:`RunSettings.describe`), ``now`` what is asked for."""
    return {k: (saved.get(k), now.get(k)) for k in now if k not in RESUMABLE and saved.get(k) != now.get(k)}
