"""``zoo-dirs explore``: a local web page (Gradio) to look at a direction set, move along its directions
with sliders and name them.

Two layers: :class:`Explorer` holds the state and does the work (rendering, traversal strips, labels)
with no web framework, so it is tested and benchmarked directly; :func:`build_app` lays it out as a
Gradio page (the optional extra ``pip install "ganzoo-directions[explore]"``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import defaults
from .directions import DirectionSet, update_labels
from .errors import GanzooError
from .interfaces import GeneratorAdapter
from .safe_text import markdown_text, plain
from .traversal import enlarge

if TYPE_CHECKING:
    import gradio as gr
    from PIL import Image

MAX_SAMPLES = 8  # images shown at once
STRIP_STEPS = 5  # tiles of a direction's traversal strip
MIN_TILE = 256  # small generators are enlarged (nearest neighbour) to at least this many pixels


def require_gradio() -> Any:
    """Import Gradio, or say in one line how to install it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    try:
        import gradio
    except ImportError:
        raise GanzooError('zoo-dirs explore needs Gradio: pip install "ganzoo-directions[explore]"') from None
    return gradio


def to_image(images: torch.Tensor, min_tile: int = MIN_TILE) -> Image.Image:
    """``(N, C, H, W)`` in [-1, 1] -> one PIL image, the N side by side (enlarged when small)."""
    from PIL import Image

    row = torch.cat(list(enlarge(images, min_tile).float().clamp(-1, 1)), dim=2)  # (C, H, N*W)
    pixels = ((row + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(pixels if pixels.shape[2] == 3 else pixels[:, :, 0])


LOOPBACK = ("127.0.0.1", "localhost", "::1")
AUTH_ENV = "ZOO_DIRS_EXPLORE_AUTH"


def page_access(host: str, share: bool, auth: str | None) -> tuple[tuple[str, str] | None, bool, str]:
    """Who may write labels through the page: ``(credentials, labels_allowed, what_to_say)``.

    The label boxes are API endpoints that rewrite the user's direction file. On the loopback the page
    is the user's own; reachable beyond it (``--host 0.0.0.0``, ``--share``) it needs credentials
    (``--auth USER:PASS`` or the environment variable :data:`AUTH_ENV`), or it is served read-only.
    """
    credentials = None
    if auth:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise GanzooError("--auth takes USER:PASS (both non-empty)")
        credentials = (user, password)
    exposed = share or host not in LOOPBACK
    if not exposed:
        return credentials, True, ""
    if credentials is not None:
        return (
            credentials,
            True,
            "the page is reachable beyond this machine; it asks for the --auth credentials",
        )
    return (
        None,
        False,
        "the page is reachable beyond this machine without --auth: labels are read-only "
        f"(give --auth USER:PASS or set {AUTH_ENV} to edit them there)",
    )


def allowed_hosts(host: str, share: bool) -> list[str]:
    """The ``Host`` headers the page answers (DNS rebinding: a foreign page whose name resolves to
    127.0.0.1 sends its own name, and is refused). On the loopback: its names only; bound to one
    address: that and the loopback's; on every interface (``0.0.0.0``) or ``--share``'s tunnel the
    name cannot be known, and credentials guard the labels instead (:func:`page_access`)."""
    loopback = ["127.0.0.1", "localhost", "::1", "[::1]"]
    if share or host in ("0.0.0.0", "::", ""):
        return ["*"]
    return loopback if host in LOOPBACK else [host, *loopback]


def app_kwargs(host: str, share: bool) -> dict[str, Any]:
    """What the Gradio app is built with beyond Gradio's defaults: the ``Host`` check."""
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    return {"middleware": [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host, share))]}


