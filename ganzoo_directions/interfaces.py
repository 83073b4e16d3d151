"""The two interfaces plugins implement: :class:`GeneratorAdapter` and :class:`DirectionMethod`.

The core knows no particular GAN and no particular method: it trains, evaluates, saves and draws
through these classes only. Plugins subclass them and register the subclasses through the hooks in
:mod:`ganzoo_directions.hookspecs`.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from . import defaults
from .errors import GanzooError
from .options import Option, parse_options
from .settings import Flag, Reporter, RunSettings

__all__ = [
    "DirectionMethod",
    "DiscoveryResult",
    "FactorReadout",
    "Flag",
    "GeneratorAdapter",
    "KnownFactors",
    "Option",
    "PretrainedWeights",
    "Reporter",
    "RunSettings",
]


@dataclass(frozen=True)
class PretrainedWeights:
    """A public checkpoint a generator plugin knows by name (``--weights NAME``), like timm's tags.

    ``source`` is where the file lives, ``hf:OWNER/NAME/path/in/repo@REVISION`` pinned to a commit
    (downloaded through the Hugging Face cache, with a progress bar, and checked against ``sha256``
    when that is known), or ``None`` for a checkpoint that is published elsewhere only: the user
    fetches it from ``homepage`` and passes its path. ``options`` are the generator options the
    checkpoint implies (a resolution, a class count); the user's ``-g`` values win. ``paper`` marks
    the checkpoint Lu et al. (or Voynov & Babenko, for that family) used.
    """

    name: str
    source: str | None
    summary: str
    license: str
    sha256: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    homepage: str | None = None
    paper: bool = False


@dataclass(frozen=True)
class KnownFactors:
    """Ground-truth factors of variation of a generator whose factors are known (e.g. ``sprites``).

    ``directions`` is ``(F, D)``: row ``i`` is the unit latent direction that changes factor
    ``names[i]`` alone.
    """

    names: tuple[str, ...]
    directions: torch.Tensor  # (F, D)


@dataclass(frozen=True)
class FactorReadout:
    """Reads known factors of variation off images (a regressor trained with labels, for evaluation only).

    ``predict`` maps ``(n, C, H, W)`` images in [-1, 1] to ``(n, F)`` factor values, each scaled to [0, 1]
    over its range (factors are intervals, so no angle wraps around inside a range).

    ``labelled`` (optional) draws *real* images with their true factor values:
    ``labelled(n, rng) -> ((n, C, H, W) images at the generator's size, (n, F) factors in [0, 1])``. The
    field's disentanglement protocol (MIG, DCI; ``zoo-dirs evaluate --metrics mig,dci``) scores an
    encoder on them.

    ``levels`` (optional): the number of values of each factor, for data sets that are a discrete grid
    (3D Shapes, dSprites). Factor ``i`` then takes the values ``0, 1/(levels[i] - 1), ..., 1``, and the
    protocol treats it as disentanglement_lib does: as classes (MIG on the values themselves, DCI with
    classifiers). ``None``: continuous factors (histogram bins, regressors).
    """

    names: tuple[str, ...]
    predict: Callable[[torch.Tensor], torch.Tensor]
    labelled: Callable[[int, torch.Generator | None], tuple[torch.Tensor, torch.Tensor]] | None = None
    levels: tuple[int, ...] | None = None


class _LayerReached(Exception):
    """Ends a render at the layer :meth:`GeneratorAdapter.layer_output` reads."""


class GeneratorAdapter(nn.Module, abc.ABC):
    """A pretrained generator G, seen through the few operations direction discovery needs.

    Subclass it, set the class attributes, implement the abstract members, and register the class
    with the ``register_generators`` hook. The host builds it as ``cls(weights=..., **options)``,
    moves it to a device with ``.to(device)`` and freezes it; it never trains its weights.

    Class attributes:

    ``name``
        What users type after ``--gen`` (lower case, dashes).
    ``summary``
        One line for ``zoo-dirs list``.
    ``options``
        ``{name: Option}``: the generator's settings (class index, truncation, latent space, ...), set
        on the CLI with ``--gen-option KEY=VALUE``. Values arrive parsed in ``self.config``.
    ``latent_spaces``
        The latent spaces directions can live in (``("z",)``, or ``("w", "z")`` for StyleGAN2); the
        one in use is ``self.latent_space``.
    ``recommended_steps``
        Training steps for a useful run; ``zoo-dirs discover`` uses it when ``--steps`` is not given.
    ``takes_weights``
        ``True`` for generators that load pretrained weights from the ``weights`` argument (in
        ``__init__``, with :meth:`load_checked`). The default ``False`` makes the base constructor
        refuse ``--weights``, so a procedural generator never silently records a file it ignored.
    ``needs_weights``
        ``True`` when ``weights=None`` builds a *randomly initialised* model (a family of public
        checkpoints such as BigGAN or StyleGAN2). The host then never builds it without weights
        unless asked (``--random-weights``): it uses ``default_weights`` or refuses in one line.
        Leave it ``False`` for generators that are complete without a file (procedural ones, or
        ones that ship their own weights).
    ``pretrained``
        The public checkpoints this family knows (:class:`PretrainedWeights`), selectable with
        ``--weights NAME`` and listed by ``zoo-dirs list``.
    ``default_weights``
        The name (in ``pretrained``) used when no ``--weights`` is given, or ``None``: no default,
        the user must say which weights.
    ``live_options``
        Names of ``options`` a viewer may change while looking (``zoo-dirs explore`` shows a
        control for each: truncation, a W+ layer range); changing one rebuilds the generator with
        the new value. Options that change the weights or the latent space do not belong here.
    ``feature_layer``
        The module (a name for ``get_submodule``, e.g. ``"net.convs.1"``) whose output methods that
        read an intermediate layer use by default (DeepSpectral's Jacobian); ``None``: the image.

    The latent in all methods below is the space directions are found in (e.g. W for StyleGAN2):
    ``sample_latents`` returns points of that space and ``render`` maps them to images.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = {}
    latent_spaces: ClassVar[tuple[str, ...]] = ("z",)
    recommended_steps: ClassVar[int] = defaults.STEPS
    takes_weights: ClassVar[bool] = False
    needs_weights: ClassVar[bool] = False
    pretrained: ClassVar[tuple[PretrainedWeights, ...]] = ()
    default_weights: ClassVar[str | None] = None
    live_options: ClassVar[tuple[str, ...]] = ()
    feature_layer: ClassVar[str | None] = None

    def __init__(self, weights: str | None = None, **options: Any) -> None:
        super().__init__()
        if weights is not None and not self.takes_weights:
            raise GanzooError(f"generator {self.name!r} takes no weights (got --weights {weights!r})")
        self.weights_source = weights
        self.config: dict[str, Any] = parse_options(self.options, options, what=f"generator {self.name!r}")
        self.latent_space: str = self.latent_spaces[0]
        self._fingerprint: str | None = None

    # -- what the generator is --------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def latent_dim(self) -> int:
        """D, the dimension of the latent space directions live in."""

    @property
    @abc.abstractmethod
    def image_size(self) -> int:
        """Height (= width) in pixels of the images ``render`` returns."""

    image_channels: ClassVar[int] = 3

    @property
    def max_directions(self) -> int:
        """The largest K this generator supports (by default the latent dimension D)."""
        return self.latent_dim

    @property
    def device(self) -> torch.device:
        """Where the generator's tensors live."""
        for tensor in self.state_dict().values():
            return tensor.device
        return torch.device("cpu")

    # -- what the generator does ------------------------------------------------------------------
    @abc.abstractmethod
    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` latents from the generator's prior (in its latent space), on ``self.device``.

        :param n: how many.
        :param generator: a ``torch.Generator`` (on ``self.device``) to draw from, for reproducible
            runs; ``None`` uses the global generator.
        :return: ``(n, D)`` tensor.
        """

    @abc.abstractmethod
    def render(self, latents: torch.Tensor) -> torch.Tensor:
        """Render latents to images.

        Must be differentiable with respect to ``latents`` (gradients flow to the deformator), and
        deterministic: the same latent gives the same image (fix any noise inputs), so that the
        images of one pair differ only by the shift.

        :param latents: ``(n, D)`` points of the latent space, on ``self.device``.
        :return: ``(n, C, H, W)`` images in ``[-1, 1]``.
        """

    def shift_scale_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, D)`` latents whose spread around their mean sets how long shifts are
        (:meth:`latent_spread`: ``centroid-ortho``'s eps_max, the note on long shifts).

        The default is :meth:`sample_latents`. Override it where the sampler narrows what the
        generator was trained on without the generator changing: BigGAN's truncation draws z from a
        shrunken normal, but the generator is smooth over the N(0, I) it saw in training, so shifts
        keep that scale. (StyleGAN's truncation is part of the W the synthesis network is given: its
        spread, around the mean w, follows psi, and the default is right there.)
        """
        return self.sample_latents(n, generator)

    def latent_spread(self, samples: int = 256) -> float:
        """Median distance of :meth:`shift_scale_latents` from their mean (a fixed seed): the latent's
        size as a shift sees it. For N(0, I) in D dimensions about sqrt(D); in StyleGAN's W the
        distance to the mean w, not |w| (which is mostly the mean)."""
        with torch.no_grad():
            draws = self.shift_scale_latents(samples, torch.Generator(self.device).manual_seed(0))
            return float((draws - draws.mean(dim=0)).norm(dim=1).median())

    def render_shifted(self, latents: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """Render ``latents`` moved by ``shifts`` (both ``(n, D)``): what a direction does.

        The default is ``render(latents + shifts)``. Adapters whose shifts act on part of the
        generator only (StyleGAN2 with a W+ layer range) override it. Every place that applies a
        direction (training, RCA, traversals) calls this, never ``render(latents + shifts)`` itself.
        """
        return self.render(latents + shifts)

    def checkpoint_blocks(self, enabled: bool) -> bool:
        """Recompute each synthesis block in the backward pass instead of keeping its activations
        (``--grad-checkpoint``), where the adapter can; returns whether it does. The default ``False``
        makes the trainer checkpoint the whole shifted render instead, which saves little: the
        backward then holds every image's activations at once (docs/performance.md)."""
        return False

    def with_options(self, **changed: Any) -> GeneratorAdapter:
        """This generator with some options changed (the explorer's ``live_options``: truncation, a
        W+ layer range). The default builds a new one from the same weights source (the file is read
        and hashed again); adapters whose live options change no weights override it to share them
        (:meth:`sharing_weights`)."""
        return type(self)(weights=self.weights_source, **{**self.config, **changed})

    def sharing_weights(self, changed: Mapping[str, Any]) -> GeneratorAdapter:
        """A shallow copy that shares this generator's modules, parameters and buffers (nothing is read,
        hashed or copied), with ``changed`` options parsed into its own ``config``; for
        :meth:`with_options` overrides, which then update what they derive from the options."""
        import copy

        clone = copy.copy(self)
        clone._modules, clone._parameters, clone._buffers = (
            dict(self._modules),
            dict(self._parameters),
            dict(self._buffers),
        )
        clone.config = parse_options(
            self.options, {**self.config, **changed}, what=f"generator {self.name!r}"
        )
        return clone

    def load_checked(
        self,
        module: nn.Module,
        path: str | Path,
        state: Mapping[str, torch.Tensor] | None = None,
        *,
        architecture: str,
        aliases: Mapping[str, str] | None = None,
        transform: Callable[[str], str | None] | None = None,
    ) -> None:
        """Load the weights file ``path`` into ``module`` strictly, and record the file's sha256 as
        this generator's :attr:`fingerprint`: the one way an adapter loads weights.

        ``state`` is what :func:`ganzoo_directions.weights.read_weights` read from ``path``, when
        the adapter needed it first (to detect a layout); otherwise the file is read here, safely
        (safetensors, or ``torch.load(weights_only=True)``: nothing is unpickled). A mismatch raises
        one error naming missing, unexpected and mis-shaped keys and the expected ``architecture``.
        ``aliases`` and ``transform`` are those of
        :func:`ganzoo_directions.weights.load_state_dict_checked` (the analogue of timm's
        checkpoint filter function).
        """
        from .weights import load_state_dict_checked, read_weights, sha256_file

        path = Path(path)
        if state is None:
            state = read_weights(path)
        load_state_dict_checked(
            module, state, source=str(path), architecture=architecture, aliases=aliases, transform=transform
        )
        self._fingerprint = sha256_file(path)

    def latent_weights(self) -> torch.Tensor | None:
        """``(N, D)``: the weights that consume the latent directly, one row per output unit, or ``None``.

        Closed-form factorisation (SeFa) takes the top eigenvectors of ``W^T W``. For a generator
        whose first layer is linear in z this is that layer's weight (restricted to the latent's
        columns); for StyleGAN2 in W it is the stacked style-modulation weights of the layers a shift
        acts on. The default ``None`` means "not exposed": SeFa then refuses with a clear error.
        """
        return None

    def early_features(self, latents: torch.Tensor) -> torch.Tensor:
        """``(n, D)`` latents -> ``(n, F)`` early activations, for PCA-based methods (GANSpace).

        The default is the rendered image average-pooled to at most 16 x 16 and flattened; adapters
        override it with their first layer's output (as Härkönen et al. do).
        """
        images = self.render(latents)
        size = min(16, images.shape[-1])
        return torch.nn.functional.adaptive_avg_pool2d(images, size).flatten(1)

    def layer_names(self) -> list[str]:
        """The modules :meth:`layer_output` can read (``get_submodule`` names, in definition order)."""
        return [name for name, _ in self.named_modules() if name]

    def layer_output(self, latents: torch.Tensor, layer: str | None) -> torch.Tensor:
        """``(n, D)`` latents -> ``(n, F)``: the flattened output of module ``layer`` while rendering
        them (``None`` or ``"image"``: the image), differentiable with respect to ``latents``.

        Read with a forward hook on the real render path, so every adapter has it; the render stops
        once the layer has given its output (nothing after it is computed). An unknown name lists
        the valid ones.
        """
        if layer in (None, "image"):
            return self.render(latents).flatten(1)
        names = self.layer_names()
        if layer not in names:
            shown = ", ".join(names[:60]) + (" ..." if len(names) > 60 else "")
            raise GanzooError(f"generator {self.name!r} has no layer {layer!r}; layers: image, {shown}")
        captured: list[torch.Tensor] = []

        def keep(module: nn.Module, inputs: Any, output: Any) -> None:
            captured.append(output[0] if isinstance(output, tuple) else output)
            raise _LayerReached

        handle = self.get_submodule(layer).register_forward_hook(keep)
        try:
            self.render(latents)
        except _LayerReached:
            pass
        finally:
            handle.remove()
        if not captured or not isinstance(captured[0], torch.Tensor):
            raise GanzooError(f"layer {layer!r} of generator {self.name!r} gives no tensor while rendering")
        return captured[0].flatten(1)

    def known_factors(self) -> KnownFactors | None:
        """The true factor directions where they are known (synthetic generators); else ``None``."""
        return None

    def factor_readout(self) -> FactorReadout | None:
        """A way to read the true factors off this generator's images, where one exists (the ``factors``
        metric of ``zoo-dirs evaluate``); else ``None``."""
        return None

    # -- inverting it (zoo-dirs project) ----------------------------------------------------------
    def projection_start(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, D)`` latents a projection (``zoo-dirs project``) starts from: draws of the prior
        for a z space (the projector keeps the best of several per image), the mean latent for
        StyleGAN's W. The default refuses: an adapter opts in to inversion by overriding it."""
        raise GanzooError(
            f"generator {self.name!r} cannot be inverted: its adapter defines no projection_start "
            "(docs/editing.md)"
        )

    def latent_prior_loss(self, latents: torch.Tensor) -> torch.Tensor:
        """``(n,)`` penalty that keeps projected ``(n, D)`` latents where the prior puts its mass.
        Default, for a standard normal z: ``(|z|^2 / D - 1)^2`` (the shell where N(0, I) lives)."""
        return (latents.square().mean(dim=1) - 1).square()

    @property
    def fingerprint(self) -> str:
        """sha256 of the generator's tensors (names, shapes, dtypes and bytes), in hex.

        Recorded in every direction file, so a direction set can be checked against the generator
        it is applied to. Adapters that load a file may override it with the file's hash.
        """
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for key, tensor in sorted(self.state_dict().items()):
                t = tensor.detach().to("cpu").contiguous()
                digest.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
                digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        """What identifies this generator in a direction file's metadata."""
        return {
            "name": self.name,
            "options": self.config,
            "weights": self.weights_source,
            "fingerprint": self.fingerprint,
            "latent_space": self.latent_space,
            "latent_dim": self.latent_dim,
            "image_size": self.image_size,
        }


@dataclass
class DiscoveryResult:
    """What a method returns: the directions, and how to apply them.

    ``directions`` is ``(K, D)`` with unit rows (for a nonlinear deformator: each direction's
    normalised centroid). ``deformator`` maps ``(k, eps)`` to a latent shift; ``None`` means the shift
    is ``eps * directions[k]``. ``reconstructor`` is the trained R, when the method has one.
    """

    directions: torch.Tensor  # (K, D)
    deformator: nn.Module | None = None
    reconstructor: nn.Module | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def result_problem(result: Any, latent_dim: int, num_directions: int | None) -> str | None:
    """What breaks the :class:`DiscoveryResult` contract in what a method's ``discover`` returned, or
    ``None``: its type, the directions' shape ``(K, latent_dim)`` (``K == num_directions`` unless that
    is ``None``: closed form may return its own count), finite, non-zero, unit rows, a deformator
    that is a module. ``discover`` checks every result before it writes anything;
    :func:`ganzoo_directions.testing.check_method` checks the same in a plugin's tests."""
    if not isinstance(result, DiscoveryResult):
        return f"discover returned {type(result).__name__}, not a DiscoveryResult(directions, ...)"
    d = result.directions
    if not isinstance(d, torch.Tensor) or d.ndim != 2:
        shape = tuple(d.shape) if isinstance(d, torch.Tensor) else type(d).__name__
        return f"directions must be a (K, {latent_dim}) tensor, got {shape}"
    K, D = d.shape
    if latent_dim != D:
        turned = " (transposed? rows are directions)" if latent_dim == K else ""
        return f"directions have shape ({K}, {D}), expected (K, {latent_dim}){turned}"
    if K < 1 or (num_directions is not None and num_directions != K):
        return f"returned {K} directions, asked for {num_directions}"
    if not d.is_floating_point():
        return f"directions must be floating point, got {d.dtype}"
    if not bool(torch.isfinite(d).all()):
        return "directions hold NaN or infinite values"
    norms = d.detach().double().norm(dim=1)  # (K,)
    zero = (norms < 1e-6).nonzero().flatten().tolist()
    if zero:
        return f"directions {zero[:5]} are all zeros"
    if not bool(torch.allclose(norms, torch.ones_like(norms), atol=1e-3)):
        return f"directions must be unit rows, got norms {norms.min():.3g} to {norms.max():.3g}"
    if result.deformator is not None and not isinstance(result.deformator, nn.Module):
        return f"deformator must be a torch.nn.Module or None, got {type(result.deformator).__name__}"
    return None


def images_problem(images: Any, n: int, channels: int, size: int) -> str | None:
    """What breaks :meth:`GeneratorAdapter.render`'s contract in ``images`` rendered from ``n``
    latents, or ``None``: a ``(n, channels, size, size)`` finite tensor in ``[-1, 1]``."""
    if not isinstance(images, torch.Tensor):
        return f"render returned {type(images).__name__}, not a tensor"
    if tuple(images.shape) != (n, channels, size, size):
        return f"render returned shape {tuple(images.shape)}, expected ({n}, {channels}, {size}, {size})"
    if not bool(torch.isfinite(images).all()):
        return "render returned NaN or infinite values"
    low, high = float(images.detach().min()), float(images.detach().max())
    if low < -1.001 or high > 1.001:
        return f"render must return images in [-1, 1], got values from {low:.3g} to {high:.3g}"
    return None


class DirectionMethod(abc.ABC):
    """A way to find K directions in a generator's latent space.

    Subclass it (or :class:`ganzoo_directions.training.TrainedMethod` for methods trained with the
    shared loop), set the class attributes and register it with the ``register_direction_methods``
    hook. The host builds it as ``cls(**hyperparameters)`` and calls :meth:`discover` once.

    Class attributes:

    ``name``
        What users type after ``--method``.
    ``summary``
        One line for ``zoo-dirs list``.
    ``hyperparameters``
        ``{name: Option}``: the method's own settings, set on the CLI with ``--param KEY=VALUE``;
        parsed values are in ``self.hparams``.
    ``trained``
        ``True`` for methods that train (they use steps, batch, learning rate and checkpoints);
        closed-form methods leave it ``False`` and their runs record ``steps = 0``.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    hyperparameters: ClassVar[Mapping[str, Option]] = {}
    trained: ClassVar[bool] = False  # True: uses steps, batch, lr, eps range and checkpoints

    def __init__(self, **hparams: Any) -> None:
        self.hparams: dict[str, Any] = parse_options(
            self.hyperparameters, hparams, what=f"method {self.name!r}"
        )

    def recommended_settings(self, generator: GeneratorAdapter) -> dict[str, Any]:
        """``RunSettings`` result fields (``lr``, ``eps_max``, ``eps_min``, ``num_directions``,
        ``batch_size``, ``steps``) this method recommends for ``generator``. The host uses them for a
        fresh run wherever the user gave no value (a flag of ``discover`` or ``benchmark``, a key of
        a benchmark variant); the run records what it used. Default: none (the project's
        defaults)."""
        return {}

    @abc.abstractmethod
    def discover(self, generator: GeneratorAdapter, settings: RunSettings) -> DiscoveryResult:
        """Find ``settings.num_directions`` directions in ``generator``'s latent space.

        :param generator: the frozen generator, already on ``settings.device``.
        :param settings: shared settings; ``settings.run_dir`` is where checkpoints may be written,
            and ``settings.resume`` asks to continue from the last one.
        :return: the directions (and the deformator and reconstructor, if the method trains them).
        """

    def describe(self) -> dict[str, Any]:
        """What identifies this method's run in a direction file's metadata."""
        return {"name": self.name, "hyperparameters": self.hparams}
