"""The module the entry point names: one hook implementation per kind of thing the plugin adds."""

from ganzoo_directions.hookspecs import hookimpl

from .blobs import BlobsGenerator
from .jacobian import JacobianSVD


@hookimpl
def register_generators(register):
    register(BlobsGenerator)


@hookimpl
def register_direction_methods(register):
    register(JacobianSVD)
