"""SNGAN ResNet generators in Voynov & Babenko's checkpoint layout."""

from .adapter import SNGANGenerator
from .model import ARCHITECTURES, ResNetGenerator, ResNetGeneratorConfig

__all__ = ["ARCHITECTURES", "ResNetGenerator", "ResNetGeneratorConfig", "SNGANGenerator"]
