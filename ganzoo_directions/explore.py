"""``zoo-dirs explore``: a local web page (Gradio) to look at a direction set, move along its directions
with sliders and name them.

Two layers: :class:`Explorer` holds the state and does the work (rendering, traversal strips, labels)
with no web framework, so it is tested and benchmarked directly; :func:`build_app` lays it out as a
Gradio page (the optional extra ``pip install "ganzoo-directions[explore]"``).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import defaults
from .directions import DirectionSet, update_labels
from .errors import GanzooError
from .hub import parse_repo_ref
from .interfaces import GeneratorAdapter
from .safe_text import markdown_text, plain
from .traversal import direction_ranges, enlarge

if TYPE_CHECKING:
    import gradio as gr
    from PIL import Image

MAX_SAMPLES = 8  # images shown at once
COLUMNS = 4  # samples per row of the image (8 samples: two rows of 4, each large enough to read)
STRIP_STEPS = 5  # tiles of a direction's traversal strip
MIN_TILE = 256  # small generators are enlarged (nearest neighbour) to at least this many pixels
STRIP_TILE = 96  # ... and in the strips to at least this many


def require_gradio() -> Any:
    """Import Gradio, or say in one line how to install it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    try:
        import gradio
    except ImportError:
        raise GanzooError('zoo-dirs explore needs Gradio: pip install "ganzoo-directions[explore]"') from None
    return gradio


