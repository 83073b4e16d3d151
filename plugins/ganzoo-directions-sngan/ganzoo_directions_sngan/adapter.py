"""The ``sngan`` generator adapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ganzoo_directions import defaults
from ganzoo_directions.errors import CheckpointError, GanzooError
from ganzoo_directions.hub import companion_file, fetch_file
from ganzoo_directions.interfaces import FactorReadout, GeneratorAdapter, Option, PretrainedWeights

from .model import ARCHITECTURES, ResNetGenerator, ResNetGeneratorConfig

WEIGHTS_FILE = "generator.pt"
ARGS_FILE = "args.json"


def _parse_channels(text: str) -> tuple[int, ...]:
    try:
        channels = tuple(int(c) for c in str(text).split(",") if c.strip())
    except ValueError:
        raise GanzooError(f"channels must be comma-separated integers, got {text!r}") from None
    if len(channels) < 2 or min(channels) < 1:
        raise GanzooError(f"channels needs at least two positive widths, got {text!r}")
    return channels


class SNGANGenerator(GeneratorAdapter):
    """SNGAN ResNet generator; z ~ N(0, I).

    ``--weights`` takes Voynov & Babenko's model folder (``args.json`` + ``generator.pt``), a
    ``generator.pt`` / ``.safetensors`` file, or ``hf:OWNER/NAME/path/generator.pt[@REV]``. The
    host builds it without weights only when asked (``--random-weights``: tests and timing).
    """

    takes_weights = True
    needs_weights = True
    pretrained = (
        PretrainedWeights(
            "sn-anime",
            None,
            "Voynov & Babenko's SN-Anime 64 px (the paper's SNGAN); folder with args.json + generator.pt",
            "unspecified (GANLatentDiscovery release)",
            homepage="https://github.com/anvoynov/GANLatentDiscovery (python download.py)",
            paper=True,
        ),
        PretrainedWeights(
            "sn-mnist",
            None,
            "Voynov & Babenko's SN-MNIST 32 px (one channel: -g arch=sn_resnet32 -g image_channels=1)",
            "unspecified (GANLatentDiscovery release)",
            options={"arch": "sn_resnet32", "image_channels": 1},
            homepage="https://github.com/anvoynov/GANLatentDiscovery (python download.py)",
        ),
    )

    name = "sngan"
    summary = "SNGAN ResNet generator (Voynov & Babenko's SN-Anime 64 px / SN-MNIST 32 px layout)"
    options = {
        "arch": Option("sn_resnet64", "architecture", choices=(*ARCHITECTURES, "custom")),
        "channels": Option("", "widths for arch=custom, e.g. 256,128,64 (4 px doubled per width)"),
        "latent_dim": Option(128, "dimension of z", minimum=1, maximum=defaults.MAX_LATENT_DIM),
        "image_channels": Option(3, "3 for RGB, 1 for MNIST", choices=(1, 3)),
    }
    recommended_steps = 200_000
    # DeepSpectral's layer: the linear layer that reads z (its Jacobian is the weight: SeFa's W^T W
    # without the row normalisation); deeper blocks scored lower on sngan-dsprites (docs/results.md 9)
    feature_layer = "net.model.0"

    def __init__(self, weights: str | None = None, **options) -> None:
        super().__init__(weights, **options)
        path = self._resolve(weights) if weights is not None else None
        cfg = self.config
        channels = _parse_channels(cfg["channels"]) if cfg["arch"] == "custom" else ARCHITECTURES[cfg["arch"]]
        self.model_config = ResNetGeneratorConfig(channels, cfg["latent_dim"], cfg["image_channels"])
        self.image_channels = self.model_config.image_channels
        self.net = ResNetGenerator(self.model_config).eval()
        if path is not None:
            self._load(path)

    def _resolve(self, weights: str) -> Path:
        """A model folder or a weights file (local or on the Hub); an ``args.json`` beside it (as in
        Voynov & Babenko's model folders) sets the architecture and overrides options."""
        args_path = companion_file(weights, ARGS_FILE)
        if args_path is not None:
            self._apply_args(args_path)
        local = Path(weights).expanduser()
        if local.is_dir():
            path = local / WEIGHTS_FILE
            if not path.is_file():
                raise CheckpointError(f"{local}: no {WEIGHTS_FILE} in this folder")
            return path
        return fetch_file(weights)

    def _apply_args(self, args_path: Path) -> None:
        try:
            args = json.loads(args_path.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{args_path}: not JSON ({exc})") from None
        model = args.get("model", self.config["arch"])
        if model not in (*ARCHITECTURES, "custom"):
            raise CheckpointError(f"{args_path}: unknown model {model!r}; known: {', '.join(ARCHITECTURES)}")
        self.config["arch"] = model
        if "channels" in args:
            self.config["channels"] = ",".join(map(str, args["channels"]))
        for key in ("latent_dim", "image_channels"):
            if key in args:
                self.config[key] = int(args[key])

    def _load(self, path: Path) -> None:
        c = self.model_config
        self.load_checked(
            self.net,
            path,
            aliases=self.net.block_aliases(),
            architecture=f"SNGAN ResNet generator (channels {list(c.channels)}, z {c.latent_dim}, "
            f"{c.image_channels} x {c.image_size} x {c.image_size}; set -g arch=... / channels=...)",
        )

    @property
    def latent_dim(self) -> int:
        return self.model_config.latent_dim

    @property
    def image_size(self) -> int:
        return self.model_config.image_size

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    def render(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents)

    def projection_start(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sample_latents(n, generator)  # draws of the prior; the projector keeps the best

    def latent_weights(self) -> torch.Tensor:
        return self.net.model[0].weight  # (4 * 4 * c0, z_dim): the linear layer on z

    def early_features(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net.model[0](latents)  # (n, 4 * 4 * c0)


class EmbeddedSNGAN(SNGANGenerator):
    """An SNGAN this project trained on one of its renderers; the weights ship inside this plugin
    (``weights/<shipped_weights>``, fp16 safetensors whose metadata give the widths, the latent size
    and the image channels), so it works offline. Subclasses set ``name``, ``summary``,
    ``shipped_weights`` and say how to read the renderer's factors off an image."""

    options: dict[str, Option] = {}
    recommended_steps = 2000
    shipped_weights: str = ""
    needs_weights = False  # complete without a file: the weights ship
    pretrained = ()

    def __init__(self, weights: str | None = None, **options) -> None:
        from importlib.resources import as_file, files

        GeneratorAdapter.__init__(self, weights, **options)  # no options of its own
        if weights is not None:
            self._init_from(fetch_file(weights))
            return
        with as_file(files("ganzoo_directions_sngan").joinpath("weights", self.shipped_weights)) as path:
            self._init_from(Path(path))

    def _init_from(self, path: Path) -> None:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            channels, latent_dim = json.loads(meta["channels"]), int(meta["latent_dim"])
            image_channels = int(meta.get("image_channels", 3))
        except Exception as exc:
            raise CheckpointError(f"{path}: not an {self.name} weights file ({exc})") from None
        self.config.update(
            arch="custom",
            channels=",".join(map(str, channels)),
            latent_dim=latent_dim,
            image_channels=image_channels,
        )
        self.model_config = ResNetGeneratorConfig(tuple(channels), latent_dim, image_channels)
        self.image_channels = image_channels
        self.net = ResNetGenerator(self.model_config).eval()
        self._load(path)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "options": {}}  # weights None = the shipped file; fingerprint pins it


class SNGANSpritesGenerator(EmbeddedSNGAN):
    """The embedded default: a small SNGAN trained by this project on `sprites` renders (32 px, z in
    R^16; ``scripts/train_sprites_gan.py``). Its factors are read with the sprites plugin's regressor
    when that plugin is installed."""

    name = "sngan-sprites"
    summary = "embedded default: small SNGAN trained on sprites (32 px, z 16), weights ship with the plugin"
    shipped_weights = "sngan-sprites.safetensors"

    def factor_readout(self) -> FactorReadout | None:
        try:
            from ganzoo_directions_sprites.regressor import factor_readout
        except ImportError:
            return None
        return factor_readout(self.device, self.image_size)


class SNGANDSpritesGenerator(EmbeddedSNGAN):
    """A small SNGAN trained by this project on the ``dsprites`` renderer's factor grid (32 px, one
    channel, z in R^16; ``scripts/train_testbed_gan.py``, docs/testbeds.md). Its factors are read with
    the testbeds plugin's classifier when that plugin is installed."""

    name = "sngan-dsprites"
    summary = (
        "small SNGAN trained on the dSprites grid (32 px, 1 channel, z 16), weights ship with the plugin"
    )
    shipped_weights = "sngan-dsprites.safetensors"

    def factor_readout(self) -> FactorReadout | None:
        try:
            from ganzoo_directions_testbeds.readout import factor_readout
        except ImportError:
            return None
        return factor_readout("dsprites", self.device, self.image_size)
