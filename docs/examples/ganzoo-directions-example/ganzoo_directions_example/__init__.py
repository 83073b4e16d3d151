"""Example ganzoo-directions plugin: the ``blobs`` generator and the ``jacobian-svd`` method."""

from .blobs import BlobsGenerator
from .jacobian import JacobianSVD

__all__ = ["BlobsGenerator", "JacobianSVD"]
