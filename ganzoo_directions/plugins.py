"""The plugin manager: loads plugins from entry points and builds the registry of names.

Plugins are found through the entry-point group ``ganzoo_directions``; the built-in generators and
methods are plugin distributions too (``plugins/ganzoo-directions-*``), so they take the same road as
a third-party plugin. Set ``GANZOO_DIRECTIONS_PLUGINS`` to a comma-separated list of distribution names
to load only those (an empty value loads none).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginConflictError, PluginLoadError, UnknownNameError

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
ENV_PLUGINS = "GANZOO_DIRECTIONS_PLUGINS"
#: the first-party plugin distribution of each name they register: an unknown name that one of them
#: provides says which to install instead of guessing a close name
FIRST_PARTY = {
    **dict.fromkeys(("sngan", "sngan-sprites", "sngan-dsprites"), "ganzoo-directions-sngan"),
    **dict.fromkeys(("stylegan2", "stylegan2-shapes3d"), "ganzoo-directions-stylegan2"),
    **dict.fromkeys(("biggan", "biggan-deep"), "ganzoo-directions-biggan"),
    "sprites": "ganzoo-directions-sprites",
    **dict.fromkeys(("shapes3d", "dsprites"), "ganzoo-directions-testbeds"),
    **dict.fromkeys(
        (
            "baseline",
            "two-shift",
            "centroid",
            "centroid-ortho",
            "disco",
            "hessian",
            "orojar",
            "orojar-span",
        ),
        "ganzoo-directions-methods",
    ),
    **dict.fromkeys(
        ("sefa", "ganspace", "deepspectral", "random", "axes", "oracle"), "ganzoo-directions-closedform"
    ),
}


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin: its entry-point name and the distribution it comes from."""

    name: str
    distribution: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.version}"


@dataclass(frozen=True)
class Registered:
    """A generator or method class, and the plugin that registered it."""

    name: str
    cls: type
    plugin: PluginInfo


class Registry:
    """Every registered generator and method, by name. A name two plugins registered is in neither
    table but in ``conflicts`` (``"generator:NAME"`` / ``"method:NAME"`` -> the message naming both):
    asking for it says so."""

    def __init__(
        self,
        generators: dict[str, Registered],
        methods: dict[str, Registered],
        conflicts: dict[str, str] | None = None,
    ) -> None:
        self.generators = generators
        self.methods = methods
        self.conflicts = conflicts or {}

    def generator(self, name: str) -> Registered:
        """The generator registered as ``name``; :class:`UnknownNameError` lists the valid ones."""
        try:
            return self.generators[name]
        except KeyError:
            if f"generator:{name}" in self.conflicts:
                raise PluginConflictError(self.conflicts[f"generator:{name}"]) from None
            raise UnknownNameError(
                "generator", name, self.generators, provided_by=FIRST_PARTY.get(name)
            ) from None

    def method(self, name: str) -> Registered:
        """The method registered as ``name``; :class:`UnknownNameError` lists the valid ones."""
        try:
            return self.methods[name]
        except KeyError:
            if f"method:{name}" in self.conflicts:
                raise PluginConflictError(self.conflicts[f"method:{name}"]) from None
            raise UnknownNameError("method", name, self.methods, provided_by=FIRST_PARTY.get(name)) from None

    def listing(self) -> list[dict[str, Any]]:
        """Every generator and method as plain data (``zoo-dirs list --json``): kind, name, summary,
        the distribution and version it comes from, its settings' defaults, and for generators the
        public checkpoints it knows by name."""
        from .pretrained import describe_registry

        rows = []
        for kind, entries in (("generator", self.generators), ("method", self.methods)):
            for name, entry in entries.items():
                declared = entry.cls.options if kind == "generator" else entry.cls.hyperparameters
                row = {
                    "kind": kind,
                    "name": name,
                    "summary": entry.cls.summary,
                    "distribution": entry.plugin.distribution,
                    "version": entry.plugin.version,
                    "settings": {k: opt.default for k, opt in declared.items()},
                }
                if kind == "generator":
                    row["weights"] = describe_registry(entry.cls)
                rows.append(row)
        return rows


def _normalise(dist_name: str) -> str:
    return re.sub(r"[-_.]+", "-", dist_name).lower()


