"""Entry point of the ganzoo-directions-methods plugin."""

from ganzoo_directions.hookspecs import hookimpl

from .disco import DisCo
from .hessian import HessianPenalty, OrthogonalJacobian, OrthogonalJacobianInSpan
from .methods import Baseline, Centroid, CentroidOrtho, TwoShift


@hookimpl
def register_direction_methods(register):
    register(Baseline)
    register(TwoShift)
    register(Centroid)
    register(CentroidOrtho)
    register(DisCo)
    register(HessianPenalty)
    register(OrthogonalJacobian)
    register(OrthogonalJacobianInSpan)
