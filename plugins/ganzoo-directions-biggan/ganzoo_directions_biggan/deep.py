"""BigGAN-deep (Brock et al. 2019) in the layout of pytorch-pretrained-BigGAN (``biggan-deep-128/256/512``).

Names follow that checkpoint (``pytorch_model.bin`` + ``config.json``):

    embeddings.weight                       class vector (float one-hot, 1000) -> 128, no bias
    generator.gen_z.*                       spectral-normalised linear, [z, class embedding] -> 4x4x16ch
    generator.layers.{i}                    bottleneck residual blocks (bn_0..3, conv_0..3), one of them
                                            replaced by self-attention at ``attention_layer_position``
    generator.bn, generator.conv_to_rgb     final batch norm, spectral-normalised conv, first 3 channels, tanh

Spectral normalisation is stored as ``weight_orig``, ``weight_u``, ``weight_v`` (torch's
``spectral_norm``); a frozen generator divides by sigma = u . (W v) with the stored vectors, which is
what torch does in eval mode. Batch norms hold statistics for 51 truncation values and pick (or blend)
the ones of the chosen truncation, exactly as the reference does — including its blending weights, which
put the fractional part on the lower index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


def _default_layers() -> list[tuple[bool, int, int]]:
    return [
        (False, 16, 16),
        (True, 16, 16),
        (False, 16, 16),
        (True, 16, 8),
        (False, 8, 8),
        (True, 8, 4),
        (False, 4, 4),
        (True, 4, 2),
        (False, 2, 2),
        (True, 2, 1),
    ]


@dataclass
class BigGANDeepConfig:
    """The reference's ``config.json`` fields (defaults: biggan-deep-128)."""

    output_dim: int = 128
    z_dim: int = 128
    class_embed_dim: int = 128
    channel_width: int = 128
    num_classes: int = 1000
    layers: list = field(default_factory=_default_layers)  # (upsample, in x ch, out x ch)
    attention_layer_position: int = 8
    eps: float = 1e-4
    n_stats: int = 51

    @classmethod
    def from_dict(cls, data: dict) -> BigGANDeepConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "layers" in known:
            known["layers"] = [tuple(layer) for layer in known["layers"]]
        return cls(**known)


