"""BigGAN generators with the ImageNet class fixed during discovery."""

from .adapter import BigGANDeepGenerator, BigGANGenerator, imagenet_class
from .deep import BigGANDeep, BigGANDeepConfig
from .original import BigGAN, BigGANConfig

__all__ = [
    "BigGAN",
    "BigGANConfig",
    "BigGANDeep",
    "BigGANDeepConfig",
    "BigGANDeepGenerator",
    "BigGANGenerator",
    "imagenet_class",
]
