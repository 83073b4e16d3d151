"""The plugin hooks of ganzoo-directions.

Every generator and every direction-finding method, the built-in ones included, arrives through these
hooks. A plugin is a module (or object) with functions decorated by :data:`hookimpl`, announced to the
host by an entry point in the group ``ganzoo_directions``::

    [project.entry-points.ganzoo_directions]
    my_plugin = "my_package.plugin"

The marker name, the plugin-manager name and the entry-point group are one string: ``ganzoo_directions``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .interfaces import DirectionMethod, GeneratorAdapter

PROJECT_NAME = "ganzoo_directions"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_generators(register: Callable[[type[GeneratorAdapter]], None]) -> None:
    """Register generator adapters.

    Called once, when the host first needs the list of generators (``zoo-dirs list``, ``--gen``
    lookups). Call ``register(cls)`` once for each :class:`~ganzoo_directions.interfaces.GeneratorAdapter`
    subclass the plugin provides; the class (not an instance) is registered, because building a
    generator may load weights, and that happens only when the user picks it.

    :param register: takes a ``GeneratorAdapter`` subclass whose ``name`` class attribute is the name
        users type after ``--gen``. Registering a name that another plugin already registered is an
        error that names both distributions.
    :return: nothing; the return value is ignored.

    Example::

        @hookimpl
        def register_generators(register):
            register(MyGAN)
    """


@hookspec
def register_direction_methods(register: Callable[[type[DirectionMethod]], None]) -> None:
    """Register direction-finding methods.

    Called once, when the host first needs the list of methods. Call ``register(cls)`` once for each
    :class:`~ganzoo_directions.interfaces.DirectionMethod` subclass the plugin provides. Methods trained
    with the shared loop subclass :class:`~ganzoo_directions.training.TrainedMethod`; closed-form methods
    subclass ``DirectionMethod`` and implement ``discover`` themselves.

    :param register: takes a ``DirectionMethod`` subclass whose ``name`` class attribute is the name
        users type after ``--method``. Duplicate names across plugins are an error naming both
        distributions.
    :return: nothing; the return value is ignored.

    Example::

        @hookimpl
        def register_direction_methods(register):
            register(MyMethod)
    """
