"""The one table of metrics: each name ``--metrics`` takes, what it records in ``metrics.json``,
and how tables show each score (title, and whether higher is better). ``evaluate``, ``benchmark``,
``compare`` and ``--help`` all read it; no torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import GanzooError


@dataclass(frozen=True)
class Column:
    """One score a metric records, as a table column."""

    key: str  # in metrics.json and the direction file's metadata
    title: str  # its arrow says which way is better


@dataclass(frozen=True)
class Metric:
    """A name ``--metrics`` takes: what it measures, the scores it records, and the key that says
    why it could not be measured on a generator (``note``)."""

    name: str
    help: str
    columns: tuple[Column, ...]
    note: str | None = None

    def recorded_in(self, metrics: Mapping[str, Any]) -> bool:
        """Whether ``metrics`` (a ``metrics.json``) holds this metric's first score, or its note."""
        return self.columns[0].key in metrics or (self.note is not None and self.note in metrics)


#: in table order: the ground truth first (where a generator has it), then the paper's metrics
METRICS: tuple[Metric, ...] = (
    Metric(
        "factors",
        "each direction's effect on the true factors (generators that know them)",
        (
            Column("disentanglement", "factor D↑"),
            Column("completeness", "factor C↑"),
            Column("coverage", "coverage↑"),
        ),
        note="factors_note",
    ),
    Metric(
        "mig",
        "MIG of the encoder protocol on labelled real images",
        (Column("mig", "MIG↑"),),
        "protocol_note",
    ),
    Metric(
        "dci",
        "its DCI",
        (
            Column("dci_disentanglement", "DCI D↑"),
            Column("dci_completeness", "DCI C↑"),
            Column("dci_informativeness", "DCI I (R²)↑"),
        ),
        note="protocol_note",
    ),
    Metric("rca", "the run's reconstructor on fresh pairs", (Column("rca", "RCA↑"),), "rca_note"),
    Metric(
        "heldout_rca",
        "a fresh reconstructor trained on the frozen directions",
        (Column("heldout_rca", "held-out RCA↑"),),
    ),
    Metric(
        "ppl",
        "path length along the directions",
        (Column("ppl", "PPL↓"), Column("ppl_latent", "PPL per latent distance↓")),
    ),
)
#: scores recorded beside the factor score: how well each ranking of the set follows the truth
RANKING_COLUMNS = (
    Column("ranking_spearman_image_change", "ranking ρ (image change)↑"),
    Column("ranking_spearman_rca", "ranking ρ (RCA)↑"),
)
#: every name ``--metrics`` takes
NAMES: tuple[str, ...] = tuple(metric.name for metric in METRICS)
#: every score a table shows, in order: key -> column
COLUMNS: dict[str, Column] = {
    column.key: column for column in (*(c for m in METRICS for c in m.columns), *RANKING_COLUMNS)
}


def metric(name: str) -> Metric:
    """The metric called ``name``; an unknown one lists the valid names."""
    for known in METRICS:
        if known.name == name:
            return known
    raise GanzooError(f"unknown metric {name!r}; valid: {', '.join(NAMES)}")


def help_text() -> str:
    """The metrics as ``--metrics`` help lists them: ``name: what it measures; ...``."""
    return "; ".join(f"{m.name}: {m.help}" for m in METRICS)
