"""Methods beyond the paper that need no training: SeFa, GANSpace, random directions, latent axes."""

from .methods import Axes, GANSpace, Random, SeFa

__all__ = ["Axes", "GANSpace", "Random", "SeFa"]