@dataclass
class Explorer:
    """What the page shows and changes, with no web framework.

    ``build(options)`` makes the generator with the live ``options`` (``GeneratorAdapter.live_options``)
    changed; the results are cached. ``path`` is the direction file labels are written to, ``None``
    for a read-only set.
    """

    dset: DirectionSet
    build: Callable[[dict[str, Any]], GeneratorAdapter]
    path: Path | None = None
    sliders: int = defaults.EXPLORE_SLIDERS
    magnitude: float = defaults.EPS_MAX
    _generators: dict[tuple, GeneratorAdapter] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.directions: list[int] = self.dset.ranked()[: self.sliders]  # strongest first
        self.generator = self.build({})
        self.live = {name: self.generator.options[name] for name in self.generator.live_options}
        self.defaults = {name: self.generator.config[name] for name in self.live}
        self._generators[self._key(self.defaults)] = self.generator

    def _key(self, options: dict[str, Any]) -> tuple:
        return tuple(sorted((k, str(v)) for k, v in options.items()))

    def generator_with(self, options: dict[str, Any] | None) -> GeneratorAdapter:
        """The generator with the live ``options`` (the recorded ones where not given)."""
        wanted = {**self.defaults, **(options or {})}
        key = self._key(wanted)
        if key not in self._generators:
            changed = {k: v for k, v in wanted.items() if str(v) != str(self.defaults[k])}
            if len(self._generators) >= 4:  # keep a few (adapters that cannot share weights copy them)
                self._generators.pop(next(k for k in self._generators if k != self._key(self.defaults)))
            self._generators[key] = self.build(changed)
        return self._generators[key]

    # -- what the page shows ----------------------------------------------------------------------
    def latents(self, seed: int, samples: int, generator: GeneratorAdapter) -> torch.Tensor:
        """``(N, D)`` latents drawn from the prior with ``seed`` (N clamped to 1..MAX_SAMPLES)."""
        samples = min(max(int(self.clamp_number(samples, 1)), 1), MAX_SAMPLES)
        rng = torch.Generator(generator.device).manual_seed(int(abs(self.clamp_number(seed, 0))) % 2**63)
        return generator.sample_latents(samples, rng)

    @staticmethod
    def clamp_number(value: Any, fallback: float) -> float:
        """``value`` as a finite float, or ``fallback`` for anything else (None, text, NaN, inf)."""
        try:
            value = float(value)
        except (TypeError, ValueError):
            return fallback
        return value if math.isfinite(value) else fallback

    def clamp(self, value: Any) -> float:
        """A slider value within [-magnitude, magnitude]; anything that is not a number is 0."""
        return max(-self.magnitude, min(self.magnitude, self.clamp_number(value, 0.0)))

    @torch.no_grad()
    def render(
        self,
        seed: int,
        samples: int,
        values: Sequence[Any],
        options: dict[str, Any] | None = None,
    ) -> Image.Image:
        """The samples of ``seed`` moved by every slider at once: ``G(z + sum_k A(k, v_k))``."""
        generator = self.generator_with(options)
        z = self.latents(seed, samples, generator)  # (N, D)
        shift = torch.zeros_like(z)
        for k, value in zip(self.directions, values, strict=False):
            eps = self.clamp(value)
            if eps:
                shift = shift + self.dset.shift(k, eps, n=len(z)).to(z)
        return to_image(generator.render_shifted(z, shift))

    @torch.no_grad()
    def strips(self, seed: int, options: dict[str, Any] | None = None) -> list[Image.Image]:
        """For each slider's direction, the first sample at STRIP_STEPS magnitudes."""
        generator = self.generator_with(options)
        z = self.latents(seed, 1, generator)  # (1, D)
        steps = torch.linspace(-self.magnitude, self.magnitude, STRIP_STEPS, device=z.device)
        return [
            to_image(
                generator.render_shifted(z.expand(STRIP_STEPS, -1), self.dset.shift(k, steps).to(z)),
                min_tile=48,
            )
            for k in self.directions
        ]

    # -- labels -----------------------------------------------------------------------------------
    def save_label(self, k: int, text: str) -> str:
        """Label direction ``k`` (an empty text removes its label) in the file, under its lock (a
        label another explorer saved meanwhile is kept). Returns a line for the user."""
        if self.path is None:
            return "this set is read-only here (a Hub set: start with --out DIR to keep a labelled copy)"
        text = (text or "").strip()
        try:
            labels = update_labels(self.path, {k: text} if text else None, () if text else (k,))
        except GanzooError as exc:
            return f"not saved: {exc}"
        self.dset.spec["labels"] = {str(i): v for i, v in sorted(labels.items())}
        return f"saved: direction {k} is {text!r}" if text else f"removed the label of direction {k}"


