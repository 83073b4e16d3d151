"""Evaluate a direction set: RCA (the run's reconstructor, and a held-out one), PPL, factor scores.

Results go to ``metrics.json`` in the folder and into the direction file's metadata. Evaluation never
touches the training state: it reads the direction set and the reconstructor, and draws its own
pairs from its own seed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import defaults
from .deformators import sample_magnitudes
from .directions import FILE_NAME, DirectionSet, update_file
from .errors import GanzooError
from .files import atomic_write_text, refuse_cache_write
from .interfaces import GeneratorAdapter
from .metric_table import NAMES, metric
from .metrics import lpips_distance, path_length, reconstructor_accuracy
from .ranking import rank_by_image_change, spearman
from .reconstructors import build_reconstructor, choose_reconstructor, input_size, load_reconstructor
from .runs import METRICS_FILE, generator_for
from .training import adam

# the torchvision ImageNet weights LPIPS's backbones are built from


@dataclass
class EvalOptions:
    metrics: tuple[str, ...] = defaults.EVAL_METRICS
    samples: int = defaults.EVAL_SAMPLES  # pairs for RCA, samples for PPL
    seed: int = defaults.EVAL_SEED
    batch_size: int = defaults.EVAL_BATCH
    ppl_net: str = defaults.PPL_NET
    ppl_delta: float = defaults.PPL_DELTA
    ppl_crop: bool = False  # StyleGAN's face crop before PPL's distance (FFHQ-like generators)
    heldout_steps: int = defaults.HELDOUT_STEPS
    protocol_top: int = 0  # directions the MIG/DCI encoder regresses; 0: one per known factor
    protocol_steps: int = defaults.PROTOCOL_STEPS  # training steps of that encoder
    protocol_images: int = defaults.PROTOCOL_IMAGES  # generated images it trains on (real: 2/5 of it)
    weights: str | None = None  # the user's copy of the generator's weights (checked by fingerprint)
    device: str = "cpu"
    progress: Callable[[str, int], Callable[[int], None]] | None = field(default=None, repr=False)


def train_heldout_reconstructor(
    generator: GeneratorAdapter,
    dset: DirectionSet,
    *,
    steps: int,
    batch_size: int,
    eps_max: float,
    eps_min: float,
    seed: int,
    lr: float = 1e-3,
    progress: Callable[[int], None] | None = None,
    reconstructor_size: int = 0,
) -> torch.nn.Module:
    """A fresh reconstructor trained on the frozen directions (one shift per pair, CE + 0.25 |eps err|):
    a direction set scores here only if its directions are recognisable by themselves."""

    device = generator.device
    torch.manual_seed(seed)
    K = dset.num_directions
    size = input_size(reconstructor_size, generator.image_size)
    kind = choose_reconstructor("auto", size or generator.image_size)
    R = build_reconstructor(kind, K, generator.image_channels, input_size=size).to(device)
    opt = adam(R.parameters(), lr, device)
    rng = torch.Generator(device).manual_seed(seed + 1)
    R.train()
    for _ in range(steps):
        with torch.no_grad():
            z = generator.sample_latents(batch_size, rng)
            k = torch.randint(0, K, (batch_size,), generator=rng, device=device)
            eps = sample_magnitudes((batch_size,), eps_max, eps_min, rng, device)
            x0 = generator.render(z)
            x1 = generator.render_shifted(z, dset.shift(k, eps))
        logits, eps_hat = R(x0, x1)
        loss = F.cross_entropy(logits, k) + 0.25 * (eps_hat - eps).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(1)
    return R.eval()


def evaluate(
    folder: Path, options: EvalOptions, *, generator: GeneratorAdapter | None = None
) -> dict[str, Any]:
    """Compute ``options.metrics`` for the direction set in ``folder`` and record them there."""

    unknown = sorted(set(options.metrics) - set(NAMES))
    if unknown:
        raise GanzooError(f"unknown metrics {unknown}; valid: {', '.join(NAMES)}")
    refuse_cache_write(folder)  # before any work: the results could not be recorded
    dset = DirectionSet.load(folder, device=options.device)
    spec = dset.spec
    hint = "scores are only meaningful on the generator it was made for; use those weights"
    if generator is None:
        generator = generator_for(
            dset, weights=options.weights, device=options.device, hint=hint, where=str(folder)
        )
    else:
        dset.check_generator(generator, hint=hint)
    settings = spec.get("settings", {})
    eps_max = dset.eps_range
    eps_min = float(settings.get("eps_min", defaults.EPS_MIN))
    K = dset.num_directions
    # renders in pieces of the run's training batch (what fit in memory then fits now); draws keep
    # options.batch_size, so the numbers do not depend on it
    render_batch = int(settings.get("batch_size") or options.batch_size)
    results: dict[str, Any] = {"eval_seed": options.seed}
    # what every requested metric needs, before any work (a missing LPIPS backbone fails now, not
    # after an hour of RCA)
    distance = lpips_distance(options.ppl_net, options.device) if "ppl" in options.metrics else None

    def done() -> None:  # each metric is written as it completes: a later failure loses none
        record(folder, dset, results)

    def bar(label: str, total: int) -> Callable[[int], None] | None:
        return options.progress(label, total) if options.progress else None

    def accuracy(R: torch.nn.Module, seed: int, per_direction: bool = False) -> Any:
        return reconstructor_accuracy(
            generator,
            dset.shift,
            R,
            K,
            pairs=options.samples,
            batch_size=options.batch_size,
            eps_max=eps_max,
            eps_min=eps_min,
            seed=seed,
            per_direction=per_direction,
            render_batch=render_batch,
        )

    if "rca" in options.metrics:
        R = load_reconstructor(folder, generator.image_size, generator.image_channels, options.device)
        if R is None:
            results["rca_note"] = (
                "no reconstructor in this folder (closed-form method or a Hub set); see heldout_rca"
            )
        else:
            rca, per_direction = accuracy(R, options.seed, per_direction=True)
            results["rca"] = rca
            results["rca_per_direction"] = per_direction.tolist()
            results.update(rca_pairs=options.samples, rca_chance=1.0 / K)
            done()
    if "heldout_rca" in options.metrics:
        R = train_heldout_reconstructor(
            generator,
            dset,
            steps=options.heldout_steps,
            batch_size=32,
            eps_max=eps_max,
            eps_min=eps_min,
            seed=options.seed,
            progress=bar("held-out reconstructor", options.heldout_steps),
            reconstructor_size=int(settings.get("reconstructor_size") or 0),
        )
        heldout, per_direction = accuracy(R, options.seed + 7, per_direction=True)
        results["heldout_rca"] = heldout
        results["heldout_rca_per_direction"] = per_direction.tolist()
        results.update(heldout_rca_steps=options.heldout_steps, rca_chance=1.0 / K)
        done()
    if distance is not None:
        distance, label = distance
        results.update(
            path_length(
                generator,
                dset.shift,
                K,
                distance,
                samples=options.samples,
                delta=options.ppl_delta,
                eps_max=eps_max,
                batch_size=options.batch_size,
                seed=options.seed,
                progress=bar("PPL", options.samples),
                render_batch=render_batch,
                crop=options.ppl_crop,
            )
        )
        results["ppl_distance"] = label
        results["ppl_view"] = ("face crop, " if options.ppl_crop else "") + f"at most {defaults.PPL_SIZE} px"
        done()
    if "ranking" not in spec:  # older files and Hub sets: rank them now (the protocol's top-k uses it)
        spec["ranking"] = rank_by_image_change(
            generator, dset, magnitude=eps_max / 2, render_batch=render_batch
        )
    readout = generator.factor_readout() if {"factors", "mig", "dci"} & set(options.metrics) else None
    if "factors" in options.metrics:
        if readout is None:
            results["factors_note"] = (
                f"generator {generator.name!r} has no known factors here (the embedded GANs' are read "
                "by their renderers' plugins: the generator plugin's [factors] extra installs them)"
            )
        else:
            from .factors import factor_scores

            results.update(
                factor_scores(
                    generator,
                    dset,
                    readout,
                    samples=min(options.samples, 2048),
                    seed=options.seed,
                    heatmap=folder / "factors.png",
                )
            )
            results.update(ranking_agreement(spec, {**dset.metrics, **results}))
            done()
    if {"mig", "dci"} & set(options.metrics):
        if readout is None or readout.labelled is None:
            results["protocol_note"] = f"generator {generator.name!r} has no labelled real images"
        else:
            from .mig_dci import protocol_scores

            top = options.protocol_top or len(readout.names)
            scores = protocol_scores(
                generator,
                dset,
                readout,
                directions=spec["ranking"]["order"][:top],
                steps=options.protocol_steps,
                train_images=options.protocol_images,
                real_images=max(200, options.protocol_images * 2 // 5),
                seed=options.seed,
                progress=bar("MIG/DCI encoder", options.protocol_steps),
            )
            results.update(scores)
    record(folder, dset, results)
    return results


def ranking_agreement(spec: dict[str, Any], metrics: dict[str, Any]) -> dict[str, float]:
    """Spearman correlations between each ranking a set has (its stored image-change ranking; the
    reconstructor's per-direction RCA) and the ground truth: each direction's total squared effect on
    the true factors (``factor_effects``)."""

    effects = metrics.get("factor_effects")
    if effects is None:
        return {}
    truth = torch.tensor(effects).square().sum(1)  # (K,)
    found: dict[str, float] = {}
    ranking = spec.get("ranking")
    if ranking is not None and len(ranking["scores"]) == len(truth):
        found[f"ranking_spearman_{ranking['by']}"] = spearman(torch.tensor(ranking["scores"]), truth)
    per_direction = metrics.get("rca_per_direction")
    if per_direction is not None and len(per_direction) == len(truth):
        found["ranking_spearman_rca"] = spearman(torch.tensor(per_direction), truth)
    return found


def record(folder: Path, dset: DirectionSet, results: dict[str, Any]) -> None:
    """Merge ``results`` into the direction file's metadata, then into ``metrics.json`` (each
    atomically; in this order, so a failure between the two leaves no metrics.json claiming scores
    the set does not hold). The file is re-read under the label lock (:func:`update_file`): labels
    saved while an evaluation ran are kept. A ranking this evaluation computed for a set without one
    is stored too."""

    def merge(on_disk: DirectionSet) -> None:
        on_disk.metrics.update(results)
        if "ranking" not in on_disk.spec and "ranking" in dset.spec:
            on_disk.spec["ranking"] = dset.spec["ranking"]

    update_file(folder / FILE_NAME, merge)
    dset.metrics.update(results)
    path = folder / METRICS_FILE
    existing = json.loads(path.read_text()) if path.is_file() else {}
    existing.update(results)
    atomic_write_text(path, json.dumps(existing, indent=2, sort_keys=True) + os.linesep)


def recorded_metrics(folder: Path, heldout_steps: int | None = None) -> list[str]:
    """The metrics (``--metrics`` names) ``folder/metrics.json`` holds, or says why it cannot. With
    ``heldout_steps``, a held-out RCA measured with another reconstructor budget does not count."""
    path = folder / METRICS_FILE
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    if heldout_steps is not None and recorded.get("heldout_rca_steps", heldout_steps) != heldout_steps:
        recorded.pop("heldout_rca", None)
    return [name for name in NAMES if metric(name).recorded_in(recorded)]
