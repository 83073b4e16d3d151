"""Entry point of the ganzoo-directions-stylegan2 plugin."""

from ganzoo_directions.hookspecs import hookimpl

from .adapter import StyleGAN2Generator


@hookimpl
def register_generators(register):
    register(StyleGAN2Generator)
