"""Typed, documented settings of generators (``--gen-option``) and methods (``--param``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import GanzooError, UnknownNameError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}")


@dataclass(frozen=True)
class Option:
    """One setting: its default, a help line, and optionally the allowed choices, bounds or a parser.

    Values given as strings (from the CLI) are parsed with ``parse`` if given, else with the type of
    ``default`` (``bool`` accepts true/false/yes/no/1/0). ``None`` defaults take strings as they are.
    Numbers must be finite (NaN and infinity are refused) and within ``minimum`` / ``maximum``
    (inclusive) where given.
    """

    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    parse: Callable[[str], Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False  # (minimum, maximum] instead of [minimum, maximum]

    def convert(self, value: Any) -> Any:
        if isinstance(value, str):
            if self.parse is not None:
                value = self.parse(value)
            elif isinstance(self.default, bool):
                value = _parse_bool(value)
            elif self.default is not None and not isinstance(self.default, str):
                value = type(self.default)(value)
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(str, self.choices))}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError("must be a finite number")
            if self.minimum is not None and self.exclusive_minimum and value <= self.minimum:
                raise ValueError(f"must be greater than {self.minimum:g}")
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"must be at least {self.minimum:g}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"must be at most {self.maximum:g}")
        return value

    def describe_range(self) -> str:
        """``"[0, 1]"``, ``">= 1"`` or ``""``: the bounds, for help texts."""
        opening = "(" if self.exclusive_minimum else "["
        if self.minimum is not None and self.maximum is not None:
            return f"{opening}{self.minimum:g}, {self.maximum:g}]"
        if self.minimum is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {self.minimum:g}"
        if self.maximum is not None:
            return f"<= {self.maximum:g}"
        return ""


def parse_options(declared: Mapping[str, Option], given: Mapping[str, Any], *, what: str) -> dict[str, Any]:
    """Defaults of ``declared`` overridden by ``given``; unknown names and bad values are errors."""
    values = {name: option.default for name, option in declared.items()}
    for name, raw in given.items():
        key = name.replace("-", "_")
        if key not in declared:
            raise UnknownNameError(f"setting of {what}", name, declared, plural=f"settings of {what}")
        try:
            values[key] = declared[key].convert(raw)
        except (TypeError, ValueError) as exc:
            raise GanzooError(f"{what}: bad value {raw!r} for {key!r}: {exc}") from None
    return values


def parse_key_values(pairs: tuple[str, ...] | list[str], *, flag: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` is an error."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GanzooError(f"{flag} takes KEY=VALUE, got {pair!r}")
        result[key.strip()] = value.strip()
    return result
