"""ganzoo-directions: unsupervised discovery of interpretable directions in pretrained GANs."""

__version__ = "0.1.0"
