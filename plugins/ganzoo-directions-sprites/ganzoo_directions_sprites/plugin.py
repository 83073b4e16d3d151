"""Entry point of the ganzoo-directions-sprites plugin."""

from ganzoo_directions.hookspecs import hookimpl

from .sprites import SpritesGenerator


@hookimpl
def register_generators(register):
    register(SpritesGenerator)
