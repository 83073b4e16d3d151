"""The original BigGAN generator (Brock et al. 2019) in the BigGAN-PyTorch layout (``G_ema.pth``).

This is the BigGAN-128 that Voynov & Babenko and the paper used (ImageNet, G_ch 96, z in R^120 split
hierarchically into 6 chunks of 20, a shared 128-d class embedding). Names follow that state dict:

    shared.weight                               class embedding (n_classes, shared_dim)
    linear.{weight,bias,u0,sv0}                 SN linear: first z chunk -> 4 x 4 x 16 ch
    blocks.{i}.0.{conv1,conv2,conv_sc}          residual up-blocks (SN convs, with u0 / sv0 buffers)
    blocks.{i}.0.{bn1,bn2}.{gain,bias}          class-conditional BN: SN linears on [embedding, z chunk]
    blocks.{i}.0.{bn1,bn2}.stored_{mean,var}    their statistics
    blocks.{i}.1.{theta,phi,g,o,gamma}          self-attention after the block at the attention resolution
    output_layer.0.{gain,bias,stored_*}         final BN; output_layer.2: SN conv to RGB, then tanh

Spectral norm as BigGAN-PyTorch computes it at inference: one power-iteration step from the stored
``u0`` (without updating it), sigma = |normalize(u W) W^T|.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = {  # (in multipliers, out multipliers) of the blocks, by resolution
    128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1]),
    256: ([16, 16, 8, 8, 4, 2], [16, 8, 8, 4, 2, 1]),
    512: ([16, 16, 8, 8, 4, 2, 1], [16, 8, 8, 4, 2, 1, 1]),
}


@dataclass(frozen=True)
class BigGANConfig:
    resolution: int = 128
    ch: int = 96
    dim_z: int = 120
    shared_dim: int = 128
    n_classes: int = 1000
    attention: tuple[int, ...] = (64,)
    bn_eps: float = 1e-5
    sn_eps: float = 1e-6

    @property
    def num_slots(self) -> int:
        return len(WIDTHS[self.resolution][0]) + 1

    @property
    def z_chunk(self) -> int:
        return self.dim_z // self.num_slots


class SNMixin:
    """Spectral norm with BigGAN-PyTorch's buffers ``u0`` (1, out) and ``sv0`` (1,)."""

    sn_eps: float

    def _init_sn(self, out_features: int, eps: float) -> None:
        self.sn_eps = eps
        self.register_buffer("u0", torch.randn(1, out_features))
        self.register_buffer("sv0", torch.ones(1))

    def normalised_weight(self) -> torch.Tensor:
        w = self.weight
        mat = w.reshape(w.shape[0], -1)  # (out, in); reshape: the kernel may be channels-last
        with torch.no_grad():
            v = F.normalize(self.u0 @ mat, eps=self.sn_eps)  # (1, in)
            u = F.normalize(v @ mat.t(), eps=self.sn_eps)  # (1, out)
        sigma = ((v @ mat.t()) @ u.t()).squeeze()
        return w / sigma


class SNLinear(nn.Linear, SNMixin):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, eps: float = 1e-6) -> None:
        super().__init__(in_features, out_features, bias)
        self._init_sn(out_features, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalised_weight(), self.bias)


class SNConv2d(nn.Conv2d, SNMixin):
    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        padding: int = 1,
        bias: bool = True,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(in_ch, out_ch, kernel_size, padding=padding, bias=bias)
        self._init_sn(out_ch, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalised_weight(), self.bias, padding=self.padding)


class ConditionalBN(nn.Module):
    """BN with stored statistics, gain 1 + W_g y and bias W_b y (SN linears without bias)."""

    def __init__(self, channels: int, cond_dim: int, bn_eps: float, sn_eps: float) -> None:
        super().__init__()
        self.gain = SNLinear(cond_dim, channels, bias=False, eps=sn_eps)
        self.bias = SNLinear(cond_dim, channels, bias=False, eps=sn_eps)
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))
        self.eps = bn_eps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = F.batch_norm(x, self.stored_mean, self.stored_var, training=False, eps=self.eps)
        return out * (1 + self.gain(y))[:, :, None, None] + self.bias(y)[:, :, None, None]


class OutputBN(nn.Module):
    def __init__(self, channels: int, eps: float) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.stored_mean, self.stored_var, self.gain, self.bias, False, 0.0, self.eps)


class GBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, c: BigGANConfig) -> None:
        super().__init__()
        self.conv1 = SNConv2d(in_ch, out_ch, eps=c.sn_eps)
        self.conv2 = SNConv2d(out_ch, out_ch, eps=c.sn_eps)
        self.conv_sc = SNConv2d(in_ch, out_ch, 1, padding=0, eps=c.sn_eps)  # always: every block upsamples
        self.bn1 = ConditionalBN(in_ch, cond_dim, c.bn_eps, c.sn_eps)
        self.bn2 = ConditionalBN(out_ch, cond_dim, c.bn_eps, c.sn_eps)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2))


class Attention(nn.Module):
    def __init__(self, ch: int, eps: float) -> None:
        super().__init__()
        self.theta = SNConv2d(ch, ch // 8, 1, padding=0, bias=False, eps=eps)
        self.phi = SNConv2d(ch, ch // 8, 1, padding=0, bias=False, eps=eps)
        self.g = SNConv2d(ch, ch // 2, 1, padding=0, bias=False, eps=eps)
        self.o = SNConv2d(ch // 2, ch, 1, padding=0, bias=False, eps=eps)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        theta = self.theta(x).view(B, C // 8, H * W)
        phi = F.max_pool2d(self.phi(x), 2).view(B, C // 8, H * W // 4)
        g = F.max_pool2d(self.g(x), 2).view(B, C // 2, H * W // 4)
        beta = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)  # (B, HW, HW/4)
        return x + self.gamma * self.o(torch.bmm(g, beta.transpose(1, 2)).view(B, C // 2, H, W))


class BigGAN(nn.Module):
    """z ``(B, dim_z)``, class index ``(B,)`` -> image ``(B, 3, R, R)`` in [-1, 1]."""

    def __init__(self, c: BigGANConfig) -> None:
        super().__init__()
        self.config = c
        ins, outs = WIDTHS[c.resolution]
        cond_dim = c.shared_dim + c.z_chunk
        self.shared = nn.Embedding(c.n_classes, c.shared_dim)
        self.linear = SNLinear(c.z_chunk, ins[0] * c.ch * 16, eps=c.sn_eps)
        blocks = []
        for i, (a, b) in enumerate(zip(ins, outs, strict=True)):
            block = [GBlock(a * c.ch, b * c.ch, cond_dim, c)]
            if 8 * 2**i in c.attention:
                block.append(Attention(b * c.ch, c.sn_eps))
            blocks.append(nn.ModuleList(block))
        self.blocks = nn.ModuleList(blocks)
        self.output_layer = nn.Sequential(
            OutputBN(outs[-1] * c.ch, c.bn_eps), nn.ReLU(), SNConv2d(outs[-1] * c.ch, 3, eps=c.sn_eps)
        )

    def forward(self, z: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        c = self.config
        y = self.shared(classes)  # (B, shared_dim)
        chunks = torch.split(z, c.z_chunk, dim=1)
        h = self.linear(chunks[0]).view(z.shape[0], -1, 4, 4)
        for blocklist, chunk in zip(self.blocks, chunks[1:], strict=True):
            cond = torch.cat([y, chunk], dim=1)
            for layer in blocklist:
                h = layer(h, cond)
        return torch.tanh(self.output_layer(h))


def infer_config(state: dict[str, torch.Tensor]) -> BigGANConfig:
    """Resolution, width, z and embedding sizes and attention placement, read off a ``G_ema`` state dict."""
    try:
        n_blocks = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
        resolution = {5: 128, 6: 256, 7: 512}[n_blocks]
        ch = state["output_layer.2.weight"].shape[1] // WIDTHS[resolution][1][-1]
        chunk = state["linear.weight"].shape[1]
        shared = state["shared.weight"]
        attention = tuple(
            sorted(
                8 * 2 ** int(m.group(1)) for k in state if (m := re.fullmatch(r"blocks\.(\d+)\.1\.gamma", k))
            )
        )
    except (KeyError, StopIteration) as exc:
        raise KeyError(exc.args[0] if exc.args else "blocks") from None
    return BigGANConfig(resolution, ch, chunk * (n_blocks + 1), shared.shape[1], shared.shape[0], attention)
