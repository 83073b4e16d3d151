"""Entry point of the ganzoo-directions-stylegan2 plugin."""

from ganzoo_directions.hookspecs import hookimpl

from .adapter import StyleGAN2Generator, StyleGAN2Shapes3DGenerator


@hookimpl
def register_generators(register):
    register(StyleGAN2Generator)
    register(StyleGAN2Shapes3DGenerator)
