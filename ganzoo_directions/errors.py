"""Errors a user can act on. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GanzooError(Exception):
    """Base of every error caused by user input (names, files, options), not by a bug."""


class UnknownNameError(GanzooError, KeyError):
    """A generator, method or option name that is not registered."""

    def __init__(
        self,
        kind: str,
        name: str,
        valid: Iterable[str],
        *,
        plural: str | None = None,
        provided_by: str | None = None,
    ) -> None:
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        self.plural = plural or f"{kind}s"
        self.provided_by = provided_by  # a known distribution that registers the name, not installed
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.provided_by:
            return (
                f"{self.kind} {self.name!r} comes with the plugin {self.provided_by}, which is not "
                f"installed: pip install {self.provided_by} (from a clone: pip install -e "
                f"plugins/{self.provided_by})"
            )
        text = f"unknown {self.kind} {self.name!r}"
        close = difflib.get_close_matches(self.name, self.valid, n=1, cutoff=0.5)
        if close:
            text += f" (did you mean {close[0]!r}?)"
        valid = ", ".join(self.valid) if self.valid else "none installed"
        return f"{text}; valid {self.plural}: {valid}"


class PluginConflictError(GanzooError):
    """Two plugins registered the same name."""


class PluginLoadError(GanzooError):
    """A plugin failed to import or register."""


class PluginBehaviourError(GanzooError):
    """A plugin's generator or method broke its contract (the message names the distribution)."""


class DirectionFileError(GanzooError):
    """A file that is not a readable direction set, or not one for this generator."""


class CheckpointError(GanzooError):
    """A generator weights file that cannot be read or does not fit the architecture."""


class HubError(GanzooError):
    """A Hub operation failed; the message says why and what to do."""


class RunFolderError(GanzooError):
    """A run folder that cannot be used as asked (exists, missing, incompatible resume)."""


class TrainingDivergedError(GanzooError):
    """Training produced a non-finite loss (a learning rate or shift range too large)."""


#: what allocators say when memory runs out (torch's CPU and CUDA allocators, MPS, the OS)
OUT_OF_MEMORY = ("out of memory", "not enough memory", "can't allocate memory", "failed to allocate")


def out_of_memory(exc: BaseException) -> str | None:
    """For an exception that says memory ran out, what the allocator said, kept short (its "Tried to
    allocate ..." with the size, or the first line); ``None`` for any other exception."""
    import re

    text = str(exc)
    if not isinstance(exc, MemoryError) and not any(m in text.lower() for m in OUT_OF_MEMORY):
        return None
    match = re.search(r"(?:tried to allocate|allocate)\s+[\d.,]+\s*\w*", text, re.IGNORECASE)
    if match:
        return match.group(0)
    return text.splitlines()[0][:200] if text else "MemoryError"