def _selected_distributions() -> set[str] | None:
    value = os.environ.get(ENV_PLUGINS)
    if value is None:
        return None
    return {_normalise(name) for name in value.split(",") if name.strip()}


#: called with one line for each plugin that fails to load (the CLI prints it as a warning)
on_load_failure: Callable[[str], None] | None = None


class PluginHost:
    """A pluggy ``PluginManager`` named ``ganzoo_directions`` plus what it loaded from where."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}  # pluggy plugin name -> info
        self.failures: list[dict[str, str]] = []  # plugins that failed to load, skipped
        self._registry: Registry | None = None

    def load_entry_points(self) -> None:
        """Import and register every plugin announced in the ``ganzoo_directions`` group.

        A plugin that fails to import is skipped: it is recorded in :attr:`failures` and reported
        through :data:`on_load_failure`, and everything that does not need it keeps working."""
        selected = _selected_distributions()
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry_point.dist
            dist_name = dist.metadata["Name"] if dist is not None else "<unknown distribution>"
            version = dist.version if dist is not None else "?"
            if selected is not None and _normalise(dist_name) not in selected:
                continue
            if self.pm.has_plugin(entry_point.name):
                continue
            info = PluginInfo(entry_point.name, dist_name, version)
            try:
                module = entry_point.load()
                self.register(module, info)
            except PluginLoadError as exc:  # our own words: they name the plugin and the fix
                self._fail(info, f"{exc}; skipped it")
            except Exception as exc:
                self._fail(
                    info,
                    f"plugin {entry_point.name!r} from {info.label} failed to load "
                    f"({entry_point.value}): {type(exc).__name__}: {exc}; skipped it",
                )

    def _fail(self, info: PluginInfo, message: str) -> None:
        """Record a plugin that is skipped (``zoo-dirs plugins`` lists it) and report it once."""
        self.failures.append(
            {"name": info.name, "distribution": info.distribution, "version": info.version, "error": message}
        )
        if on_load_failure is not None:
            on_load_failure(message)

    def register(self, plugin: Any, info: PluginInfo) -> None:
        """Register a plugin object (a module, or anything with hook implementations).

        :class:`PluginLoadError` for a hook implementation pluggy would ignore or refuse: one
        without ``@hookimpl``, or named like no hook (with the closest hook's name)."""
        problem = _unmarked_hook(plugin)
        if problem:
            raise PluginLoadError(f"plugin {info.name!r} from {info.label}: {problem}")
        try:
            self.pm.register(plugin, name=info.name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if self.pm.has_plugin(info.name):
                self.pm.unregister(name=info.name)  # check_pending fails after registering it
            raise PluginLoadError(
                f"plugin {info.name!r} from {info.label}: {exc}{_hook_hint(plugin)}"
            ) from exc
        self.plugins[info.name] = info
        self._registry = None

    def registry(self) -> Registry:
        """Call the registration hooks (once) and return the names they registered.

        A plugin whose hook fails (it registers an instance, a class without ``name``, or raises) is
        skipped as one that fails to import is: recorded, reported, the others kept. A name two
        plugins register is refused for both (:attr:`Registry.conflicts`), with both named."""
        if self._registry is None:
            from .interfaces import DirectionMethod, GeneratorAdapter

            conflicts: dict[str, str] = {}
            generators = self._collect("register_generators", GeneratorAdapter, "generator", conflicts)
            methods = self._collect("register_direction_methods", DirectionMethod, "method", conflicts)
            self._registry = Registry(generators, methods, conflicts)
        return self._registry

    def _collect(
        self, hook_name: str, base: type, kind: str, conflicts: dict[str, str]
    ) -> dict[str, Registered]:
        """The ``kind`` classes every plugin's ``hook_name`` registers; names two plugins register go
        to ``conflicts`` (``kind:name`` -> the message) instead."""
        found: dict[str, Registered] = {}
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            info = self.plugins.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "?", "?")
            mine: dict[str, Registered] = {}

            def register(cls: type, _info: PluginInfo = info, mine: dict[str, Registered] = mine) -> None:
                if not (isinstance(cls, type) and issubclass(cls, base)):
                    what = cls.__name__ if isinstance(cls, type) else f"an instance of {type(cls).__name__}"
                    raise PluginLoadError(
                        f"plugin {_info.name!r} from {_info.label} registered {what}, "
                        f"which is not a {base.__name__} subclass (register the class itself)"
                    )
                name = getattr(cls, "name", None)
                if not isinstance(name, str) or not name:
                    raise PluginLoadError(
                        f"plugin {_info.name!r} from {_info.label} registered {cls.__name__} "
                        "without a 'name' class attribute"
                    )
                if name in mine:
                    raise PluginLoadError(
                        f"plugin {_info.name!r} from {_info.label} registered {kind} {name!r} twice"
                    )
                mine[name] = Registered(name, cls, _info)

            others = [p for p in self.pm.get_plugins() if p is not impl.plugin]
            call_one = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
            try:
                call_one(register=register)  # through pluggy: an implementation may take fewer arguments
            except PluginLoadError as exc:
                self._fail(info, f"{exc}; skipped its {kind}s")
                continue
            except Exception as exc:
                self._fail(
                    info,
                    f"plugin {info.name!r} from {info.label} failed in {hook_name}: "
                    f"{type(exc).__name__}: {exc}; skipped its {kind}s",
                )
                continue
            for name, entry in mine.items():
                key = f"{kind}:{name}"
                first = found.pop(name, None)
                if first is None and key not in conflicts:
                    found[name] = entry
                    continue
                if first is not None:
                    conflicts[key] = (
                        f"{kind} {name!r} is registered twice: by {first.plugin.label} "
                        f"(plugin {first.plugin.name!r}) and by {info.label} (plugin {info.name!r}); "
                        f"uninstall one, or choose plugins with {ENV_PLUGINS}"
                    )
                self._fail(info, conflicts[key] + "; neither is used")
        return dict(sorted(found.items()))

    def describe(self) -> list[dict[str, Any]]:
        """The loaded plugins as plain data: name, distribution, version, hooks; then those that failed
        to load, with ``error`` instead of ``hooks``."""
        rows: list[dict[str, Any]] = []
        for name, info in sorted(self.plugins.items()):
            plugin = self.pm.get_plugin(name)
            hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
            rows.append(
                {"name": name, "distribution": info.distribution, "version": info.version, "hooks": hooks}
            )
        return rows + [dict(failure) for failure in self.failures]


def _hook_names() -> list[str]:
    return [name for name in dir(hookspecs) if name.startswith("register_")]


def _closest_hook(name: str, cutoff: float) -> str | None:
    """The hook a ``register...`` name that is no hook was probably meant to be, or ``None``."""
    import difflib

    if not name.startswith("register"):
        return None
    close = difflib.get_close_matches(name, _hook_names(), n=1, cutoff=cutoff)
    return close[0] if close else None


def _unmarked_hook(plugin: Any) -> str | None:
    """What is wrong with a function pluggy would silently skip: a hook's name without ``@hookimpl``,
    or a name close to a hook's that is no hook (``register_generator``)."""
    known = _hook_names()
    marker = f"{hookspecs.PROJECT_NAME}_impl"  # the attribute pluggy's HookimplMarker sets
    for name in dir(plugin):
        function = getattr(plugin, name, None)
        if not callable(function) or isinstance(function, type) or hasattr(function, marker):
            continue
        if name in known:
            return (
                f"{name} has no @hookimpl, so it would never be called "
                "(from ganzoo_directions.hookspecs import hookimpl, and decorate it)"
            )
        close = _closest_hook(name, cutoff=0.85)
        if close:
            return f"{name} is no hook (did you mean {close!r}?)"
    return None


def _hook_hint(plugin: Any) -> str:
    """ " (did you mean 'register_generators'?)" for a hook implementation whose name is a typo."""
    known = _hook_names()
    for name in dir(plugin):
        close = None if name in known else _closest_hook(name, cutoff=0.6)
        if close:
            return f" (did you mean {close!r}?)"
    return ""


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, with entry points loaded on first use."""
    global _host
    if _host is None:
        host = PluginHost()
        host.load_entry_points()
        _host = host
    return _host


def get_registry() -> Registry:
    """The registry of the process-wide host."""
    return get_host().registry()


def reset() -> None:
    """Forget the loaded plugins (tests use it after changing the environment)."""
    global _host
    _host = None
