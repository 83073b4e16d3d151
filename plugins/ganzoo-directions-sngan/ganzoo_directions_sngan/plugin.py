"""Entry point of the ganzoo-directions-sngan plugin."""

from ganzoo_directions.hookspecs import hookimpl

from .adapter import SNGANDSpritesGenerator, SNGANGenerator, SNGANSpritesGenerator


@hookimpl
def register_generators(register):
    register(SNGANGenerator)
    register(SNGANSpritesGenerator)
    register(SNGANDSpritesGenerator)