def build_app(explorer: Explorer) -> gr.Blocks:
    """The Gradio page of ``explorer``: the samples, a slider, a strip and a label box per direction,
    seed, samples, the generator's live options, reset and random-sample buttons."""
    gr = require_gradio()
    dset = explorer.dset
    made_for = dset.spec.get("generator", {})
    method = dset.spec.get("method", {}).get("name", "?")
    with gr.Blocks(title=f"zoo-dirs explore: {method} on {made_for.get('name', '?')}") as app:
        gr.Markdown(  # names from the file are shown as text, never as Markdown or HTML
            f"### {dset.num_directions} {markdown_text(method)} directions for "
            f"{markdown_text(made_for.get('name', '?'))} — the {len(explorer.directions)} strongest first"
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                seed = gr.Number(0, label="seed", precision=0, elem_id="seed")
                samples = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="samples", elem_id="samples")
                options = []
                for name, option in explorer.live.items():
                    value = explorer.defaults[name]
                    if isinstance(option.default, float) and option.maximum is not None:
                        low = option.minimum or 0.0
                        options.append(
                            gr.Slider(
                                low + (0.01 if option.exclusive_minimum else 0.0),
                                option.maximum,
                                value=value,
                                step=0.01,
                                label=name,
                                elem_id=f"option-{name}",
                            )
                        )
                    else:
                        options.append(gr.Textbox(str(value), label=name, elem_id=f"option-{name}"))
                with gr.Row():
                    reset = gr.Button("reset", elem_id="reset")
                    shuffle = gr.Button("random sample", elem_id="random")
                status = gr.Markdown("", elem_id="status")
            with gr.Column(scale=2):
                image = gr.Image(
                    explorer.render(0, 1, []),
                    label="samples",
                    type="pil",
                    format="png",
                    interactive=False,
                    elem_id="image",
                    height=300,
                )
        sliders, strips, labels = [], [], []
        first_strips = explorer.strips(0)
        for i, k in enumerate(explorer.directions):
            with gr.Row(equal_height=True):
                sliders.append(
                    gr.Slider(
                        -explorer.magnitude,
                        explorer.magnitude,
                        value=0.0,
                        step=0.1,
                        label=explorer.dset.title(k),
                        elem_id=f"slider-{k}",
                        scale=2,
                    )
                )
                strips.append(
                    gr.Image(
                        first_strips[i],
                        show_label=False,
                        type="pil",
                        format="png",
                        interactive=False,
                        elem_id=f"strip-{k}",
                        scale=2,
                        height=64,
                    )
                )
                labels.append(
                    gr.Textbox(
                        dset.labels.get(k, ""),
                        label=f"label of direction {k} (Enter saves)",
                        elem_id=f"label-{k}",
                        max_length=200,
                        scale=1,
                    )
                )

        def split(values: Sequence[Any]) -> tuple[Any, Any, dict[str, Any], Sequence[Any]]:
            live = dict(zip(explorer.live, values[2 : 2 + len(options)], strict=True))
            return values[0], values[1], live, values[2 + len(options) :]

        def rerender(*values: Any) -> Any:
            seed_value, count, live, moves = split(values)
            try:
                return explorer.render(seed_value or 0, count or 1, moves, live), gr.skip()
            except (GanzooError, ValueError) as exc:  # a bad live option: say so, keep the page
                return gr.skip(), f"not applied: {exc}"

        def restrip(*values: Any) -> Any:
            seed_value, _, live, _ = split(values)
            try:
                return explorer.strips(seed_value or 0, live)
            except (GanzooError, ValueError):
                return [gr.skip()] * len(strips)

        inputs = [seed, samples, *options, *sliders]
        for control in [samples, *sliders]:
            control.change(
                rerender,
                inputs,
                [image, status],
                trigger_mode="always_last",
                show_progress="hidden",
                queue=False,
            )
        for control in [seed, *options]:
            control.change(rerender, inputs, [image, status], trigger_mode="always_last")
            control.change(restrip, inputs, strips, trigger_mode="always_last")
        reset.click(lambda: [0.0] * len(sliders), None, sliders)
        shuffle.click(lambda: int(torch.randint(0, 2**31 - 1, ()).item()), None, seed)

        for k, box, slider in zip(explorer.directions, labels, sliders, strict=True):

            def save(text: str, k: int = k) -> Any:
                message = explorer.save_label(k, text)
                return markdown_text(message), gr.Slider(label=plain(explorer.dset.title(k)))

            box.submit(save, box, [status, slider])
    return app
