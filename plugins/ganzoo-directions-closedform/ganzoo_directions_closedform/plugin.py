"""Entry point of the ganzoo-directions-closedform plugin."""

from ganzoo_directions.hookspecs import hookimpl

from .methods import Axes, GANSpace, Oracle, Random, SeFa


@hookimpl
def register_direction_methods(register):
    for method in (SeFa, GANSpace, Random, Axes, Oracle):
        register(method)
