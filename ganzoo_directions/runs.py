"""Discovery runs: build the generator and method by name, train, and write the run folder.

A run folder holds:

``run.json``                what was asked (generator, method, their settings, shared settings)
``checkpoint.pt``           the training state (resume); plain tensors, loaded with weights_only=True
``log.jsonl``               one JSON line per log step: losses, running RCA, steps/s
``directions.safetensors``  the direction set (see :mod:`ganzoo_directions.directions`)
``reconstructor.safetensors`` the trained reconstructor, when the method has one
``traversal.png``           a picture of the directions
``.lock``                   held (an OS lock) by the process running the run; names its pid

The lifecycle lives here: :class:`RunFolder` claims a folder for one process (lock, stray temporary
files removed, fresh or resumable), :func:`resume_request` reconciles a resume with the flags given,
and :func:`execute` trains, or finishes only what is missing from a run whose training is complete.
docs/reliability.md lists the guarantees and the tests that hold them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import shlex
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from . import __version__, defaults, pretrained
from .directions import FILE_NAME, DirectionSet
from .errors import CheckpointError, GanzooError, HubError, PluginBehaviourError, RunFolderError
from .files import RUN_FILE, TEMPORARY_SUFFIX, atomic_write_text, describe_os_error
from .interfaces import DirectionMethod, DiscoveryResult, GeneratorAdapter, images_problem, result_problem
from .metrics import factor_alignment, reconstructor_accuracy
from .plugins import get_registry
from .ranking import rank_by_image_change, ranking_record
from .reconstructors import RECONSTRUCTOR_FILE, save_reconstructor
from .safe_text import has_control, plain
from .settings import RESULT, RESUMABLE, RunSettings
from .training import CHECKPOINT_NAME, LOG_NAME, TrainedMethod, distributed_context, join_process_group
from .traversal import save_traversal

TRAVERSAL_FILE = "traversal.png"
METRICS_FILE = "metrics.json"  # what `zoo-dirs evaluate` measured (the benchmark's "done" marker)
LOCK_FILE = ".lock"


def busy_cores(proc_loadavg: Path = Path("/proc/loadavg")) -> float | None:
    """How many cores other processes keep busy: the one-minute load average, or fewer when fewer
    processes are running right now (Linux's /proc/loadavg; the average lags a minute behind a load
    that just ended); ``None`` where the system has no load average."""
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    try:
        running = int(proc_loadavg.read_text().split()[3].split("/")[0])  # this process included
    except (OSError, ValueError, IndexError):
        return busy
    return min(busy, max(0, running - 1))


def pick_threads(device: str) -> tuple[int, int] | None:
    """On the CPU, unless ``OMP_NUM_THREADS`` says otherwise: as many torch threads as the cores other
    processes leave free (:func:`busy_cores`), at least one. More threads than free cores
    measured 2.4x slower and 3.4x the CPU time (docs/performance.md). Returns ``(threads, cores)``
    when it chose fewer threads than cores, else ``None``."""
    if not device.startswith("cpu") or os.environ.get("OMP_NUM_THREADS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = busy_cores()
    if busy is None:
        return None
    threads = max(1, min(cores, round(cores - busy)))
    torch.set_num_threads(threads)
    return (threads, cores) if threads < cores else None


def join_processes(device: str, run_dir: Path | None) -> tuple[str, int, str | None]:
    """Where this process trains: under torchrun it joins the process group (one GPU per local rank)
    and needs ``run_dir`` (all ranks share it); on the CPU it takes the cores other processes leave
    free. Returns the device, this process's rank and a note for the user (or ``None``)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun
        if run_dir is None:
            raise GanzooError("data-parallel runs need --out (all ranks share the folder)")
        device, rank = join_process_group(device)
        return device, rank, None
    threads = pick_threads(device)
    if threads is None:
        return device, 0, None
    busy = threads[1] - threads[0]
    return (
        device,
        0,
        f"{busy} of the {threads[1]} cores {'is' if busy == 1 else 'are'} busy with other processes: "
        f"training with {threads[0]} thread{'s' if threads[0] > 1 else ''} (OMP_NUM_THREADS sets it)",
    )


#: the device types a run may ask for (``meta`` computes nothing; others are not supported)
DEVICE_KINDS = ("cpu", "cuda", "mps")


