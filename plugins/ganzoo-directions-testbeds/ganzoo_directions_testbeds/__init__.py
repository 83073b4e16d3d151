"""Testbeds on the field's ground-truth factor grids: ``shapes3d`` (3D Shapes), ``dsprites`` (dSprites)."""

from .dsprites import DSpritesGenerator
from .grid import GridRenderer
from .shapes3d import Shapes3DGenerator

__all__ = ["DSpritesGenerator", "GridRenderer", "Shapes3DGenerator"]
