"""StyleGAN2 generator (Karras et al. 2020), config-f and any size, in plain PyTorch.

Module and parameter names follow the widely shared rosinality checkpoint layout (``g_ema``):

    style.{1..n_mlp}             mapping network: PixelNorm, then n_mlp equalised linear layers (lr x0.01)
    input.input                  the learned 4 x 4 constant
    conv1, to_rgb1               the 4 x 4 styled conv and its RGB output
    convs.{2i}, convs.{2i+1}     per resolution 8..size: an upsampling styled conv, then a styled conv
    to_rgbs.{i}                  RGB output per resolution, added to the upsampled skip
    noises.noise_{j}             fixed noise maps (buffers), one per styled conv

Maths: equalised learning rate (weights scaled by 1/sqrt(fan_in) at use), weight modulation and
demodulation, noise injection (learned per-layer strength), bias + leaky ReLU(0.2) * sqrt(2), upsampling
by a transposed convolution followed by a [1, 3, 3, 1] blur (upfirdn2d), skip RGB outputs. No compiled
ops: upfirdn2d is written with ``conv2d``/``conv_transpose2d``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

BLUR_KERNEL = (1, 3, 3, 1)
SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class StyleGAN2Config:
    """``size`` a power of two >= 8; ``channel_multiplier`` 2 for config-f; ``max_channels`` 512."""

    size: int = 1024
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    max_channels: int = 512
    lr_mlp: float = 0.01
    conv_clamp: float | None = None  # NVIDIA's ADA networks clamp activations to +-256; rosinality's do not
    widths: tuple[tuple[int, int], ...] | None = None  # ((resolution, channels), ...) read off a checkpoint

    def channels(self, resolution: int) -> int:
        if self.widths is not None:
            return dict(self.widths)[resolution]
        base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
        if resolution <= 32:
            return min(base[resolution], self.max_channels)
        return min(base[resolution] * self.channel_multiplier, self.max_channels)

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def num_layers(self) -> int:
        """Styled convs (each with a noise map)."""
        return (self.log_size - 2) * 2 + 1

    @property
    def n_latent(self) -> int:
        """Entries of W+ (styles consumed by convs and RGB layers)."""
        return self.log_size * 2 - 2


def blur_kernel_2d(scale: float = 1.0) -> torch.Tensor:
    k = torch.tensor(BLUR_KERNEL, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum() * scale


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative pads crop), and filter with ``kernel`` (per channel).

    x: (B, C, H, W) -> (B, C, H * up + pad0 + pad1 - kh + 1, ...)
    """
    B, C, H, W = x.shape
    if up > 1:  # zero insertion: each pixel followed by up - 1 zeros, in both directions
        x = F.pad(x.view(B, C, H, 1, W, 1), [0, up - 1, 0, 0, 0, up - 1]).view(B, C, H * up, W * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0 or p1 < 0:
        x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(C, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=C)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate; ``activation`` adds bias + leaky ReLU * sqrt(2)."""

    def __init__(
        self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activation: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return F.leaky_relu(out + self.bias * self.lr_mul, 0.2) * SQRT2
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class Blur(nn.Module):
    def __init__(self, pad: tuple[int, int], scale: float) -> None:
        super().__init__()
        self.register_buffer("kernel", blur_kernel_2d(scale))
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """x2 upsampling with the blur kernel (for the RGB skip path)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", blur_kernel_2d(4.0))
        p = len(BLUR_KERNEL) - 2
        self.pad = ((p + 1) // 2 + 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=2, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Convolution whose input channels are scaled by a style, output demodulated (batch-shared weight)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2
        if upsample:
            p = (len(BLUR_KERNEL) - 2) - (kernel_size - 1)
            self.blur = Blur(((p + 1) // 2 + 1, p // 2 + 1), scale=4.0)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # x: (B, in, H, W), style: (B, style_dim)
        B = x.shape[0]
        weight = self.scale * self.weight[0]  # (out, in, k, k)
        s = self.modulation(style)  # (B, in)
        x = x * s[:, :, None, None]
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
            out = self.blur(out)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # sum over (in, k, k) of (w * s)^2, per sample and output channel: (B, out)
            d = torch.rsqrt((weight.square().sum((2, 3))[None] * s[:, None, :].square()).sum(2) + 1e-8)
            out = out * d.view(B, self.out_ch, 1, 1)
        return out


class NoiseInjection(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    """bias, then leaky ReLU(0.2), times sqrt(2) (the 'fused' op, written plainly); optional clamp."""

    def __init__(self, channels: int, clamp: float | None = None) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.clamp = clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2) * SQRT2
        return out if self.clamp is None else out.clamp(-self.clamp, self.clamp)


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    def __init__(
        self, in_ch: int, out_ch: int, style_dim: int, upsample: bool = False, clamp: float | None = None
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch, clamp)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True, clamp: float | None = None) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.clamp = clamp

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if self.clamp is not None:
            out = out.clamp(-self.clamp, self.clamp)
        return out if skip is None else out + self.upsample(skip)


class Generator(nn.Module):
    """``mapping(z) -> w``; ``synthesis(w_plus) -> image``; W+ is ``(B, n_latent, style_dim)``."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = c = config
        self.style = nn.Sequential(
            PixelNorm(),
            *[
                EqualLinear(c.style_dim, c.style_dim, lr_mul=c.lr_mlp, activation=True)
                for _ in range(c.n_mlp)
            ],
        )
        self.input = ConstantInput(c.channels(4))
        self.conv1 = StyledConv(c.channels(4), c.channels(4), c.style_dim, clamp=c.conv_clamp)
        self.to_rgb1 = ToRGB(c.channels(4), c.style_dim, upsample=False, clamp=c.conv_clamp)
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # empty; kept for the layout
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for j in range(c.num_layers):
            res = 2 ** ((j + 5) // 2)
            self.noises.register_buffer(f"noise_{j}", torch.randn(1, 1, res, res))
        in_ch = c.channels(4)
        for i in range(3, c.log_size + 1):
            out_ch = c.channels(2**i)
            self.convs.append(StyledConv(in_ch, out_ch, c.style_dim, upsample=True, clamp=c.conv_clamp))
            self.convs.append(StyledConv(out_ch, out_ch, c.style_dim, clamp=c.conv_clamp))
            self.to_rgbs.append(ToRGB(out_ch, c.style_dim, clamp=c.conv_clamp))
            in_ch = out_ch

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z ``(B, style_dim)`` -> w ``(B, style_dim)``."""
        return self.style(z)

    #: recompute each resolution block in the backward pass instead of keeping its activations
    #: (activation checkpointing per block: memory of one block at a time, one extra forward)
    checkpoint_blocks: bool = False

    def synthesis(self, w_plus: torch.Tensor) -> torch.Tensor:
        """W+ ``(B, n_latent, style_dim)`` -> image ``(B, 3, size, size)`` (roughly in [-1, 1])."""
        B = w_plus.shape[0]
        noise = [getattr(self.noises, f"noise_{j}") for j in range(self.config.num_layers)]
        out = self.conv1(self.input(B), w_plus[:, 0], noise[0])
        skip = self.to_rgb1(out, w_plus[:, 1])
        i = 1
        checkpointed = self.checkpoint_blocks and torch.is_grad_enabled()
        for conv_up, conv, noise1, noise2, to_rgb in zip(
            self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2], self.to_rgbs, strict=True
        ):

            def block(out, skip, w, conv_up=conv_up, conv=conv, noise1=noise1, noise2=noise2, to_rgb=to_rgb):
                out = conv_up(out, w[:, 0], noise1)  # w: (B, 3, style_dim), the block's W+ entries
                out = conv(out, w[:, 1], noise2)
                return out, to_rgb(out, w[:, 2], skip)

            w = w_plus[:, i : i + 3]
            if checkpointed:
                out, skip = torch.utils.checkpoint.checkpoint(block, out, skip, w, use_reentrant=False)
            else:
                out, skip = block(out, skip, w)
            i += 2
        return skip

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Mean w over ``n`` samples, ``(style_dim,)`` (when a checkpoint has no ``latent_avg``)."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.config.style_dim, generator=gen).to(self.input.input.device)
        return self.mapping(z).mean(0)
