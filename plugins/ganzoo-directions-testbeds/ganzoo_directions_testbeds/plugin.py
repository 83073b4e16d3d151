"""Entry point of the ganzoo-directions-testbeds plugin."""

from ganzoo_directions.hookspecs import hookimpl

from .dsprites import DSpritesGenerator
from .shapes3d import Shapes3DGenerator


@hookimpl
def register_generators(register):
    register(Shapes3DGenerator)
    register(DSpritesGenerator)