def pick_device(requested: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; a name torch does not know is an error."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(requested).type
    except (RuntimeError, ValueError):
        kind = None
    if kind not in DEVICE_KINDS:
        raise GanzooError(f"unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps")
    if kind == "cuda" and not torch.cuda.is_available():
        raise GanzooError("--device cuda was asked for, but torch sees no CUDA device")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise GanzooError("--device mps was asked for, but this torch has no Apple-GPU (MPS) support here")
    return requested


RANDOM_WEIGHTS_SEED = 0  # --random-weights: the untrained model is the same in every process

#: the smallest value a method may recommend for each numeric setting (its type is the field's)
RECOMMENDED_MINIMA = {"num_directions": 1, "steps": 1, "batch_size": 2, "lr": 0.0, "eps_max": 0.0}


def recommended_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` as a method's recommended setting ``name``, or ``None``: the
    field's type (an int for an int setting), finite, above :data:`RECOMMENDED_MINIMA` (strictly
    for lr and eps_max), eps_min not negative."""
    expected = {f.name: f.type for f in fields(RunSettings)}.get(name)
    if expected in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int if expected == "int" else int | float):
            return f"must be {'an integer' if expected == 'int' else 'a number'}"
        if not math.isfinite(value):
            return "must be finite"
        low = RECOMMENDED_MINIMA.get(name, 0)
        if value < low or (value == low and name in ("lr", "eps_max")):
            return f"must be {'above' if name in ('lr', 'eps_max') else 'at least'} {low:g}"
    elif expected == "str" and not isinstance(value, str):
        return "must be text"
    return None


def build_generator(
    name: str,
    *,
    weights: str | None = None,
    options: dict[str, Any] | None = None,
    device: str = "cpu",
    random_weights: bool = False,
) -> GeneratorAdapter:
    """The registered generator ``name``, built, frozen and moved to ``device``.

    ``weights`` is a registered checkpoint's name, a path or an ``hf:`` reference; a family that
    would otherwise be randomly initialised gets its default checkpoint or a one-line refusal,
    unless ``random_weights`` asks for an untrained model (:func:`ganzoo_directions.pretrained.choose`).
    """
    registered = get_registry().generator(name)
    cls = registered.cls
    choice = pretrained.choose(cls, weights, random_weights=random_weights)
    try:
        # random weights are drawn from a fixed seed: the same untrained model in every process, so a
        # set made on it can be traversed, explored and evaluated later (its fingerprint matches)
        with torch.random.fork_rng(devices=[]):
            if choice.random:
                torch.manual_seed(RANDOM_WEIGHTS_SEED)
            generator = cls(weights=choice.source, **{**choice.options, **(options or {})})
    except GanzooError as exc:
        same_kind = type(exc) if type(exc) in (GanzooError, CheckpointError, HubError) else GanzooError
        if choice.entry is not None:  # a registered checkpoint that could not be fetched
            raise same_kind(f"{exc} (or: {pretrained.how_to_give(cls)})") from None
        if choice.source is not None and "no such file" in str(exc) and not Path(choice.source).exists():
            raise same_kind(f"{exc}; give the weights as {pretrained.how_to_give(cls)}") from None
        raise
    except (TypeError, ValueError) as exc:
        raise GanzooError(f"generator {name!r}: {exc}") from None
    except (AttributeError, KeyError, IndexError, NotImplementedError) as exc:  # a bug in the plugin
        raise PluginBehaviourError(
            f"generator {name!r} from {registered.plugin.label} failed to build: "
            f"{type(exc).__name__}: {exc} (its author's check_generator test shows where)"
        ) from None
    pretrained.verify(generator, choice)
    generator.requires_grad_(False).eval()
    generator = generator.to(device)
    with torch.no_grad():  # one render: a plugin that breaks the contract is named before any work
        z = generator.sample_latents(1, torch.Generator(generator.device).manual_seed(0))  # (1, D)
        problem = images_problem(generator.render(z), 1, generator.image_channels, generator.image_size)
    if problem:
        raise PluginBehaviourError(f"generator {name!r} from {registered.plugin.label}: {problem}")
    return generator


def generator_for(
    dset: DirectionSet,
    *,
    weights: str | None = None,
    device: str = "cpu",
    allow_mismatch: bool = False,
    hint: str = "pass --allow-mismatch to apply it anyway",
    where: str = "",
) -> GeneratorAdapter:
    """The generator ``dset`` was made for (its recorded name, options and weights, or ``weights``
    instead: the user's copy, checked against the recorded fingerprint), built and checked against
    the set (:meth:`DirectionSet.check_generator`). An unknown generator name says which plugin
    distribution made the set; recorded weights that are not there say how to point at a copy."""
    made_for = dset.spec.get("generator", {})
    if "name" not in made_for:
        raise GanzooError(
            f"{where or 'the set'}: the direction set does not say which generator it was made for"
        )
    registry = get_registry()
    if made_for["name"] not in registry.generators:
        raise GanzooError(
            f"{where or 'the set'} was made for generator {plain(made_for['name'])!r}, which is not "
            f"installed; {_install_advice(made_for['name'], dset.spec.get('plugins', []))}"
        )
    recorded = made_for.get("weights")
    local = recorded is not None and not recorded.startswith("hf:") and "/" in recorded
    if weights is None and local and not Path(recorded).exists():
        raise CheckpointError(
            f"{where or 'the set'} was made with the generator weights {recorded}, which are not there; "
            "pass --weights PATH to your copy (checked against the fingerprint the set records)"
        )
    cls = registry.generator(made_for["name"]).cls
    generator = build_generator(
        made_for["name"],
        weights=weights or recorded,
        options=made_for.get("options"),
        device=device,
        random_weights=weights is None and recorded is None and cls.needs_weights,
    )
    dset.check_generator(generator, allow_mismatch=allow_mismatch, hint=hint)
    return generator


def build_method(name: str, params: dict[str, Any] | None = None) -> DirectionMethod:
    """The registered method ``name`` with hyper-parameters ``params``; a trained method started from
    a closed-form one (``-p init=METHOD``) gets that method built (an unknown name lists the valid)."""
    method = get_registry().method(name).cls(**(params or {}))
    start = method.starts_from() if isinstance(method, TrainedMethod) else None
    if start is not None:
        method.set_start(get_registry().method(start).cls())
    return method


@dataclass
class RunRequest:
    """Everything that defines a discovery run (saved as ``run.json``)."""

    generator: str
    method: str
    generator_options: dict[str, Any]
    weights: str | None
    params: dict[str, Any]
    settings: RunSettings
    #: settings fields the user chose; the others may take the method's recommendation (not saved:
    #: run.json records the values used, and a resumed run keeps them all)
    given: frozenset[str] = frozenset()
    #: the user asked for an untrained generator (``--random-weights``); recorded in run.json
    random_weights: bool = False
    #: a resume of a run that trained nothing yet, with these settings changed ("--batch 8 (the run
    #: has 32)"): it starts again from step 0 with them
    changed: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {
                "generator": self.generator,
                "method": self.method,
                "generator_options": self.generator_options,
                "weights": self.weights,
                "random_weights": self.random_weights,
                "params": self.params,
                "settings": self.settings.saved(),
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
            known = {f.name for f in fields(RunSettings)}
            newer = sorted(set(data["settings"]) - known)
            if newer:
                raise RunFolderError(
                    f"{path} was written by a newer ganzoo-directions (settings {', '.join(newer)} are "
                    f"unknown to {__version__}): upgrade ganzoo-directions to resume or read this run"
                )
            settings = RunSettings(**data["settings"], run_dir=run_dir)
            return cls(
                data["generator"],
                data["method"],
                data["generator_options"],
                data["weights"],
                data["params"],
                settings,
                random_weights=bool(data.get("random_weights", False)),
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


class RunFolder:
    """One run folder and its life: claimed by one process at a time, never clobbered.

    ``claim(resume=...)`` is a context manager held for the whole run: it creates a fresh folder (or
    checks that a resumed one is a run), takes an OS-level lock on ``.lock`` (a second process is
    refused with the holder's pid; a lock left by a dead process is taken over, with a message),
    and removes the ``.*.tmp`` files a killed atomic write left behind. A fresh run that fails
    before writing anything leaves no folder behind.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    # -- what is in it ----------------------------------------------------------------------------
    def contents(self) -> list[Path]:
        """Files and folders in it, except the lock and stray temporary files."""
        if not self.path.is_dir():
            return []
        return [p for p in self.path.iterdir() if p.name != LOCK_FILE and not _is_stray_temporary(p)]

    def is_run(self) -> bool:
        return (self.path / RUN_FILE).is_file()

    def checkpoint_step(self) -> int | None:
        """The step of the saved checkpoint, or ``None`` without one."""
        path = self.path / CHECKPOINT_NAME
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # reads "step" only
            return int(state["step"])
        except Exception as exc:  # a damaged file: say so, never unpickle anything
            raise RunFolderError(f"{path} is damaged ({type(exc).__name__}); remove it to restart") from None

    def how_to_continue(self) -> str:
        """One line saying how to go on from this folder's state (after an interruption)."""
        command = f"zoo-dirs discover --resume --out {quote(self.path)}"
        step = self.checkpoint_step() if self.is_run() else None
        if step is not None:
            return f"checkpoint saved at step {step}; continue with\n  {command}"
        if self.is_run():
            return f"interrupted before the first checkpoint; start it again from step 0 with\n  {command}"
        return "interrupted before the run started; nothing was saved"

    # -- claiming it ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def claim(self, *, resume: bool, message: Any = None) -> Iterator[RunFolder]:
        """Hold the folder for one run (see the class docstring); ``message(text)`` reports notes."""
        existed = self.path.exists()
        if resume:
            if not self.is_run():
                raise RunFolderError(
                    f"cannot resume: {self.path} is not a run folder (no {RUN_FILE})"
                    + ("; it holds no run, so start it fresh without --resume" if not self.contents() else "")
                )
        else:
            self._check_fresh()
            _make_dirs(self.path)
        try:
            with self._lock(message):
                if not resume:
                    self._check_fresh()  # someone may have finished a run here while we waited
                for stray in self.path.iterdir():
                    if _is_stray_temporary(stray):
                        stray.unlink(missing_ok=True)
                yield self
        except BaseException:
            if not resume and not existed and not self.contents():
                with contextlib.suppress(OSError):
                    (self.path / LOCK_FILE).unlink(missing_ok=True)
                    self.path.rmdir()  # the folder we made; nothing was written into it
            raise

    def _check_fresh(self) -> None:
        if has_control(self.path):
            raise RunFolderError(
                f"--out {str(self.path)!r} holds a control character (a line break?): the commands "
                "printed for the run could not be pasted; choose another name"
            )
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"--out {self.path} is a file, not a folder")
        if self.contents():
            what = "a run" if self.is_run() else "other files"
            hint = "pass --resume to continue that run" if self.is_run() else "empty it"
            raise RunFolderError(f"{self.path} already holds {what}; {hint}, or choose another --out")

    @contextlib.contextmanager
    def _lock(self, message: Any) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # no POSIX locks (Windows): run unlocked
            yield
            return
        path = self.path / LOCK_FILE
        try:  # never through a link: a planted .lock -> FILE would be emptied below
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            if path.is_symlink():
                raise RunFolderError(f"{path} is a symbolic link, not a lock file; remove it") from None
            raise RunFolderError(f"cannot use {self.path}: {exc.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RunFolderError(f"{path} is not a regular file; remove it")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise RunFolderError(
                    f"{self.path} is in use by another run (process {holder}); wait for it to finish, "
                    "or choose another --out"
                ) from None
            previous = os.pread(fd, 64, 0).decode(errors="replace").strip()
            if previous and previous != str(os.getpid()) and message is not None:
                message(f"note: took over the lock of process {previous}, which is no longer running")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)  # released cleanly: no stale pid left behind
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _is_stray_temporary(path: Path) -> bool:
    """A ``.NAME.XXXX.ganzoo.tmp`` file of :func:`ganzoo_directions.files.atomic_write` whose writer
    died (a user's own ``.*.tmp`` files are not this project's to remove)."""
    return path.name.startswith(".") and path.name.endswith(TEMPORARY_SUFFIX) and path.is_file()


def _make_dirs(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create the run folder {path}: {describe_os_error(exc)}") from None


#: what a distribution name looks like (PEP 508); anything else from a file is not shown as one
DISTRIBUTION_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")


def _install_advice(generator: str, recorded: list[str]) -> str:
    """How to get a generator a set was made for. An install command names only a first-party
    distribution (:data:`plugins.FIRST_PARTY`); the plugins a file records are untrusted: shown as
    names to look up, never as a command (a crafted set could name any package or index URL)."""
    from .plugins import FIRST_PARTY

    if generator in FIRST_PARTY:
        return f"pip install {FIRST_PARTY[generator]}"
    names = [name for name in recorded if DISTRIBUTION_NAME.fullmatch(name)]
    if names:
        return (
            f"the set says it was made with the plugin distribution(s) {', '.join(names)}: names from the "
            "file, not checked; find the plugin and what it is before installing it"
        )
    return "install the plugin that provides it (zoo-dirs plugins lists the installed ones)"


def quote(path: Path | str) -> str:
    """``path`` quoted for a POSIX shell where it needs it (spaces, unicode, quotes), and never read
    as an option (``-x`` is written ``./-x``)."""
    text = str(path)
    if text.startswith("-"):
        text = f"./{text}"
    return shlex.quote(text)  # unchanged when safe; quotes spaces, quotes and non-ASCII


def run_request(
    generator: str | None,
    method: str | None,
    generator_options: dict[str, str],
    weights: str | None,
    params: dict[str, str],
    settings: RunSettings,
    random_weights: bool = False,
    *,
    given: Mapping[str, tuple[str, Any]],
    resume: bool = False,
) -> RunRequest:
    """The request ``zoo-dirs discover`` runs: with ``resume``, the one saved in ``settings.run_dir``
    with the flags ``given`` reconciled (:func:`resume_request`); else a new one (the default
    generator and method where none is named, ``runs/<gen>-<method>-<time>`` where no folder is), in
    which the settings not ``given`` are left to the method's recommendations."""
    if resume:
        if settings.run_dir is None:
            raise GanzooError("--resume needs --out RUN_DIR")
        return resume_request(settings.run_dir, given)
    generator, method = generator or defaults.GENERATOR, method or defaults.METHOD
    settings.run_dir = settings.run_dir or default_run_dir(generator, method)
    return RunRequest(
        generator, method, generator_options, weights, params, settings, frozenset(given), random_weights
    )


def resume_request(run_dir: Path, given: Mapping[str, tuple[str, Any]]) -> RunRequest:
    """The saved request of ``run_dir`` for a resume, with the flags the user gave reconciled.

    ``given`` maps a request or settings field (``generator``, ``method``, ``generator_options``,
    ``weights``, ``params``, or a :class:`RunSettings` field) to ``(flag, value)``, for the flags
    given on the command line only. Fields in :data:`RESUMABLE` take the new value
    (``steps`` not below the checkpoint's step); any other field that differs from the run is
    refused, naming each.
    """
    request = RunRequest.from_folder(run_dir)
    differences = []
    for key, (flag, value) in given.items():
        if key in RESUMABLE:
            continue
        saved = _saved_value(request, key)
        if key == "params":
            declared = get_registry().method(request.method).cls.hyperparameters
            differences += _option_differences(
                flag, declared, value, saved, what=f"method {request.method!r}"
            )
        elif key == "generator_options":
            declared = get_registry().generator(request.generator).cls.options
            differences += _option_differences(
                flag, declared, value, saved, what=f"generator {request.generator!r}"
            )
        elif value != saved:
            differences.append(f"{flag} {value} (the run has {saved})")
    if differences and _trained_nothing(run_dir):
        # stopped before its first checkpoint (out of memory at the first step?): nothing depends on
        # the old settings, so the run starts again with the ones given now
        for key, (_, value) in given.items():
            if key in ("params", "generator_options"):  # -p / -g given now add to the run's
                value = {**getattr(request, key), **value}
            setattr(request if key in REQUEST_FIELDS else request.settings, key, value)
        request.changed = differences
    elif differences:
        raise RunFolderError(
            f"cannot resume {run_dir} with other settings: "
            + "; ".join(differences)
            + ". Leave them out to continue the run as it was started, or start a new run"
        )
    settings = request.settings
    if "steps" in given:
        flag, steps = given["steps"]
        done = RunFolder(run_dir).checkpoint_step()
        if done is not None and steps < done:
            raise RunFolderError(
                f"{flag} {steps} is fewer than the {done} steps {run_dir} has already trained; a run "
                f"cannot be shortened (leave {flag} out to finish it at {settings.steps} steps)"
            )
    for key in RESUMABLE:
        if key in given:
            setattr(settings, key, given[key][1])
    settings.resume = True
    return request


def _trained_nothing(run_dir: Path) -> bool:
    """Whether a run folder holds nothing trained: no checkpoint and no direction set."""
    return RunFolder(run_dir).checkpoint_step() is None and not (run_dir / FILE_NAME).is_file()


#: what a resume's flags may name besides run settings: fields of the request itself
REQUEST_FIELDS = ("generator", "method", "generator_options", "weights", "params", "random_weights")


def _saved_value(request: RunRequest, key: str) -> Any:
    return getattr(request if key in REQUEST_FIELDS else request.settings, key)


def _option_differences(
    flag: str, declared: Mapping[str, Any], given: Mapping[str, Any], saved: Mapping[str, Any], *, what: str
) -> list[str]:
    from .options import parse_options

    new, old = parse_options(declared, given, what=what), parse_options(declared, saved, what=what)
    keys = {name: name.replace("-", "_") for name in given}  # as parse_options spells them
    return [
        f"{flag} {name}={given[name]} (the run has {old[key]})"
        for name, key in keys.items()
        if new[key] != old[key]
    ]


def execute(
    request: RunRequest,
    *,
    rca_pairs: int | None = None,
    device: str = "cpu",
    default_directions: int = defaults.NUM_DIRECTIONS,
) -> RunOutcome | None:
    """Run a discovery end to end and write the run folder (see the module docstring).

    A zero ``num_directions`` means ``default_directions`` capped at the generator's maximum; zero
    ``steps`` means the generator's recommended steps. The folder is claimed for the run
    (:class:`RunFolder`). A resume with no checkpoint yet starts from step 0; a resume of a run
    whose training is complete only writes what is missing (final RCA, direction file, picture).
    Under ``torchrun`` every rank trains and only rank 0 claims, writes and returns the outcome
    (the others return ``None``). ``rca_pairs`` overrides the run's ``settings.rca_pairs``.
    """
    if rca_pairs is not None:
        request.settings.rca_pairs = rca_pairs
    run_dir = Path(request.settings.run_dir) if request.settings.run_dir is not None else None
    if run_dir is None:
        raise RunFolderError("a run needs a run folder")
    # which weights, before a folder is claimed: a run that cannot start leaves nothing behind
    request.weights = pretrained.normalise(request.weights)
    cls = get_registry().generator(request.generator).cls
    pretrained.choose(cls, request.weights, random_weights=request.random_weights)
    rank, _ = distributed_context()
    folder = RunFolder(run_dir)
    claim = (
        folder.claim(resume=request.settings.resume, message=request.settings.reporter.message)
        if rank == 0
        else contextlib.nullcontext(folder)
    )
    with claim:
        return _execute_claimed(folder, request, rank, device, default_directions)


def _execute_claimed(
    folder: RunFolder,
    request: RunRequest,
    rank: int,
    device: str,
    default_directions: int,
) -> RunOutcome | None:
    """The run in its named stages: build, settle the settings, resume or start, train, write."""
    generator = build_generator(
        request.generator,
        weights=request.weights,
        options=request.generator_options,
        device=device,
        random_weights=request.random_weights,
    )
    method = build_method(request.method, request.params)
    if not request.settings.resume:
        _take_recommendations(request, method, generator)
    _fill_defaults(request, method, generator, default_directions)
    if request.settings.resume:
        finished = _resolve_resume(folder, request, generator, rank)
        if finished is not None:
            return finished
    settings = replace(request.settings, device=device)
    result, settings = _train(folder, request, method, generator, settings, rank)
    if result is None:  # data-parallel training: rank 0 evaluates and writes
        return None
    return _write_outputs(folder, request, method, generator, result, settings)


def _plugin_label(request: RunRequest) -> str:
    return get_registry().method(request.method).plugin.label


def _take_recommendations(request: RunRequest, method: DirectionMethod, generator: GeneratorAdapter) -> None:
    """Fill the settings the user did not give from ``method.recommended_settings(generator)``, each
    value checked first, and say which were taken."""
    recommended = method.recommended_settings(generator)
    unknown = set(recommended) - set(RunSettings.names(RESULT))
    if unknown:
        raise GanzooError(f"method {method.name!r} recommends settings that do not exist: {sorted(unknown)}")
    for name, value in recommended.items():
        problem = recommended_problem(name, value)
        if problem:
            raise PluginBehaviourError(
                f"method {method.name!r} from {_plugin_label(request)} recommends {name} {value!r} for "
                f"{generator.name}: {problem}"
            )
    taken = {name: value for name, value in recommended.items() if name not in request.given}
    for name, value in taken.items():
        setattr(request.settings, name, value)
    if taken:
        said = ", ".join(
            f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}"
            for name, value in taken.items()
        )
        request.settings.reporter.message(
            f"{method.name} recommends for {generator.name}: {said} (flags given win)"
        )


def _fill_defaults(
    request: RunRequest, method: DirectionMethod, generator: GeneratorAdapter, default_directions: int
) -> None:
    """K and the steps where neither the user nor the method chose them; closed form trains nothing."""
    settings = request.settings
    if settings.num_directions <= 0:
        settings.num_directions = min(default_directions, generator.max_directions)
    if not method.trained:
        settings.steps = 0  # closed form: no training steps
        settings.resume = False  # nothing to resume: it is computed again
    elif settings.steps <= 0:
        settings.steps = generator.recommended_steps
    if settings.num_directions > generator.max_directions:
        raise GanzooError(
            f"generator {generator.name!r} allows at most {generator.max_directions} directions, "
            f"asked for {settings.num_directions}"
        )


def _resolve_resume(
    folder: RunFolder, request: RunRequest, generator: GeneratorAdapter, rank: int
) -> RunOutcome | None:
    """Where a resumed run stands: the outcome when only its picture was missing; otherwise ``None``,
    with ``settings.resume`` cleared for a run stopped before its first checkpoint (it starts again)."""
    run_dir, settings, reporter = folder.path, request.settings, request.settings.reporter
    step = folder.checkpoint_step()
    finished = _finished_set(run_dir) if step is None else None
    if finished is not None:  # a finished run whose checkpoint.pt was deleted
        if settings.steps > finished:
            raise RunFolderError(
                f"{run_dir} finished {finished} steps but its {CHECKPOINT_NAME} is gone, so it cannot "
                f"train to {settings.steps}; its set is kept as it is (start a new run to train longer)"
            )
        return _finish_traversal(folder, generator, reporter)
    if step is None:  # stopped before its first checkpoint: start again
        with_changes = f" with {'; '.join(request.changed)}" if request.changed else ""
        reporter.message(f"no checkpoint yet: starting the run again from step 0{with_changes}")
        settings.resume = False
        if rank == 0:
            (run_dir / LOG_NAME).unlink(missing_ok=True)
    elif step > settings.steps:
        raise RunFolderError(
            f"the checkpoint in {run_dir} is at step {step}, past the {settings.steps} "
            "steps asked for; a run cannot be shortened"
        )
    elif step == settings.steps and (run_dir / FILE_NAME).is_file():
        return _finish_traversal(folder, generator, reporter)
    return None


def _train(
    folder: RunFolder,
    request: RunRequest,
    method: DirectionMethod,
    generator: GeneratorAdapter,
    settings: RunSettings,
    rank: int,
) -> tuple[DiscoveryResult | None, RunSettings]:
    """Record ``run.json``, run the method, and check what it returned (``None`` on ranks other than
    0). Closed form may return its own count of directions: the settings then say so."""
    if rank == 0:
        text = request.to_json()
        path = folder.path / RUN_FILE
        if not path.is_file() or path.read_text() != text:  # a resume rewrites it only for more steps
            atomic_write_text(path, text)
        if method.trained and not settings.resume:
            note_shift_scale(generator, settings)
    result = method.discover(generator, settings)
    if rank != 0:
        return None, settings
    directions = getattr(result, "directions", None)
    if isinstance(result, DiscoveryResult) and torch.is_tensor(directions) and directions.is_floating_point():
        result.directions = directions.detach().float()  # float64 and half sets are stored as float32
    problem = result_problem(
        result, generator.latent_dim, settings.num_directions if method.trained else None
    )
    if problem:
        raise PluginBehaviourError(
            f"method {method.name!r} from {_plugin_label(request)}: {problem}; nothing was written"
        )
    if not method.trained and len(result.directions) != settings.num_directions:
        settings = replace(settings, num_directions=len(result.directions))  # e.g. one per known factor
    return result, settings


def _write_outputs(
    folder: RunFolder,
    request: RunRequest,
    method: DirectionMethod,
    generator: GeneratorAdapter,
    result: DiscoveryResult,
    settings: RunSettings,
) -> RunOutcome:
    """The final RCA on fresh pairs (and the reconstructor), the set's metadata and ranking, the
    direction file and ``traversal.png``."""
    run_dir, K = folder.path, settings.num_directions
    metrics: dict[str, Any] = dict(result.metrics)
    dset = DirectionSet(result.directions, result.deformator)
    dset.to(settings.device)
    if result.reconstructor is not None:
        metrics["rca"], per_direction = reconstructor_accuracy(
            generator,
            dset.shift,
            result.reconstructor,
            K,
            pairs=settings.rca_pairs,
            eps_max=settings.eps_max,
            eps_min=settings.eps_min,
            per_direction=True,
            render_batch=settings.batch_size,  # what fit in memory during training fits now
        )
        metrics["rca_per_direction"] = per_direction.tolist()
        metrics["rca_pairs"] = settings.rca_pairs
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
            torch.tensor(metrics["rca_per_direction"]), "rca", pairs=settings.rca_pairs
        )
    else:
        dset.spec["ranking"] = rank_by_image_change(
            generator, dset, magnitude=settings.eps_max / 2, render_batch=settings.batch_size
        )
    if settings.resume:
        _carry_over(run_dir, dset, settings.reporter)
    dset.save(run_dir / FILE_NAME)
    traversal = run_dir / TRAVERSAL_FILE
    save_traversal(traversal, generator, dset, magnitude_range=settings.eps_max)
    return RunOutcome(run_dir, dset, traversal)


def _finished_set(run_dir: Path) -> int | None:
    """The steps the run folder's direction set was trained for, when it holds a readable one."""
    path = run_dir / FILE_NAME
    if not path.is_file():
        return None
    try:
        return int(DirectionSet.load(path).spec.get("settings", {}).get("steps", 0))
    except (GanzooError, TypeError, ValueError):
        return None


def _carry_over(run_dir: Path, dset: DirectionSet, reporter: Any) -> None:
    """A resumed run that trained further replaces its set: the labels people gave carry over (the
    directions are the same ones, trained longer), and the evaluation of the shorter run
    (``metrics.json``) is removed, since it no longer describes the set."""
    path = run_dir / FILE_NAME
    if path.is_file():
        try:
            before = DirectionSet.load(path)
        except GanzooError:
            before = None
        if before is not None and before.labels and before.num_directions == dset.num_directions:
            dset.spec["labels"] = dict(before.spec["labels"])
            reporter.message(
                f"kept {len(before.labels)} label(s) of the earlier set: the directions trained further, "
                "look again (zoo-dirs explore)"
            )
    stale = run_dir / METRICS_FILE
    if stale.is_file():
        stale.unlink()
        reporter.message(
            f"removed {METRICS_FILE}: it measured the shorter run (zoo-dirs evaluate measures this one)"
        )


def _finish_traversal(folder: RunFolder, generator: GeneratorAdapter, reporter: Any) -> RunOutcome:
    """A finished run: draw the picture if it is missing; nothing else is touched."""
    dset = DirectionSet.load(folder.path / FILE_NAME, device=generator.device)
    traversal = folder.path / TRAVERSAL_FILE
    if traversal.is_file():
        reporter.message(f"{folder.path} is finished; nothing to do (--steps N trains it longer)")
    else:
        save_traversal(traversal, generator, dset, magnitude_range=dset.eps_range)
        reporter.message(f"{folder.path}: training was complete; drew the missing {TRAVERSAL_FILE}")
    return RunOutcome(folder.path, dset, traversal)


def note_shift_scale(generator: GeneratorAdapter, settings: RunSettings) -> None:
    """Tell the user when the largest shift is longer than the latents' spread around their mean
    (:meth:`GeneratorAdapter.latent_spread`): it leaves where the generator's latents live.

    The paper's eps_max = 6 was set for latents of spread 11-22; on `sngan-sprites` (spread about 4)
    it is 1.5 spreads long. Measured there, a range relative to the spread did not change how
    disentangled the directions are (docs/results.md), so the paper's default stays, with this note.
    """
    spread = generator.latent_spread()
    if settings.eps_max > spread:
        settings.reporter.message(
            f"note: --eps-max {settings.eps_max:g} is {settings.eps_max / spread:.1f}x the spread of "
            f"{generator.name!r}'s latents around their mean ({spread:.1f}), so the largest shifts leave "
            f"the prior and traversals saturate; --eps-max {spread / 2:.1f} keeps them inside "
            "(docs/results.md, shift scale)"
        )
