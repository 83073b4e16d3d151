"""BigGAN generator adapters: the class is fixed during discovery (``-g class=207`` or a class name)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganzoo_directions.errors import CheckpointError, GanzooError
from ganzoo_directions.hub import companion_file, fetch_file
from ganzoo_directions.interfaces import GeneratorAdapter, Option, PretrainedWeights
from ganzoo_directions.weights import read_weights

from .deep import BigGANDeep, BigGANDeepConfig
from .original import BigGAN, BigGANConfig, infer_config

DEEP_WEIGHTS = "pytorch_model.bin"
DEEP_CONFIG = "config.json"
_DEEP_256_LAYERS = [  # (upsample, in width, out width), widths in units of channel_width
    (False, 16, 16),
    (True, 16, 16),
    (False, 16, 16),
    (True, 16, 8),
    (False, 8, 8),
    (True, 8, 8),
    (False, 8, 8),
    (True, 8, 4),
    (False, 4, 4),
    (True, 4, 2),
    (False, 2, 2),
    (True, 2, 1),
]
DEEP_RESOLUTIONS = {  # pytorch-pretrained-BigGAN's configs, by output size
    128: dict(channel_width=128, attention_layer_position=8),
    256: dict(channel_width=128, attention_layer_position=8, layers=_DEEP_256_LAYERS),
    512: dict(
        channel_width=128, attention_layer_position=8, layers=[*_DEEP_256_LAYERS, (False, 1, 1), (True, 1, 1)]
    ),
}


def imagenet_class(value: Any, num_classes: int = 1000) -> int:
    """An ImageNet class index from an index or a name (``207``, ``"golden retriever"``)."""
    text = str(value).strip()
    if text.isdigit():
        index = int(text)
        if not 0 <= index < num_classes:
            raise GanzooError(f"class {index} is outside 0..{num_classes - 1}")
        return index
    from torchvision.models import ResNet18_Weights  # class names ship with torchvision, no download

    names = [n.lower() for n in ResNet18_Weights.IMAGENET1K_V1.meta["categories"]]
    if text.lower() in names:
        return names.index(text.lower())
    import difflib

    close = difflib.get_close_matches(text.lower(), names, n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise GanzooError(f"unknown ImageNet class {text!r}{hint} (or give the index 0-999)")


class BigGANDeepGenerator(GeneratorAdapter):
    """BigGAN-deep 128/256/512 (pytorch-pretrained-BigGAN layout): z in R^128, class fixed.

    ``--weights`` is the model folder (``pytorch_model.bin`` + ``config.json``), the weights file
    (``config.json`` is looked for beside it; else ``-g resolution=...`` picks the published config),
    or ``hf:OWNER/NAME/pytorch_model.bin[@REV]``. Latents are drawn from the normal truncated to
    [-2, 2] and scaled by ``truncation``, which also selects the batch-norm statistics.
    """

    takes_weights = True
    needs_weights = True
    pretrained = (
        PretrainedWeights(
            "biggan-deep-128",
            "hf:osanseviero/BigGAN-deep-128/pytorch_model.bin@c98e5e826ec6dc3dabaa01b7703d86c34fad5342",
            "DeepMind's BigGAN-deep 128 px (ImageNet), pytorch-pretrained-BigGAN layout, config.json beside",
            "apache-2.0",
            homepage="https://huggingface.co/osanseviero/BigGAN-deep-128",
        ),
    )
    default_weights = "biggan-deep-128"

    name = "biggan-deep"
    summary = "BigGAN-deep 128/256/512 (pytorch-pretrained-BigGAN layout), ImageNet class fixed"
    live_options = ("truncation",)  # zoo-dirs explore: a control each
    options = {
        "class": Option("207", "ImageNet class: index or name (207 = golden retriever)"),
        "truncation": Option(
            0.4,
            "truncation in (0, 1]: latent range and batch-norm statistics",
            minimum=0.0,
            maximum=1.0,
            exclusive_minimum=True,
        ),
        "resolution": Option(128, "128, 256 or 512 (when no config.json is found)", choices=(128, 256, 512)),
        "channel_width": Option(128, "base width (random init only; tests use small ones)", minimum=1),
    }
    recommended_steps = 200_000

    def __init__(self, weights: str | None = None, **options: Any) -> None:
        super().__init__(weights, **options)
        cfg = self.config
        path, config_data = None, None
        if weights is not None:
            local = Path(weights).expanduser()
            if local.is_dir():
                path = local / DEEP_WEIGHTS
                config_path = local / DEEP_CONFIG if (local / DEEP_CONFIG).is_file() else None
            else:
                path = fetch_file(weights)
                config_path = companion_file(weights, DEEP_CONFIG)
            if config_path is not None:
                try:
                    config_data = json.loads(config_path.read_text())
                except json.JSONDecodeError as exc:
                    raise CheckpointError(f"{config_path}: not JSON ({exc})") from None
        if config_data is None:
            config_data = {"output_dim": cfg["resolution"], **DEEP_RESOLUTIONS[cfg["resolution"]]}
            if weights is None:
                config_data["channel_width"] = cfg["channel_width"]
        self.model_config = BigGANDeepConfig.from_dict(config_data)
        self.net = BigGANDeep(self.model_config).eval()
        if path is not None:
            c = self.model_config
            self.load_checked(
                self.net,
                path,
                architecture=f"BigGAN-deep {c.output_dim} px (channel width {c.channel_width}, "
                f"{len(c.layers)} blocks, attention at {c.attention_layer_position}) in the "
                "pytorch-pretrained-BigGAN layout",
            )
        self.class_index = imagenet_class(cfg["class"], self.model_config.num_classes)
        one_hot = F.one_hot(torch.tensor([self.class_index]), self.model_config.num_classes).float()
        self.register_buffer("class_vector", one_hot)  # (1, num_classes)

    @property
    def latent_dim(self) -> int:
        return self.model_config.z_dim

    @property
    def image_size(self) -> int:
        return self.model_config.output_dim

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.empty(n, self.latent_dim, device=self.device)
        torch.nn.init.trunc_normal_(z, 0.0, 1.0, -2.0, 2.0, generator=generator)
        return z * float(self.config["truncation"])

    def shift_scale_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        # the prior BigGAN-deep was trained on (N(0, I) truncated to [-2, 2]), not the sampling truncation
        z = torch.empty(n, self.latent_dim, device=self.device)
        return torch.nn.init.trunc_normal_(z, 0.0, 1.0, -2.0, 2.0, generator=generator)

    def with_options(self, **changed: Any) -> GeneratorAdapter:
        if not set(changed) <= set(self.live_options):
            return super().with_options(**changed)
        return self.sharing_weights(changed)  # truncation changes no weight

    def render(self, latents: torch.Tensor) -> torch.Tensor:
        classes = self.class_vector.expand(latents.shape[0], -1)
        return self.net(latents, classes, float(self.config["truncation"]))

    def projection_start(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sample_latents(n, generator)  # draws of the (truncated) prior

    def latent_prior_loss(self, latents: torch.Tensor) -> torch.Tensor:
        # z = truncation * (N(0, 1) truncated to [-2, 2]): no mass beyond 2 * truncation
        bound = 2.0 * float(self.config["truncation"])
        return (latents.abs() - bound).clamp_min(0).square().mean(dim=1)

    def latent_weights(self) -> torch.Tensor:
        return self.net.generator.gen_z.weight()[:, : self.latent_dim]  # z's columns of [z, embedding]

    def early_features(self, latents: torch.Tensor) -> torch.Tensor:
        classes = self.class_vector.expand(latents.shape[0], -1)
        cond = torch.cat([latents, self.net.embeddings(classes)], dim=1)
        return self.net.generator.gen_z(cond)  # (n, 4 * 4 * 16 ch): the first layer, as GANSpace

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "class_index": self.class_index}


class BigGANGenerator(GeneratorAdapter):
    """The original BigGAN (BigGAN-PyTorch ``G_ema.pth`` layout; the paper's BigGAN-128): z in R^120.

    The configuration (resolution, width, z and embedding sizes, attention) is read off the
    checkpoint. Latents follow Voynov & Babenko: N(0, I), truncated to [-t, t] when
    ``truncation = t > 0``. The class is fixed (``-g class=239``).
    """

    takes_weights = True
    needs_weights = True
    pretrained = (
        PretrainedWeights(
            "biggan-128",
            None,
            "Brock et al.'s BigGAN 128 px ImageNet G_ema.pth (the paper's BigGAN-128)",
            "mit (BigGAN-PyTorch)",
            homepage="https://github.com/ajbrock/BigGAN-PyTorch (also GANLatentDiscovery's download.py)",
            paper=True,
        ),
    )

    name = "biggan"
    summary = "BigGAN-128/256/512 (BigGAN-PyTorch G_ema layout; the paper's ImageNet model), class fixed"
    live_options = ("truncation",)  # zoo-dirs explore: a control each
    options = {
        "class": Option("207", "ImageNet class: index or name (207 = golden retriever)"),
        "truncation": Option(
            0.0, "sample z from N(0, 1) truncated to [-t, t]; 0 = no truncation", minimum=0.0
        ),
        "resolution": Option(128, "random init only", choices=(128, 256, 512)),
        "ch": Option(96, "base width (random init only)", minimum=1),
    }
    recommended_steps = 200_000

    def __init__(self, weights: str | None = None, **options: Any) -> None:
        super().__init__(weights, **options)
        cfg = self.config
        if weights is None:
            self.model_config = BigGANConfig(resolution=cfg["resolution"], ch=cfg["ch"])
            self.net = BigGAN(self.model_config).eval()
        else:
            path = fetch_file(weights)
            state = read_weights(path)
            try:
                self.model_config = infer_config(state)
            except KeyError as exc:
                raise CheckpointError(
                    f"{path} is not a BigGAN generator in the BigGAN-PyTorch layout (no {exc.args[0]!r})"
                ) from None
            self.net = BigGAN(self.model_config).eval()
            c = self.model_config
            self.load_checked(
                self.net,
                path,
                state,
                architecture=f"BigGAN {c.resolution} px (G_ch {c.ch}, z {c.dim_z}, shared {c.shared_dim}, "
                f"attention at {list(c.attention)}) in the BigGAN-PyTorch layout",
            )
        self.class_index = imagenet_class(cfg["class"], self.model_config.n_classes)
        self.register_buffer("class_tensor", torch.tensor([self.class_index]))

    @property
    def latent_dim(self) -> int:
        return self.model_config.dim_z

    @property
    def image_size(self) -> int:
        return self.model_config.resolution

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        t = float(self.config["truncation"])
        z = torch.empty(n, self.latent_dim, device=self.device)
        if t > 0:
            return torch.nn.init.trunc_normal_(z, 0.0, 1.0, -t, t, generator=generator)
        return z.normal_(generator=generator)

    def shift_scale_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        # the N(0, I) BigGAN was trained on, not the sampling truncation (Voynov & Babenko's eps 6)
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    def with_options(self, **changed: Any) -> GeneratorAdapter:
        if not set(changed) <= set(self.live_options):
            return super().with_options(**changed)
        return self.sharing_weights(changed)  # truncation changes no weight

    def render(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents, self.class_tensor.expand(latents.shape[0]))

    def projection_start(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sample_latents(n, generator)  # draws of the (truncated) prior

    def latent_prior_loss(self, latents: torch.Tensor) -> torch.Tensor:
        # z ~ N(0, 1) truncated to [-t, t]: no mass beyond t (t = 0: untruncated, 3 sigma)
        t = float(self.config["truncation"])
        bound = t if t > 0 else 3.0
        return (latents.abs() - bound).clamp_min(0).square().mean(dim=1)

    def latent_weights(self) -> torch.Tensor:
        """Every weight that reads z, as rows over all D columns: the first linear layer reads chunk 0,
        the conditional batch-norm gains and biases of block i read chunk i + 1."""
        c, net = self.model_config, self.net
        rows = [F.pad(net.linear.normalised_weight(), (0, c.dim_z - c.z_chunk))]
        for i, blocklist in enumerate(net.blocks):
            start = (i + 1) * c.z_chunk
            for bn in (blocklist[0].bn1, blocklist[0].bn2):
                for layer in (bn.gain, bn.bias):
                    w = layer.normalised_weight()[:, c.shared_dim :]  # (C, z_chunk): the z part of [y, z_i]
                    rows.append(F.pad(w, (start, c.dim_z - start - c.z_chunk)))
        return torch.cat(rows)  # (N, dim_z)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "class_index": self.class_index}
