"""The ``stylegan2`` generator adapter: directions in W (or Z), optionally on a W+ layer range."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import torch

from ganzoo_directions.errors import CheckpointError, GanzooError
from ganzoo_directions.hub import fetch_file
from ganzoo_directions.interfaces import FactorReadout, GeneratorAdapter, Option, PretrainedWeights
from ganzoo_directions.weights import read_weights

from .model import Generator, StyleGAN2Config
from .nvidia import read_network_pickle, to_rosinality


def parse_layers(text: str, n_latent: int) -> list[int]:
    """``"all"``, ``"3"``, ``"0-5"`` or ``"0-3,8"`` -> sorted W+ indices (within 0..n_latent-1)."""
    if text.strip() == "all":
        return list(range(n_latent))
    layers: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise GanzooError(f"layers: expected 'all' or ranges like 0-5,8, got {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo > hi or hi >= n_latent:
            raise GanzooError(f"layers: {part.strip()!r} is outside 0-{n_latent - 1} (this generator's W+)")
        layers.update(range(lo, hi + 1))
    return sorted(layers)


def infer_config(state: dict[str, torch.Tensor], lr_mlp: float) -> StyleGAN2Config:
    """Size, mapping depth, style dimension and the width of every resolution, read off a ``g_ema``
    state dict in rosinality's layout (any channel schedule: rosinality's or NVIDIA's)."""
    try:
        style_dim = state["style.1.weight"].shape[1]
        n_mlp = len({k.split(".")[1] for k in state if re.fullmatch(r"style\.\d+\.weight", k)})
        n_rgbs = len({k.split(".")[1] for k in state if k.startswith("to_rgbs.")})
        widths = [(4, state["input.input"].shape[1])]
        widths += [(2 ** (i + 3), state[f"convs.{2 * i}.conv.weight"].shape[1]) for i in range(n_rgbs)]
    except KeyError as exc:
        raise CheckpointError(
            f"not a StyleGAN2 generator in rosinality's layout (no {exc.args[0]!r})"
        ) from None
    size = 2 ** (n_rgbs + 2)
    return StyleGAN2Config(
        size, style_dim, n_mlp, lr_mlp=lr_mlp, max_channels=max(c for _, c in widths), widths=tuple(widths)
    )


def unflatten_g_ema(data: dict[str, Any]) -> dict[str, Any]:
    """A safetensors file holds flat names: ``g_ema.<param>`` keys become the nested ``g_ema`` dict of
    rosinality's ``.pt`` layout (other keys, such as ``latent_avg``, stay at the top)."""
    if not any(k.startswith("g_ema.") for k in data):
        return data
    g_ema = {k.removeprefix("g_ema."): v for k, v in data.items() if k.startswith("g_ema.")}
    return {"g_ema": g_ema, **{k: v for k, v in data.items() if not k.startswith("g_ema.")}}


#: the commit of aaronb/StyleGAN2 (rosinality-layout conversions of NVIDIA's config-f models) registered
_ROSINALITY_REVISION = "d9b2f23f21856b6bdfabd37de6f3d04cf39f891e"