def to_image(images: torch.Tensor, min_tile: int = MIN_TILE, columns: int = COLUMNS) -> Image.Image:
    """``(N, C, H, W)`` in [-1, 1] -> one PIL image, the N in rows of ``columns`` (enlarged when
    small; a short last row is filled with white)."""
    from PIL import Image

    tiles = enlarge(images, min_tile).float().clamp(-1, 1)  # (N, C, H', W')
    N, C, H, W = tiles.shape
    columns = min(columns, N)
    rows = -(-N // columns)
    filler = torch.ones(rows * columns - N, C, H, W, dtype=tiles.dtype, device=tiles.device)
    grid = torch.cat([tiles, filler]).view(rows, columns, C, H, W)
    grid = grid.permute(2, 0, 3, 1, 4).reshape(C, rows * H, columns * W)  # (C, rows*H', columns*W')
    pixels = ((grid + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
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


def port_problem(host: str, port: int, exc: OSError) -> str:
    """One line for a port the page cannot listen on."""
    if exc.errno == errno.EADDRINUSE or "port" in str(exc).lower():
        return (
            f"port {port} on {host} is in use (another explorer?): --port N listens on another, "
            "--port 0 on the first free one from 7860"
        )
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def check_port(host: str, port: int) -> None:
    """Refuse, before anything is loaded, a ``port`` another program listens on (``0``: Gradio
    picks one later)."""
    if not port:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise GanzooError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind(address)
        except OSError as exc:
            raise GanzooError(port_problem(host, port, exc)) from None


def source_line(source: str, file: Path, writable: bool, labels_allowed: bool) -> str:
    """Where the page's set came from, and whether its labels can be saved (shown on the page)."""
    if Path(source).exists():
        where = f"from {file}"
        copy = "it"
    else:
        repo_id, revision = parse_repo_ref(source)
        where = f"from the Hub: {repo_id} at {revision or 'its newest revision'}"
        copy = "the copy"
        if writable:
            where += f", copied to {file.parent}"
    if not writable:
        return where + "; labels read-only (start with --out DIR to label a copy)"
    if not labels_allowed:
        return where + "; labels read-only (the page is reachable beyond this machine without --auth)"
    return where + f"; labels saved in {copy}"


def variants_of(generator: GeneratorAdapter) -> Callable[[dict[str, Any]], GeneratorAdapter]:
    """The ``build`` an :class:`Explorer` takes: ``generator`` itself, or it with live options changed,
    frozen on its device; adapters that can share the loaded weights do (StyleGAN2, BigGAN: nothing is
    read from disk again, :meth:`GeneratorAdapter.with_options`)."""

    def build(changed: dict[str, Any]) -> GeneratorAdapter:
        if not changed:
            return generator
        return generator.with_options(**changed).requires_grad_(False).eval().to(generator.device)

    return build


@dataclass
class Explorer:
    """What the page shows and changes, with no web framework.

    ``build(options)`` makes the generator with the live ``options`` (``GeneratorAdapter.live_options``)
    changed; the results are cached. ``path`` is the direction file labels are written to, ``None``
    for a read-only set. The directions come in pages of ``sliders``, strongest first (page 0 holds
    the strongest). Each slider reaches ``magnitude`` when given, else its own range: the set's
    recorded one, shortened to :data:`~ganzoo_directions.defaults.RANGE_SIGMAS` standard deviations
    of the latents along that direction (:func:`~ganzoo_directions.traversal.direction_ranges`).
    ``source`` says on the page where the set came from.
    """

    dset: DirectionSet
    build: Callable[[dict[str, Any]], GeneratorAdapter]
    path: Path | None = None
    sliders: int = defaults.EXPLORE_SLIDERS
    magnitude: float | None = None
    source: str = ""
    _generators: dict[tuple, GeneratorAdapter] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.sliders = max(1, min(int(self.sliders), self.dset.num_directions))
        self.order: list[int] = self.dset.ranked()  # strongest first
        self.generator = self.build({})
        self.live = {name: self.generator.options[name] for name in self.generator.live_options}
        self.defaults = {name: self.generator.config[name] for name in self.live}
        self._generators[self._key(self.defaults)] = self.generator
        if self.magnitude is None:
            self.ranges = [round(r, 2) for r in direction_ranges(self.generator, self.dset).tolist()]  # [K]
        else:
            self.ranges = [float(self.magnitude)] * self.dset.num_directions

    @property
    def directions(self) -> list[int]:
        """The first page's directions: the strongest ``sliders``."""
        return self.directions_on(0)

    @property
    def first_page_renders(self) -> int:
        """Images drawn before the page shows: the first sample and the first page's strips."""
        return 1 + STRIP_STEPS * len(self.directions)

    @property
    def pages(self) -> int:
        return -(-self.dset.num_directions // self.sliders)

    def page_number(self, page: Any) -> int:
        """``page`` as a valid page index (anything else: the first page)."""
        return max(0, min(self.pages - 1, int(self.clamp_number(page, 0))))

    def directions_on(self, page: Any) -> list[int]:
        """The directions of ``page`` (0 the strongest), at most ``sliders`` of them."""
        first = self.page_number(page) * self.sliders
        return self.order[first : first + self.sliders]

    def page_name(self, page: int) -> str:
        first = page * self.sliders
        last = min(first + self.sliders, self.dset.num_directions)
        return f"{first + 1}-{last} of {self.dset.num_directions}" + (" (strongest)" if page == 0 else "")

    def describe(self, k: int) -> str:
        """What a slider says of its direction beside its title: rank, stored score, range."""
        rank = self.order.index(k) + 1
        ranking = self.dset.spec.get("ranking", {})
        scores, by = ranking.get("scores"), str(ranking.get("by", "score")).replace("_", " ")
        score = f" · {plain(by)} {scores[k]:.3g}" if isinstance(scores, list) and len(scores) > k else ""
        return f"rank {rank}{score} · range ±{self.ranges[k]:.3g}"

    def refresh_labels(self) -> dict[int, str]:
        """The labels as the file has them now (another tab, ``zoo-dirs label``); the set's own for a
        read-only set."""
        if self.path is not None and self.path.is_file():
            with contextlib.suppress(GanzooError):  # a file damaged meanwhile: keep what was read last
                self.dset.spec["labels"] = DirectionSet.load(self.path).spec.get("labels", {})
        return self.dset.labels

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

    def clamp(self, value: Any, k: int) -> float:
        """A slider value of direction ``k`` within its range; anything that is not a number is 0."""
        reach = self.ranges[k]
        return max(-reach, min(reach, self.clamp_number(value, 0.0)))

    @torch.no_grad()
    def render(
        self,
        seed: int,
        samples: int,
        values: Sequence[Any],
        options: dict[str, Any] | None = None,
        page: Any = 0,
    ) -> Image.Image:
        """The samples of ``seed`` moved by every slider of ``page`` at once: ``G(z + sum_k A(k, v_k))``."""
        generator = self.generator_with(options)
        z = self.latents(seed, samples, generator)  # (N, D)
        shift = torch.zeros_like(z)
        for k, value in zip(self.directions_on(page), values, strict=False):
            eps = self.clamp(value, k)
            if eps:
                shift = shift + self.dset.shift(k, eps, n=len(z)).to(z)
        return to_image(generator.render_shifted(z, shift))

    @torch.no_grad()
    def strips(self, seed: int, options: dict[str, Any] | None = None, page: Any = 0) -> list[Image.Image]:
        """For each direction of ``page``, the first sample at STRIP_STEPS magnitudes over its range."""
        generator = self.generator_with(options)
        z = self.latents(seed, 1, generator)  # (1, D)
        strips = []
        for k in self.directions_on(page):
            steps = torch.linspace(-self.ranges[k], self.ranges[k], STRIP_STEPS, device=z.device)
            moved = generator.render_shifted(z.expand(STRIP_STEPS, -1), self.dset.shift(k, steps).to(z))
            strips.append(to_image(moved, min_tile=STRIP_TILE, columns=STRIP_STEPS))
        return strips

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
    """The Gradio page of ``explorer``: the samples, a slider, a strip and a label box per direction
    of the page shown (a control pages through every direction), seed, samples, the generator's live
    options, reset and random-sample buttons. Labels are read from the file whenever a page loads."""
    gr = require_gradio()
    dset = explorer.dset
    made_for = dset.spec.get("generator", {})
    method = dset.spec.get("method", {}).get("name", "?")
    started = time.perf_counter()
    first_image = explorer.render(0, 1, [])
    render_seconds = time.perf_counter() - started
    first_strips = explorer.strips(0)
    with gr.Blocks(title=f"zoo-dirs explore: {method} on {made_for.get('name', '?')}") as app:
        gr.Markdown(  # names from the file are shown as text, never as Markdown or HTML
            f"### {dset.num_directions} {markdown_text(method)} directions for "
            f"{markdown_text(made_for.get('name', '?'))}, strongest first"
        )
        gr.Markdown(
            markdown_text(
                (f"{explorer.source}. " if explorer.source else "")
                + f"A render of one sample takes {render_seconds:.2f} s on {explorer.generator.device}; "
                "every move renders the samples shown."
            ),
            elem_id="source",
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                seed = gr.Number(0, label="seed", precision=0, elem_id="seed")
                samples = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="samples", elem_id="samples")
                page = gr.Dropdown(
                    [(explorer.page_name(i), i) for i in range(explorer.pages)],
                    value=0,
                    label="directions",
                    elem_id="page",
                    visible=explorer.pages > 1,
                )
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
                    first_image,
                    label="samples",
                    type="pil",
                    format="png",
                    interactive=False,
                    elem_id="image",
                    height=420,
                    buttons=["download", "fullscreen"],  # no Share: it works on Spaces only
                )

        def slider(k: int, **kwargs: Any) -> Any:
            reach = explorer.ranges[k]
            return gr.Slider(-reach, reach, label=plain(dset.title(k)), info=explorer.describe(k), **kwargs)

        rows, sliders, strips, labels = [], [], [], []
        for i, k in enumerate(explorer.directions):  # the first page; the others reuse these rows
            with gr.Row(equal_height=True) as row:
                rows.append(row)
                sliders.append(slider(k, value=0.0, step=0.05, elem_id=f"slider-{i}", scale=2))
                strips.append(
                    gr.Image(
                        first_strips[i],
                        show_label=False,
                        type="pil",
                        format="png",
                        interactive=False,
                        elem_id=f"strip-{i}",
                        scale=2,
                        height=96,
                        buttons=[],
                    )
                )
                labels.append(
                    gr.Textbox(
                        dset.labels.get(k, ""),
                        label=f"label of direction {k} (Enter saves)",
                        elem_id=f"label-{i}",
                        max_length=200,
                        scale=1,
                    )
                )

        def split(values: Sequence[Any]) -> tuple[Any, Any, dict[str, Any], Any, Sequence[Any]]:
            live = dict(zip(explorer.live, values[2 : 2 + len(options)], strict=True))
            rest = values[2 + len(options) :]
            return values[0], values[1], live, rest[0], rest[1:]

        def rerender(*values: Any) -> Any:
            seed_value, count, live, shown, moves = split(values)
            try:
                return explorer.render(seed_value or 0, count or 1, moves, live, shown), gr.skip()
            except (GanzooError, ValueError) as exc:  # a bad live option: say so, keep the page
                return gr.skip(), f"not applied: {exc}"

        def restrip(*values: Any) -> Any:
            seed_value, _, live, shown, _ = split(values)
            try:
                made = explorer.strips(seed_value or 0, live, shown)
            except (GanzooError, ValueError):
                return [gr.skip()] * len(strips)
            return made + [gr.skip()] * (len(strips) - len(made))

        def label_boxes(shown: Any, **slider_changes: Any) -> list[Any]:
            """The sliders' titles and the label boxes of page ``shown``, from the file as it is now."""
            known = explorer.refresh_labels()
            on_page = explorer.directions_on(shown)
            updates_sliders, updates_boxes = [], []
            for i in range(len(sliders)):
                if i < len(on_page):
                    k = on_page[i]
                    updates_sliders.append(slider(k, **slider_changes))
                    updates_boxes.append(
                        gr.Textbox(value=known.get(k, ""), label=f"label of direction {k} (Enter saves)")
                    )
                else:
                    updates_sliders.append(gr.skip())
                    updates_boxes.append(gr.skip())
            return updates_sliders + updates_boxes

        def show_page(*values: Any) -> list[Any]:
            """Another page: its directions on the rows (sliders back at 0), its strips and labels."""
            shown = explorer.page_number(values[-1])
            count = len(explorer.directions_on(shown))
            visible = [gr.Row(visible=i < count) for i in range(len(rows))]
            return [*label_boxes(shown, value=0.0), *restrip(*values[:-1], shown), *visible]

        inputs = [seed, samples, *options, page, *sliders]
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
        page.change(
            show_page,
            [seed, samples, *options, page],
            [*sliders, *labels, *strips, *rows],
            trigger_mode="always_last",
        )
        app.load(label_boxes, page, [*sliders, *labels])  # labels saved elsewhere since the start
        reset.click(lambda: [0.0] * len(sliders), None, sliders)
        shuffle.click(lambda: int(torch.randint(0, 2**31 - 1, ()).item()), None, seed)

        for i, (box, control) in enumerate(zip(labels, sliders, strict=True)):

            def save(text: str, shown: Any, i: int = i) -> Any:
                on_page = explorer.directions_on(shown)
                if i >= len(on_page):
                    return gr.skip(), gr.skip()
                k = on_page[i]
                message = explorer.save_label(k, text)
                return markdown_text(message), slider(k)

            box.submit(save, [box, page], [status, control])
    return app


def serve(
    app: Any, host: str, port: int, *, share: bool = False, credentials: tuple[str, str] | None = None
) -> tuple[str, str | None]:
    """Start ``app`` (from :func:`build_app`) on ``host:port`` (0: the first free port from 7860)
    without blocking, hardened: no server-side rendering proxy, no run-history endpoints (published
    Gradio advisories), no served files, the Host header checked against DNS rebinding. Returns the
    local URL and the public one (``share``). A port taken meanwhile is one :class:`GanzooError`."""
    import inspect

    hardening = {"ssr_mode": False, "run_history": False}  # where this Gradio has them
    accepted = inspect.signature(app.launch).parameters
    try:
        _, local_url, share_url = app.launch(
            server_name=host,
            server_port=port or None,
            share=share,
            inbrowser=False,
            quiet=True,  # Gradio's own lines advise `share=True` in launch(); ours name --share
            auth=credentials,
            prevent_thread_lock=True,
            app_kwargs=app_kwargs(host, share),  # the Host check against DNS rebinding
            **{name: value for name, value in hardening.items() if name in accepted},
        )
    except OSError as exc:  # taken since check_port, or Gradio's own search for a free one failed
        raise GanzooError(port_problem(host, port, exc)) from None
    return local_url, share_url
