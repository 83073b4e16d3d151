"""The command line's parameter types and the options several commands share, declared once:
seeds, finite floats, plugin names (checked, completed), metric and seed lists, direction lists,
edits and labels, and discover's run-setting options generated from :class:`~.settings.RunSettings`.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import click

from . import defaults
from .errors import GanzooError
from .metric_table import NAMES
from .options import parse_key_values
from .settings import RunSettings

#: every --seed: what torch's generators take (0 .. 2^63 - 1)
SEED = click.IntRange(min=0, max=2**63 - 1)


class FiniteFloatRange(click.FloatRange):
    """A float range that also refuses NaN and infinity (which every comparison lets through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class PluginName(click.ParamType):
    """A generator or method name: checked against the registry, listed on error, completed in shells."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"{kind}"

    def _names(self) -> list[str]:
        from .plugins import get_registry

        registry = get_registry()
        return list(registry.generators if self.kind == "generator" else registry.methods)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from .plugins import get_registry

        try:
            registry = get_registry()
            (registry.generator if self.kind == "generator" else registry.method)(value)
        except GanzooError as exc:  # unknown (the valid names listed), or registered by two plugins
            self.fail(str(exc), param, ctx)
        return value

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
        from click.shell_completion import CompletionItem

        try:
            return [CompletionItem(n) for n in self._names() if n.startswith(incomplete)]
        except GanzooError:
            return []


class MetricList(click.ParamType):
    """``"rca,ppl"`` -> ``("rca", "ppl")``: known metric names (``metric_table.NAMES``), at least one."""

    name = "metrics"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple:
        if isinstance(value, tuple):
            return value
        chosen = tuple(m.strip() for m in str(value).split(",") if m.strip())
        unknown = sorted(set(chosen) - set(NAMES))
        if unknown or not chosen:
            self.fail(f"unknown metrics {unknown}; valid: {', '.join(NAMES)}", param, ctx)
        return chosen


class SeedList(click.ParamType):
    """``"0,1,2"`` -> ``[0, 1, 2]``: seeds as ``--seed`` takes them, at least one."""

    name = "seeds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list:
        if isinstance(value, list):
            return value
        try:
            seeds = [SEED.convert(s.strip(), param, ctx) for s in str(value).split(",") if s.strip()]
        except click.BadParameter:
            seeds = []
        if not seeds:
            self.fail(f"expected comma-separated seeds, e.g. 0,1,2, got {value!r}", param, ctx)
        return seeds


#: options several commands share, declared once
device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (cuda where available, else cpu), cpu, cuda, cuda:N or mps.",
)
allow_mismatch_option = click.option(
    "--allow-mismatch",
    is_flag=True,
    help="Apply the set even if the generator's weights differ from those it was made for.",
)
#: how --help states a setting some methods recommend per generator (orojar-span, the default)
RECOMMENDED = (
    "[default: what the method recommends for the generator where it does (the default method does; "
    "the run prints the values it took); else {plain}]"
)


def recorded_weights(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--weights`` as a run records it: a local path made absolute (the run is read from anywhere)."""
    from .pretrained import normalise

    return normalise(value)


#: commands that measure held-out RCA: the fresh reconstructor's budget
heldout_steps_option = click.option(
    "--heldout-steps",
    type=click.IntRange(min=1),
    default=defaults.HELDOUT_STEPS,
    show_default=True,
    help="Training steps of the held-out reconstructor (heldout_rca). Held-out RCA is a lower bound "
    "set by this budget: raise it where K is large or the changes small (W, K = 16: 0.62 at 2000, "
    "0.87 at 8000).",
)

#: commands that train: which generator weights
weights_option = click.option(
    "--weights",
    default=None,
    callback=recorded_weights,
    help="Generator weights: a registered name (zoo-dirs list), a local file or folder, or "
    "hf:OWNER/NAME/FILE[@REVISION]. [default: the generator's default checkpoint, downloaded into "
    "the Hugging Face cache; generators without one refuse]",
)
random_weights_option = click.option(
    "--random-weights",
    is_flag=True,
    help="Train on an untrained (randomly initialised) generator: for tests and timing only. "
    "Recorded in the run.",
)


def key_values(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    """A repeatable ``KEY=VALUE`` option as a dict (``-g``, ``-p``)."""
    try:
        return parse_key_values(value, flag=param.opts[-1])
    except GanzooError as exc:
        raise click.BadParameter(str(exc)) from None


#: commands that build a generator by name: its options (zoo-dirs list shows each generator's)
gen_options_option = click.option(
    "-g",
    "--gen-option",
    "gen_options",
    multiple=True,
    callback=key_values,
    metavar="KEY=VALUE",
    help="A generator option (repeatable), e.g. -g truncation=0.7; `zoo-dirs list` shows each generator's.",
)
#: commands that read a set: the user's copy of the generator's weights, checked by fingerprint
set_weights_option = click.option(
    "--weights",
    default=None,
    help="Your copy of the generator's weights, if not where the set says (a path, a registered "
    "name or hf:...); checked against the fingerprint the set records.",
)


def setting_option(name: str, help: str | None = None) -> Any:
    """The option of the run setting ``name``, generated from its :class:`~.settings.Flag` (flag name,
    bounds, default, help; ``help`` replaces the help's first part, where a command means the setting
    more narrowly). An ``unset`` setting not given is ``None``; the command passes 0 ("chosen when
    the run starts")."""
    flag = RunSettings.flags()[name]
    default = {f.name: f.default for f in fields(RunSettings)}[name]
    help_text = help or flag.help
    if flag.recommended:
        help_text += " " + RECOMMENDED.format(plain=flag.unset or default)
    elif flag.unset:
        help_text += f" [default: {flag.unset}]"
    if isinstance(default, bool) and default:  # on unless turned off
        return click.option(
            f"{flag.name}/--no-{flag.name[2:]}", name, default=True, show_default=True, help=help_text
        )
    if isinstance(default, bool):
        return click.option(flag.name, name, is_flag=True, help=help_text)
    kind: Any
    if flag.choices is not None:
        kind = click.Choice(flag.choices)
    elif isinstance(default, float):
        kind = FiniteFloatRange(min=flag.low, max=flag.high, min_open=flag.low_open)
    else:
        kind = click.IntRange(min=flag.low, max=flag.high, min_open=flag.low_open)
    shown = not (flag.recommended or flag.unset)
    return click.option(
        flag.name,
        name,
        type=kind,
        default=None if flag.unset else default,
        show_default=shown,
        help=help_text,
    )


def run_setting_options(command: Any) -> Any:
    """discover's option for every run setting that has a :class:`~.settings.Flag`, in declaration
    order (each declared in :class:`~.settings.RunSettings` only)."""
    for name in reversed(RunSettings.flags()):  # decorators apply bottom-up
        command = setting_option(name)(command)
    return command


def parse_direction_list(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> list[int | str] | None:
    """``0,3,zoom`` -> ``[0, 3, "zoom"]``: indices, or labels the set resolves (``DirectionSet.index``)."""
    if value is None:
        return None
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise click.BadParameter("expected comma-separated direction indices or labels, e.g. 0,3,zoom")
    if any(part.lstrip("-").isdigit() and int(part) < 0 for part in parts):
        raise click.BadParameter("expected non-negative direction indices, e.g. 0,3,7")
    return [int(part) if part.isdigit() else part for part in parts]


def parse_edits(ctx: click.Context, param: click.Parameter, value: str) -> list[tuple[int | str, float]]:
    """``"zoom=2,3=-1.5"`` -> ``[("zoom", 2.0), (3, -1.5)]``: directions (labels or indices) and amounts."""
    edits: list[tuple[int | str, float]] = []
    for item in [part.strip() for part in value.split(",") if part.strip()]:
        name, sep, amount = item.rpartition("=")
        try:
            eps = float(amount)
        except ValueError:
            eps = float("nan")
        if not sep or not name.strip() or not math.isfinite(eps):
            raise click.BadParameter(f"expected DIRECTION=AMOUNT, e.g. zoom=2 or 3=-1.5, got {item!r}")
        edits.append((int(name) if name.strip().isdigit() else name.strip(), eps))
    if not edits:
        raise click.BadParameter("expected DIRECTION=AMOUNT[,...], e.g. zoom=2,3=-1.5")
    return edits


def parse_labels(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[int, str]:
    """``("3=zoom", "7=hair colour")`` -> ``{3: "zoom", 7: "hair colour"}``."""
    labels: dict[int, str] = {}
    for item in value:
        index, sep, text = item.partition("=")
        if not sep or not index.strip().isdigit():
            raise click.BadParameter(f"expected INDEX=LABEL, e.g. 3=zoom, got {item!r}")
        labels[int(index)] = text
    return labels
