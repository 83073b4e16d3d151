"""Entry point of the ganzoo-directions-biggan plugin."""

from ganzoo_directions.hookspecs import hookimpl

from .adapter import BigGANDeepGenerator, BigGANGenerator


@hookimpl
def register_generators(register):
    register(BigGANGenerator)
    register(BigGANDeepGenerator)