class StyleGAN2Generator(GeneratorAdapter):
    """StyleGAN2 (rosinality's checkpoint layout, e.g. ``stylegan2-ffhq-config-f.pt``, the same layout as
    safetensors with ``g_ema.``-prefixed names and ``latent_avg``, or NVIDIA's official
    StyleGAN2-ADA-PyTorch ``.pkl``, read without unpickling code).

    Latents are w = mapping(z) (``space=w``, the default and the paper's choice), truncated toward
    the mean w when ``truncation < 1``; a shift moves every W+ entry, or only those in ``layers``. The
    noise maps are the checkpoint's fixed buffers, so the images of a pair differ only by the shift.
    Without ``--weights`` the host uses ``ffhq-1024`` (downloaded once into the Hugging Face cache);
    ``--random-weights`` builds an untrained one (tests, timing).
    """

    takes_weights = True
    needs_weights = True
    pretrained = tuple(
        PretrainedWeights(
            name,
            f"hf:aaronb/StyleGAN2/stylegan2-{data}-config-f.pt@{_ROSINALITY_REVISION}",
            f"NVIDIA's StyleGAN2 config-f {what}, converted to rosinality's layout",
            "nvidia-source-code-license-nc (non-commercial)",
            homepage="https://huggingface.co/aaronb/StyleGAN2",
            paper=name == "ffhq-1024",
        )
        for name, data, what in (
            ("ffhq-1024", "ffhq", "FFHQ 1024 px"),
            ("car-512", "car", "LSUN car 512 px"),
            ("cat-256", "cat", "LSUN cat 256 px"),
            ("church-256", "church", "LSUN church 256 px"),
            ("horse-256", "horse", "LSUN horse 256 px"),
        )
    )
    default_weights = "ffhq-1024"

    name = "stylegan2"
    summary = "StyleGAN2 (rosinality layout; FFHQ config-f and any size); directions in W, W+ layer ranges"
    live_options = ("truncation", "layers")  # zoo-dirs explore: a control each
    options = {
        "size": Option(1024, "output resolution (random init only; read from the checkpoint otherwise)"),
        "style_dim": Option(512, "dimension of z and w (random init only)", minimum=1),
        "n_mlp": Option(8, "mapping layers (random init only)", minimum=1),
        "channel_multiplier": Option(2, "2 for config-f (random init only)", minimum=1),
        "max_channels": Option(512, "widest layer (random init only)", minimum=1),
        "truncation": Option(
            1.0,
            "psi: w <- w_avg + psi (w - w_avg); 1 = no truncation",
            minimum=0.0,
            maximum=1.0,
            exclusive_minimum=True,
        ),
        "layers": Option("all", "W+ entries a shift acts on: all, or ranges like 0-5"),
        "space": Option("w", "latent space of the directions", choices=("w", "z")),
    }
    latent_spaces = ("w", "z")
    recommended_steps = 200_000
    # DeepSpectral's layer: the image; on stylegan2-shapes3d deeper layers scored higher, the image
    # highest (MIG 0.020 at 4 px, 0.019 at 8, 0.032 at 16, 0.040 on the image: docs/results.md 9)
    feature_layer = None

    def __init__(self, weights: str | None = None, **options: Any) -> None:
        super().__init__(weights, **options)
        cfg = self.config
        self.latent_space = cfg["space"]
        latent_avg = None
        if weights is not None:
            path = fetch_file(weights)
            if path.suffix == ".pkl":  # NVIDIA's official network pickle, read without running its code
                g_ema = read_network_pickle(str(path))["G_ema"]
                state, latent_avg, facts = to_rosinality(g_ema)
                model_config = replace(infer_config(state, lr_mlp=0.01), conv_clamp=facts["conv_clamp"])
            else:
                data = unflatten_g_ema(read_weights(path))
                state = data.get("g_ema", data)
                if not isinstance(state, dict):
                    raise CheckpointError(f"{path}: 'g_ema' is not a state dict")
                latent_avg = data.get("latent_avg")
                model_config = infer_config(state, lr_mlp=0.01)
        else:
            model_config = StyleGAN2Config(
                cfg["size"], cfg["style_dim"], cfg["n_mlp"], cfg["channel_multiplier"], cfg["max_channels"]
            )
        self.model_config = model_config
        self.net = Generator(model_config).eval()
        if weights is not None:
            c = model_config
            if path.suffix == ".pkl":  # blur kernels are fixed [1, 3, 3, 1] filters, not in the pickle
                fixed = {k: v for k, v in self.net.state_dict().items() if k.endswith(".kernel")}
                state = {**fixed, **state}
            self.load_checked(
                self.net,
                path,
                state,
                architecture=f"StyleGAN2 {c.size} px (style_dim {c.style_dim}, {c.n_mlp} mapping layers, "
                f"widths {[c.channels(2**r) for r in range(2, c.log_size + 1)]}) in rosinality's layout",
            )
        if latent_avg is None:
            latent_avg = self.net.mean_latent()
        self.register_buffer("latent_avg", latent_avg.reshape(-1).float().clone())  # (style_dim,)
        self._set_layers()

    def _set_layers(self) -> None:
        n_latent = self.model_config.n_latent
        self.layers = parse_layers(str(self.config["layers"]), n_latent)
        if self.latent_space == "z" and len(self.layers) != n_latent:
            raise GanzooError("stylegan2: layers=... needs space=w (a z shift changes every layer's w)")
        mask = torch.zeros(n_latent, 1, device=self.latent_avg.device)
        mask[self.layers] = 1.0
        self.register_buffer("layer_mask", mask)  # (n_latent, 1)

    def with_options(self, **changed: Any) -> StyleGAN2Generator:
        if not set(changed) <= set(self.live_options):
            return super().with_options(**changed)
        clone = self.sharing_weights(changed)  # truncation and layers change no weight
        clone._set_layers()
        return clone

    @property
    def latent_dim(self) -> int:
        return self.model_config.style_dim

    @property
    def image_size(self) -> int:
        return self.model_config.size

    def _truncate(self, w: torch.Tensor) -> torch.Tensor:
        psi = self.config["truncation"]
        return w if psi == 1 else self.latent_avg + psi * (w - self.latent_avg)

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        if self.latent_space == "z":
            return z
        with torch.no_grad():
            return self._truncate(self.net.mapping(z))

    def projection_start(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.latent_space == "w":  # the StyleGAN2 projector's start: the mean w
            return self.latent_avg.expand(n, -1).clone()
        return self.sample_latents(n, generator)

    def latent_prior_loss(self, latents: torch.Tensor) -> torch.Tensor:
        if self.latent_space == "w":  # as the StyleGAN2 projector: no penalty on w itself
            return latents.new_zeros(len(latents))
        return super().latent_prior_loss(latents)

    def _w(self, latents: torch.Tensor) -> torch.Tensor:
        return self._truncate(self.net.mapping(latents)) if self.latent_space == "z" else latents

    def checkpoint_blocks(self, enabled: bool) -> bool:
        self.net.checkpoint_blocks = enabled  # per resolution block (model.Generator.synthesis)
        return True

    def _synthesise(self, w_plus: torch.Tensor) -> torch.Tensor:
        return self.net.synthesis(w_plus).clamp(-1, 1)

    def render(self, latents: torch.Tensor) -> torch.Tensor:
        w = self._w(latents)  # (B, style_dim)
        return self._synthesise(w[:, None, :].expand(-1, self.model_config.n_latent, -1))

    def render_shifted(self, latents: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        if self.latent_space == "z":
            return self.render(latents + shifts)
        n = self.model_config.n_latent
        w_plus = latents[:, None, :].expand(-1, n, -1) + self.layer_mask * shifts[:, None, :]
        return self._synthesise(w_plus)  # (B, 3, size, size)

    def latent_weights(self) -> torch.Tensor:
        """In W: the style-modulation weights of the styled convs fed by the W+ entries in use (entry 0
        feeds ``conv1``, entries 2j+1 and 2j+2 feed ``convs.2j`` and ``convs.2j+1``; the RGB layers'
        modulations are left out, as in rosinality's closed-form factorisation). In Z: the first
        mapping layer."""
        if self.latent_space == "z":
            return self.net.style[1].weight
        convs = {0: self.net.conv1}
        for j in range(len(self.net.convs) // 2):
            convs[2 * j + 1], convs[2 * j + 2] = self.net.convs[2 * j], self.net.convs[2 * j + 1]
        rows = [convs[i].conv.modulation.weight for i in self.layers if i in convs]
        if not rows:
            raise GanzooError("stylegan2: the chosen layers feed no styled conv (only RGB layers)")
        return torch.cat(rows)  # (sum of input widths, style_dim)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "layers": self.layers}


class StyleGAN2Shapes3DGenerator(StyleGAN2Generator):
    """A small StyleGAN2 this project trained on the ``shapes3d`` renderer's factor grid (32 px, w in
    R^32, 4 mapping layers; ``scripts/train_testbed_gan.py``, docs/testbeds.md). Its weights ship inside
    this plugin in rosinality's layout (fp16 safetensors) and load through this adapter's own reading
    and checking code, so directions live in its W, on W+ layer ranges, with truncation, like any
    StyleGAN2. Its factors are read with the testbeds plugin's classifier when that plugin is installed.
    """

    name = "stylegan2-shapes3d"
    summary = "small StyleGAN2 trained on the 3D Shapes grid (32 px, W 32-dim), weights ship with the plugin"
    options = {k: v for k, v in StyleGAN2Generator.options.items() if k in ("truncation", "layers", "space")}
    recommended_steps = 2000
    shipped_weights = "stylegan2-shapes3d.safetensors"
    needs_weights = False  # complete without a file: the weights ship
    pretrained = ()
    default_weights = None

    def __init__(self, weights: str | None = None, **options: Any) -> None:
        if weights is not None:
            super().__init__(weights, **options)
            return
        from importlib.resources import as_file, files

        with as_file(files("ganzoo_directions_stylegan2").joinpath("weights", self.shipped_weights)) as path:
            super().__init__(str(path), **options)
        self.weights_source = None  # the shipped file; the fingerprint pins it

    def factor_readout(self) -> FactorReadout | None:
        try:
            from ganzoo_directions_testbeds.readout import factor_readout
        except ImportError:
            return None
        return factor_readout("shapes3d", self.device, self.image_size)
