"""Entry point of the ganzoo-directions-closedform plugin."""

from ganzoo_directions.hookspecs import hookimpl

from .methods import Axes, DeepSpectral, GANSpace, Oracle, Random, SeFa


@hookimpl
def register_direction_methods(register):
    for method in (SeFa, GANSpace, DeepSpectral, Random, Axes, Oracle):
        register(method)
