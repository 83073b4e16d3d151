"""The ``sprites`` generator: a differentiable renderer whose factors of variation are known."""

from .sprites import FACTORS, SpritesGenerator

__all__ = ["FACTORS", "SpritesGenerator"]
