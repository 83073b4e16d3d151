"""StyleGAN2 generators in rosinality's checkpoint layout."""

from .adapter import StyleGAN2Generator, parse_layers
from .model import Generator, StyleGAN2Config

__all__ = ["Generator", "StyleGAN2Config", "StyleGAN2Generator", "parse_layers"]
