"""The paper's three methods: ``baseline`` (Voynov & Babenko), ``two-shift`` and ``centroid``."""

from .methods import Baseline, Centroid, TwoShift

__all__ = ["Baseline", "Centroid", "TwoShift"]