class SNLinear(nn.Module):
    """Linear layer with a spectral-normalised weight (stored u, v; no power iteration: frozen)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.weight_orig = nn.Parameter(torch.randn(out_features, in_features) / math.sqrt(in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.register_buffer("weight_u", F.normalize(torch.randn(out_features), dim=0))
        self.register_buffer("weight_v", F.normalize(torch.randn(in_features), dim=0))

    def weight(self) -> torch.Tensor:
        w = self.weight_orig
        sigma = torch.dot(self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v))
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)


class SNConv2d(SNLinear):
    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, padding: int = 0, bias: bool = True
    ) -> None:
        super().__init__(in_ch * kernel_size**2, out_ch, bias)
        self.weight_orig = nn.Parameter(self.weight_orig.data.view(out_ch, in_ch, kernel_size, kernel_size))
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


class TruncationBatchNorm(nn.Module):
    """Batch norm with per-truncation statistics; class-conditional gain and bias when ``cond_dim``."""

    def __init__(self, channels: int, cond_dim: int | None, n_stats: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("running_means", torch.zeros(n_stats, channels))
        self.register_buffer("running_vars", torch.ones(n_stats, channels))
        self.step_size = 1.0 / (n_stats - 1)
        self.conditional = cond_dim is not None
        if self.conditional:
            self.scale = SNLinear(cond_dim, channels, bias=False)
            self.offset = SNLinear(cond_dim, channels, bias=False)
        else:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))

    def statistics(self, truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
        coef, start = math.modf(truncation / self.step_size)
        start = int(start)
        if coef == 0.0:
            return self.running_means[start], self.running_vars[start]
        # the reference's blend: fractional part on the lower index
        mean = self.running_means[start] * coef + self.running_means[start + 1] * (1 - coef)
        var = self.running_vars[start] * coef + self.running_vars[start + 1] * (1 - coef)
        return mean, var

    def forward(self, x: torch.Tensor, truncation: float, cond: torch.Tensor | None = None) -> torch.Tensor:
        mean, var = self.statistics(truncation)  # (C,)
        if self.conditional:
            gain = 1 + self.scale(cond)[:, :, None, None]  # (B, C, 1, 1)
            bias = self.offset(cond)[:, :, None, None]
            return (x - mean[None, :, None, None]) / torch.sqrt(
                var[None, :, None, None] + self.eps
            ) * gain + bias
        return F.batch_norm(x, mean, var, self.weight, self.bias, training=False, eps=self.eps)


class SelfAttention(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.snconv1x1_theta = SNConv2d(channels, channels // 8, 1, bias=False)
        self.snconv1x1_phi = SNConv2d(channels, channels // 8, 1, bias=False)
        self.snconv1x1_g = SNConv2d(channels, channels // 2, 1, bias=False)
        self.snconv1x1_o_conv = SNConv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        theta = self.snconv1x1_theta(x).view(B, C // 8, H * W)  # (B, C/8, N)
        phi = F.max_pool2d(self.snconv1x1_phi(x), 2).view(B, C // 8, H * W // 4)  # (B, C/8, N/4)
        attn = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)  # (B, N, N/4)
        g = F.max_pool2d(self.snconv1x1_g(x), 2).view(B, C // 2, H * W // 4)  # (B, C/2, N/4)
        out = torch.bmm(g, attn.transpose(1, 2)).view(B, C // 2, H, W)
        return x + self.gamma * self.snconv1x1_o_conv(out)


class GenBlock(nn.Module):
    """Bottleneck residual block: 1x1 down to in/4, two 3x3 (upsampling before the first), 1x1 out."""

    def __init__(
        self, in_ch: int, out_ch: int, cond_dim: int, upsample: bool, n_stats: int, eps: float
    ) -> None:
        super().__init__()
        mid = in_ch // 4
        self.upsample = upsample
        self.drop_channels = in_ch != out_ch
        self.bn_0 = TruncationBatchNorm(in_ch, cond_dim, n_stats, eps)
        self.conv_0 = SNConv2d(in_ch, mid, 1)
        self.bn_1 = TruncationBatchNorm(mid, cond_dim, n_stats, eps)
        self.conv_1 = SNConv2d(mid, mid, 3, padding=1)
        self.bn_2 = TruncationBatchNorm(mid, cond_dim, n_stats, eps)
        self.conv_2 = SNConv2d(mid, mid, 3, padding=1)
        self.bn_3 = TruncationBatchNorm(mid, cond_dim, n_stats, eps)
        self.conv_3 = SNConv2d(mid, out_ch, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, truncation: float) -> torch.Tensor:
        h = self.conv_0(F.relu(self.bn_0(x, truncation, cond)))
        h = F.relu(self.bn_1(h, truncation, cond))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv_1(h)
        h = self.conv_2(F.relu(self.bn_2(h, truncation, cond)))
        h = self.conv_3(F.relu(self.bn_3(h, truncation, cond)))
        skip = x[:, : x.shape[1] // 2] if self.drop_channels else x
        if self.upsample:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        return h + skip


class Generator(nn.Module):
    def __init__(self, c: BigGANDeepConfig) -> None:
        super().__init__()
        self.config = c
        ch, cond_dim = c.channel_width, c.z_dim * 2
        self.gen_z = SNLinear(cond_dim, 4 * 4 * 16 * ch)
        layers: list[nn.Module] = []
        for i, (upsample, in_mult, out_mult) in enumerate(c.layers):
            if i == c.attention_layer_position:
                layers.append(SelfAttention(ch * in_mult))
            layers.append(GenBlock(ch * in_mult, ch * out_mult, cond_dim, upsample, c.n_stats, c.eps))
        self.layers = nn.ModuleList(layers)
        self.bn = TruncationBatchNorm(ch, None, c.n_stats, c.eps)
        self.conv_to_rgb = SNConv2d(ch, ch, 3, padding=1)

    def forward(self, cond: torch.Tensor, truncation: float) -> torch.Tensor:
        ch = self.config.channel_width
        h = self.gen_z(cond).view(-1, 4, 4, 16 * ch).permute(0, 3, 1, 2)  # TF (B, H, W, C) order
        for layer in self.layers:
            h = layer(h, cond, truncation) if isinstance(layer, GenBlock) else layer(h)
        h = self.conv_to_rgb(F.relu(self.bn(h, truncation)))
        return torch.tanh(h[:, :3])


class BigGANDeep(nn.Module):
    """z ``(B, z_dim)``, class vector ``(B, num_classes)`` -> image ``(B, 3, R, R)`` in [-1, 1]."""

    def __init__(self, config: BigGANDeepConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = nn.Linear(config.num_classes, config.z_dim, bias=False)
        self.generator = Generator(config)

    def forward(self, z: torch.Tensor, class_vector: torch.Tensor, truncation: float) -> torch.Tensor:
        if not 0 < truncation <= 1:
            raise ValueError(f"truncation must be in (0, 1], got {truncation}")
        return self.generator(torch.cat([z, self.embeddings(class_vector)], dim=1), truncation)
