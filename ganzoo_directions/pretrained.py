"""Which weights a generator is built with: registered public checkpoints, defaults, and no silent noise.

Generator plugins declare the public checkpoints they know (``GeneratorAdapter.pretrained``, a tuple
of :class:`~ganzoo_directions.interfaces.PretrainedWeights`) and which one is their default. Every
place that builds a generator by name (``runs.build_generator``) goes through :func:`choose`:

- ``--weights NAME`` of a registered checkpoint becomes its pinned ``hf:`` reference (downloaded
  through the Hugging Face cache by the adapter, then checked against the registered sha256);
- ``--weights PATH`` is made absolute, so a run made in one folder can be read from any other;
- no ``--weights`` for a family that would otherwise be randomly initialised
  (``GeneratorAdapter.needs_weights``) means the family's default, or one line that lists the names
  and the forms ``--weights`` takes. Random weights only with ``random_weights=True``
  (``--random-weights``), which the run records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CheckpointError, GanzooError
from .interfaces import GeneratorAdapter, PretrainedWeights

HF_PREFIX = "hf:"
#: how --weights may be written, for error messages and --help
FORMS = "a registered name, a local file or folder, or hf:OWNER/NAME/FILE[@REVISION]"


@dataclass(frozen=True)
class WeightsChoice:
    """What a generator will be built with.

    ``source`` is what the adapter receives as ``weights`` (an absolute path, an ``hf:`` reference,
    or ``None``); ``entry`` the registered checkpoint it came from, if any; ``random`` whether the
    model is knowingly built without weights.
    """

    source: str | None
    entry: PretrainedWeights | None = None
    random: bool = False

    @property
    def options(self) -> Mapping[str, Any]:
        """Generator options the registered checkpoint implies (the user's ``-g`` values win)."""
        return self.entry.options if self.entry is not None else {}


def registered(cls: type[GeneratorAdapter]) -> dict[str, PretrainedWeights]:
    """The checkpoints ``cls`` knows, by name."""
    return {entry.name: entry for entry in cls.pretrained}


def normalise(weights: str | None) -> str | None:
    """``weights`` as a run records it: an existing local path made absolute (so the run can be read
    from anywhere); a registered name, an ``hf:`` reference or a missing path unchanged."""
    if weights is None or weights.startswith(HF_PREFIX):
        return weights
    path = Path(weights).expanduser()
    return str(path.resolve()) if path.exists() else weights


def how_to_give(cls: type[GeneratorAdapter]) -> str:
    """The sentence that tells a user how to name weights for ``cls``."""
    names = ", ".join(
        entry.name if entry.source else f"{entry.name}, a manual download from {entry.homepage}"
        for entry in cls.pretrained
    )
    names = names or "none registered"
    return (
        f"--weights NAME (registered: {names}), a local file or folder, or hf:OWNER/NAME/FILE[@REVISION]; "
        "--random-weights for an untrained model (tests, timing)"
    )


def choose(
    cls: type[GeneratorAdapter], weights: str | None, *, random_weights: bool = False
) -> WeightsChoice:
    """Resolve what the user asked for (``--weights``, ``--random-weights``) for generator ``cls``.

    Raises a one-line :class:`GanzooError` when the family would be randomly initialised without
    being asked to, when ``--weights`` names a checkpoint that is not on the Hub (with where to get
    it), and when ``--random-weights`` meets ``--weights`` or a generator that has no random state.
    """
    known = registered(cls)
    if random_weights:
        if weights is not None:
            raise GanzooError("--random-weights and --weights exclude each other: give one")
        if not cls.needs_weights:
            raise GanzooError(
                f"generator {cls.name!r} has no random initialisation to ask for: it is complete "
                "without weights (leave --random-weights out)"
            )
        return WeightsChoice(None, random=True)
    if weights is None:
        if not cls.needs_weights:
            return WeightsChoice(None)
        if cls.default_weights is None:
            raise GanzooError(f"generator {cls.name!r} needs pretrained weights: {how_to_give(cls)}")
        weights = cls.default_weights
    entry = known.get(weights)
    if entry is None:
        return WeightsChoice(normalise(weights))
    if entry.source is None:
        where = f" from {entry.homepage}" if entry.homepage else ""
        raise GanzooError(
            f"{cls.name} weights {entry.name!r} are not on the Hugging Face Hub: download them{where}, "
            "then pass --weights PATH"
        )
    return WeightsChoice(entry.source, entry)


def verify(generator: GeneratorAdapter, choice: WeightsChoice) -> None:
    """Check a generator built from a registered checkpoint against the registered sha256."""
    entry = choice.entry
    if entry is None or entry.sha256 is None:
        return
    if generator.fingerprint != entry.sha256:
        raise CheckpointError(
            f"{generator.name} weights {entry.name!r} ({entry.source}) have sha256 {generator.fingerprint}, "
            f"not the registered {entry.sha256}: the download is damaged or the file was replaced "
            "(delete it from the Hugging Face cache and try again)"
        )


def made_for(
    cls: type[GeneratorAdapter], weights: str | None, fingerprint: str | None
) -> PretrainedWeights | None:
    """The registered checkpoint a direction set was made for: by its recorded ``hf:`` source or by
    the file's sha256 (a set made with a local copy of a registered file)."""
    for entry in cls.pretrained:
        if weights is not None and weights in (entry.source, entry.name):
            return entry
        if fingerprint is not None and entry.sha256 is not None and fingerprint == entry.sha256:
            return entry
    return None


def weights_note(cls: type[GeneratorAdapter], spec: Mapping[str, Any]) -> str:
    """One line on the weights a set was made for (its ``generator`` metadata), and how to get them."""
    weights, fingerprint = spec.get("weights"), spec.get("fingerprint")
    entry = made_for(cls, weights, fingerprint)
    short = (fingerprint or "?")[:12]
    if entry is not None:
        how = (
            f"--weights {entry.name} downloads them"
            if entry.source is not None
            else f"download them from {entry.homepage or 'their homepage'} and pass --weights PATH"
        )
        return f"made for {cls.name} weights {entry.name!r} ({entry.license}; sha256 {short}...): {how}"
    if weights is None:
        if cls.needs_weights:
            return f"made for an untrained {cls.name} (random weights): a test set, not for real images"
        return f"made for {cls.name} (no weights file needed)"
    return (
        f"made for {cls.name} weights {weights} (sha256 {short}...), not a registered checkpoint: "
        "pass --weights PATH to your copy"
    )


def describe_registry(cls: type[GeneratorAdapter]) -> list[dict[str, Any]]:
    """The registered checkpoints of ``cls`` as plain data (``zoo-dirs list --json``)."""
    return [
        {
            "name": entry.name,
            "source": entry.source,
            "sha256": entry.sha256,
            "license": entry.license,
            "summary": entry.summary,
            "homepage": entry.homepage,
            "paper": entry.paper,
            "default": entry.name == cls.default_weights,
            "options": dict(entry.options),
        }
        for entry in cls.pretrained
    ]
