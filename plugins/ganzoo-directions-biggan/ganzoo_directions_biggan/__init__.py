"""BigGAN generators with the ImageNet class fixed during discovery."""

from .adapter import BigGANDeepGenerator, imagenet_class
from .deep import BigGANDeep, BigGANDeepConfig

__all__ = ["BigGANDeep", "BigGANDeepConfig", "BigGANDeepGenerator", "imagenet_class"]
