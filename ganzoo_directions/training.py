"""The one training loop every trained method shares.

A frozen generator G, a deformator A and a reconstructor R. Each step draws B latents z and, for each,
S shifts (k_s, eps_s) (S = 1 for Voynov & Babenko, S = 2 for the paper's consecutive shifts), renders

    x_0 = G(z)   (no autograd graph)
    x_s = G(z + A(k_1, eps_1) + ... + A(k_s, eps_s))     s = 1..S   (one batched generator call)

and asks R to recover (k_s, eps_s) from each pair (x_{s-1}, x_s). The loss is, summed over the S pairs,
CE(k) + lambda * |eps_hat - eps|, plus whatever regulariser the method adds (the centroid loss).

Checkpoints are written atomically every ``checkpoint_every`` steps, at the end and on Ctrl-C; a
resumed run reproduces the uninterrupted one exactly (same seed, same device).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .deformators import DEFORMATORS, INITS, Deformator, build_deformator, sample_magnitudes
from .errors import GanzooError, RunFolderError, TrainingDivergedError
from .files import atomic_torch_save, atomic_write_bytes
from .interfaces import DirectionMethod, DiscoveryResult, GeneratorAdapter, Option
from .reconstructors import build_reconstructor, choose_reconstructor, input_size
from .settings import RunSettings, SilentReporter, resume_differences

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"


class TrainedMethod(DirectionMethod):
    """A method trained with the shared loop. Subclasses choose the number of consecutive shifts,
    the default deformator, the magnitude-loss weight lambda, and may add a regulariser.

    Hyper-parameters every trained method has (``--param KEY=VALUE``):
    ``deformator`` (linear, unit, ortho, mlp), ``hidden`` (MLP width), ``shift_weight`` (lambda).
    """

    shifts_per_sample: ClassVar[int] = 1
    hyperparameters: ClassVar[Mapping[str, Option]] = {}
    trained: ClassVar[bool] = True
    #: names of the statistics :meth:`objective` returns, in order (logged every ``log_every`` steps;
    #: the progress line shows ``loss``, ``acc`` as RCA, ``mae`` as |eps err|, others by name)
    statistics: ClassVar[tuple[str, ...]] = ("loss", "ce", "mae", "reg", "acc")
    #: whether the image network trained with A is a reconstructor R (predicts k and eps from a pair):
    #: then the run measures RCA with it and saves it; a method with its own image network (DisCo's
    #: encoder) sets False
    reconstructs: ClassVar[bool] = True

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        if self.hparams.get("orthogonality") and self.shifts_per_sample < 2:
            raise GanzooError(
                f"method {self.name!r}: orthogonality compares the changes of two consecutive shifts; "
                "use a method with two shifts per sample (two-shift, centroid)"
            )

    @classmethod
    def common_hyperparameters(cls, deformator: str, shift_weight: float) -> dict[str, Option]:
        """The hyper-parameters every trained method has, with the method's defaults."""
        return {
            "deformator": Option(deformator, "parametrisation of A", choices=tuple(DEFORMATORS)),
            "hidden": Option(1024, "hidden width of the 'mlp' deformator", minimum=1, maximum=65536),
            "unit_shift": Option(
                False, "'mlp' deformator: shifts of length |eps| (it learns directions only)"
            ),
            "init": Option(
                "identity",
                "linear deformators: start at the latent axes, a random basis, or the directions of a "
                "closed-form method (e.g. sefa, ganspace)",
            ),
            "shift_weight": Option(
                shift_weight, "lambda, weight of the magnitude loss |eps_hat - eps|", minimum=0.0
            ),
            "orthogonality": Option(
                0.0,
                "weight of the image-space orthogonality loss: mean cos^2 between the image changes of "
                "two different directions at (nearly) the same latent; needs two shifts per sample",
                minimum=0.0,
            ),
        }

    def build_deformator(self, num_directions: int, latent_dim: int) -> Deformator:
        kind = self.hparams["deformator"]
        if kind == "mlp":
            extra = {"hidden": self.hparams["hidden"], "unit_shift": self.hparams["unit_shift"]}
        else:
            init = self.hparams["init"]
            extra = {"init": init if init in INITS else "identity"}
        return build_deformator(kind, num_directions, latent_dim, **extra)

    #: the closed-form method ``-p init=METHOD`` names, resolved by the host before training
    #: (:func:`ganzoo_directions.runs.build_method`); ``None`` for the deformator's own inits
    start_from: DirectionMethod | None = None

    def starts_from(self) -> str | None:
        """The closed-form method ``-p init`` names, or ``None`` for one of the deformator's inits."""
        init = self.hparams["init"]
        return None if init in INITS else init

    def set_start(self, method: DirectionMethod) -> None:
        """Start from ``method``'s directions (the one :meth:`starts_from` names)."""
        if method.trained:
            raise GanzooError(
                f"init={method.name}: a trained method cannot be a starting point; use a closed-form one"
            )
        if self.hparams["deformator"] == "mlp":
            raise GanzooError("init=METHOD needs a linear deformator (-p deformator=ortho, unit or linear)")
        self.start_from = method

    def initial_directions(self, generator: GeneratorAdapter, settings: RunSettings) -> torch.Tensor | None:
        """``(K, D)`` directions to start the deformator from, or ``None`` (its own init). With
        ``-p init=METHOD``, the directions of the closed-form method the host resolved
        (:meth:`set_start`)."""
        if self.starts_from() is None:
            return None
        if self.start_from is None:
            raise GanzooError(
                f"init={self.starts_from()}: build the method with ganzoo_directions.runs.build_method, "
                "which resolves the registered method it names"
            )
        return self.start_from.discover(generator, settings).directions

    def regularizer(self, k: torch.Tensor, eps: torch.Tensor, codes: torch.Tensor) -> torch.Tensor | None:
        """An extra loss term on the shift codes of a step, or ``None``.

        :param k: ``(N,)`` direction indices; :param eps: ``(N,)`` magnitudes;
        :param codes: ``(N, D)`` shifts A(k, eps) (with autograd graph).
        """
        return None

    def image_regularizer(
        self, k: torch.Tensor, before: torch.Tensor, after: torch.Tensor
    ) -> torch.Tensor | None:
        """An extra loss term on the images of a step, or ``None`` (then nothing is computed).

        With ``orthogonality`` > 0 and S >= 2 shifts per sample: the mean squared cosine between the
        changes of consecutive shifts along different directions (an image-space orthogonality penalty,
        in the spirit of OroJaR, Wei et al. 2021; docs/results.md measures it).

        :param k: ``(B, S)`` direction indices; :param before: ``(B, S, C, H, W)`` x_{s-1};
        :param after: ``(B, S, C, H, W)`` x_s (with autograd graph).
        """
        weight = self.hparams.get("orthogonality", 0.0)
        if not weight or after.shape[1] < 2:
            return None
        flat = (after - before).flatten(2).float()  # (B, S, C*H*W): the image changes
        cos = F.cosine_similarity(flat[:, 1:], flat[:, :-1], dim=2)  # (B, S-1)
        different = (k[:, 1:] != k[:, :-1]).float()  # (B, S-1); same direction: no constraint
        return weight * (cos.square() * different).sum() / different.sum().clamp(min=1)

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors the method keeps between steps (saved in checkpoints)."""
        return {}

    def load_extra_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore :meth:`extra_state` from a checkpoint."""

    def reset_state(self, num_directions: int, latent_dim: int, device: torch.device) -> None:
        """Prepare the method's own state before the first step."""

    def build_image_model(self, generator: GeneratorAdapter, settings: RunSettings) -> torch.nn.Module | None:
        """The network on images trained jointly with A, or ``None``: the run's reconstructor R
        (``--reconstructor``). A method whose :meth:`objective` needs another network builds it here
        (it is checkpointed, wrapped for data-parallel runs and stepped like R); one that trains A
        alone returns a module without parameters (``torch.nn.Identity()``)."""
        return None

    def objective(self, trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        """One step's loss (with autograd graph) and its :attr:`statistics` as one ``(len(statistics),)``
        tensor (detached, no host sync). The default is the reconstruction objective of Voynov &
        Babenko and the paper (:meth:`Trainer.reconstruction_objective`); the trainer then steps A and
        the image network."""
        return trainer.reconstruction_objective()

    def discover(self, generator: GeneratorAdapter, settings: RunSettings) -> DiscoveryResult:
        return Trainer(self, generator, settings).run()


class NeverFails:
    """A reporter whose output can never end a run: a closed pipe or terminal (``discover ... | head``)
    silences it from then on instead of raising in the middle of training."""

    def __init__(self, reporter: Any) -> None:
        self.reporter, self.broken = reporter, False

    def _call(self, name: str, *args: Any) -> None:
        if self.broken:
            return
        try:
            getattr(self.reporter, name)(*args)
        except OSError:  # BrokenPipeError, EIO from a hung-up terminal, ENOSPC on a redirected file
            self.broken = True

    def start(self, total_steps: int, first_step: int) -> None:
        self._call("start", total_steps, first_step)

    def advance(self, step: int, stats: Any) -> None:
        self._call("advance", step, stats)

    def message(self, text: str) -> None:
        self._call("message", text)

    def finish(self) -> None:
        if hasattr(self.reporter, "finish"):
            self._call("finish")


#: signals that stop a run the way Ctrl-C does: a checkpoint, then the resume line (a scheduler's
#: SIGTERM, a closed terminal's SIGHUP)
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def stop_signals_interrupt() -> None:
    """Make SIGTERM and SIGHUP raise ``KeyboardInterrupt`` as Ctrl-C does, outside the training loop
    too (building the generator, the final RCA): a stopped run always ends the same way."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.default_int_handler)


class _StopOnInterrupt:
    """Turn Ctrl-C (and SIGTERM, SIGHUP) into a request that the loop honours between two steps, so
    the checkpoint it then writes is a consistent state (a second signal interrupts at once)."""

    def __enter__(self) -> _StopOnInterrupt:
        self.requested = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._handle) for number in STOP_SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)


class _Window:
    """Sums of step statistics between two log lines, kept on the device (no host sync per step)."""

    def __init__(self, names: tuple[str, ...], device: torch.device) -> None:
        self.names = names
        self.sums = torch.zeros(len(self.names), device=device)
        self.count = 0

    def add(self, values: torch.Tensor) -> None:
        self.sums += values.detach()
        self.count += 1

    def flush(self) -> dict[str, float]:
        means = (self.sums / max(self.count, 1)).tolist()
        self.sums.zero_()
        self.count = 0
        return dict(zip(self.names, means, strict=True))


def join_process_group(device: str) -> tuple[str, int]:
    """Join the torchrun process group: NCCL on CUDA (one GPU per local rank), gloo on CPU.
    Returns the device this process trains on and its rank."""
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        atexit.register(_leave_process_group)
    return device, dist.get_rank()


def _leave_process_group() -> None:
    """At exit, every rank waits for the others (rank 0 evaluates and writes after training while the
    others are done), then leaves the group. A rank that exits while a peer still holds the gloo
    connection can abort ("terminate called without an active exception", seen in CI)."""
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def distributed_context() -> tuple[int, int]:
    """``(rank, world_size)`` of the current torch.distributed group, ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def adam(params: Iterable[torch.nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one (CPU, CUDA): one pass over all tensors instead of
    a Python loop per tensor (measured on CPU: the optimiser steps of two-shift 2.2 ms -> 0.8 ms)."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(params, lr=lr, fused=fused)


def to_memory_format(
    module: torch.nn.Module, memory_format: torch.memory_format = torch.channels_last
) -> None:
    """Store the 4-D parameters and buffers (convolution kernels) of `module` in `memory_format`, in place.

    `Module.to(memory_format=...)` also converts 5-D tensors and fails on them (StyleGAN2's modulated
    kernels are (1, out, in, k, k)); only the 4-D ones matter for cuDNN/oneDNN convolutions. The
    tensors get the layout's canonical strides: ``.contiguous()`` leaves a 1x1 kernel's contiguous
    strides as they are (the bytes are the same), while autograd returns its gradient with the
    canonical ones, which under DDP mismatched the bucket views ("Grad strides do not match").
    """
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.dim() == 4:
            canonical = torch.empty(
                tensor.shape, dtype=tensor.dtype, device=tensor.device, memory_format=memory_format
            )
            tensor.data = canonical.copy_(tensor.data)


class Trainer:
    """Runs one :class:`TrainedMethod` on one generator (see the module docstring).

    Under ``torchrun`` (an initialised process group) the deformator and reconstructor are wrapped in
    DistributedDataParallel: every rank draws the *global* batch of latents, directions and magnitudes
    from the shared seed and keeps its own slice, so world size W with batch B per rank computes what
    one process computes with batch W * B; gradients are averaged across ranks; only rank 0 writes.
    """

    def __init__(self, method: TrainedMethod, generator: GeneratorAdapter, settings: RunSettings) -> None:
        self.method, self.G, self.s = method, generator, settings
        generator.requires_grad_(False)  # G is frozen: no gradient is kept for its weights
        self.device = torch.device(settings.device)
        self.rank, self.world = distributed_context()
        self.K, self.D = settings.num_directions, generator.latent_dim
        torch.manual_seed(settings.seed)
        self.A = method.build_deformator(self.K, self.D).to(self.device)
        start = method.initial_directions(generator, settings)
        if start is not None:
            if tuple(start.shape) != (self.K, self.D):
                raise GanzooError(
                    f"initial directions have shape {tuple(start.shape)}, need {(self.K, self.D)}"
                )
            self.A.start_from(start.to(self.device))
        image_model = method.build_image_model(generator, settings)
        if image_model is None:
            size = input_size(settings.reconstructor_size, generator.image_size)  # None: as rendered
            kind = choose_reconstructor(settings.reconstructor, size or generator.image_size)
            image_model = build_reconstructor(kind, self.K, generator.image_channels, input_size=size)
        self.R = image_model.to(self.device)  # R, or the method's own image network
        if settings.channels_last:
            to_memory_format(self.R)
            to_memory_format(generator)
        # --grad-checkpoint: per synthesis block where the adapter can, else the whole shifted render
        self.block_checkpointing = settings.grad_checkpoint and generator.checkpoint_blocks(True)
        self.opt_A = adam(self.A.parameters(), settings.lr, self.device)
        # a method that trains A alone builds an image model without parameters: nothing to step
        trains_r = any(True for _ in self.R.parameters())
        self.opt_R = adam(self.R.parameters(), settings.lr, self.device) if trains_r else None
        self.rng = torch.Generator(self.device).manual_seed(settings.seed + 1)
        method.reset_state(self.K, self.D, self.device)
        self.window = _Window(method.statistics, self.device)
        self.step = 0
        self.last_stats: dict[str, float] = {}  # the latest log line's statistics
        self.run_dir = Path(settings.run_dir) if settings.run_dir is not None and self.rank == 0 else None
        self.resume_dir = Path(settings.run_dir) if settings.run_dir is not None else None
        amp = settings.amp if settings.amp != "auto" else ("bf16" if self.device.type == "cuda" else "off")
        if amp not in ("bf16", "off"):
            raise GanzooError(f"amp must be auto, bf16 or off, got {settings.amp!r}")
        self.amp_dtype = torch.bfloat16 if amp == "bf16" else None
        # the modules the step calls; DDP and torch.compile wrap these, checkpoints save A and R
        self.A_step, self.R_step = self.A, self.R
        self.render_shifted = generator.render_shifted
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.A_step = DDP(self.A, device_ids=ids)
            if self.opt_R is not None:
                self.R_step = DDP(self.R, device_ids=ids)
        if settings.compile:
            self.R_step = torch.compile(self.R_step)
            self.render_shifted = torch.compile(generator.render_shifted)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The run's precision (bf16 autocast on CUDA by default, else nothing)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def local(self, t: torch.Tensor, per_rank: int | None = None) -> torch.Tensor:
        """This rank's slice of a tensor drawn for the global batch (``per_rank`` rows each, by default
        the run's batch): every rank draws the same global tensor from the shared seed."""
        n = self.s.batch_size if per_rank is None else per_rank
        return t[self.rank * n : (self.rank + 1) * n]

    # -- one step ---------------------------------------------------------------------------------
    def train_step(self) -> torch.Tensor:
        """One optimisation step; returns the step's statistics as a device tensor (no sync)."""
        loss, stats = self.method.objective(self)
        self.opt_A.zero_grad(set_to_none=True)
        if self.opt_R is not None:
            self.opt_R.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_A.step()
        if self.opt_R is not None:
            self.opt_R.step()
        return stats

    def render_pairs(self, z: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """``(n, D)`` latents and shifts -> ``(n, C, H, W)`` shifted images with autograd graph to the
        shifts, under the run's precision and activation checkpointing (every objective renders
        shifted images through this)."""
        with self.autocast():
            if self.s.grad_checkpoint and not self.block_checkpointing:  # the whole render at once
                return checkpoint(self.render_shifted, z, shifts, use_reentrant=False)
            return self.render_shifted(z, shifts)

    def reconstruction_objective(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Voynov & Babenko's objective, with S consecutive shifts per sample (the paper's two-shift):
        R predicts k and eps of each pair; loss S * (CE + lambda |eps_hat - eps|) + the method's
        regularisers. Statistics: loss, ce, mae, reg, acc."""
        G, A, R, s = self.G, self.A_step, self.R_step, self.s
        B, S, W = s.batch_size, self.method.shifts_per_sample, self.world
        z = self.local(G.sample_latents(B * W, self.rng))  # (B, D)
        k = self.local(torch.randint(0, self.K, (B * W, S), generator=self.rng, device=self.device))  # (B, S)
        eps = self.local(sample_magnitudes((B * W, S), s.eps_max, s.eps_min, self.rng, self.device))  # (B, S)

        codes = A(k.reshape(-1), eps.reshape(-1))  # (B*S, D)
        total = codes.view(B, S, -1).cumsum(dim=1)  # (B, S, D): s_1, s_1 + s_2, ...
        z_rep = z[:, None, :].expand(B, S, -1).reshape(B * S, -1)  # (B*S, D)
        with self.autocast():
            with torch.no_grad():
                x0 = G.render(z)  # (B, C, H, W)
            flat = self.render_pairs(z_rep, total.reshape(B * S, -1))  # (B*S, C, H, W)
            xs = flat.view(B, S, *x0.shape[1:])  # (B, S, C, H, W)
            before = torch.cat([x0[:, None], xs[:, :-1]], dim=1)  # (B, S, C, H, W): x_{s-1}
            logits, eps_hat = R(before.flatten(0, 1), xs.flatten(0, 1))  # (B*S, K), (B*S,)
        logits, eps_hat = logits.float(), eps_hat.float()  # losses and metrics in fp32

        k_flat, eps_flat = k.reshape(-1), eps.reshape(-1)
        ce = F.cross_entropy(logits, k_flat)
        mae = (eps_hat - eps_flat).abs().mean()
        loss = S * (ce + self.method.hparams["shift_weight"] * mae)  # summed over the S pairs
        reg = self.method.regularizer(k_flat, eps_flat, codes)
        image_reg = self.method.image_regularizer(k, before, xs)
        if image_reg is not None:
            reg = image_reg if reg is None else reg + image_reg
        if reg is not None:
            loss = loss + reg
        acc = (logits.argmax(dim=1) == k_flat).float().mean()
        reg_value = reg.detach() if reg is not None else torch.zeros((), device=self.device)
        return loss, torch.stack([loss.detach(), ce.detach(), mae.detach(), reg_value, acc])

    # -- checkpoints ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "deformator": self.A.state_dict(),
            "reconstructor": self.R.state_dict(),
            "opt_deformator": self.opt_A.state_dict(),
            "opt_reconstructor": self.opt_R.state_dict() if self.opt_R is not None else {},
            "rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "method_state": self.method.extra_state(),
            "window_sums": self.window.sums.clone(),
            "window_count": self.window.count,
            "last_stats": dict(self.last_stats),
            "settings": self.s.describe(),
        }

    def save_checkpoint(self) -> None:
        if self.run_dir is not None:
            atomic_torch_save(self.state(), self.run_dir / CHECKPOINT_NAME)

    def load_checkpoint(self) -> None:
        assert self.resume_dir is not None
        path = self.resume_dir / CHECKPOINT_NAME
        if not path.exists():
            raise RunFolderError(f"nothing to resume: {path} does not exist")
        state = torch.load(path, map_location=self.device, weights_only=True)
        diff = resume_differences(
            state["settings"], self.s.describe()
        )  # the rule runs.resume_request applies
        if diff:
            raise RunFolderError(f"cannot resume {self.resume_dir}: settings differ (saved, now): {diff}")
        self.step = int(state["step"])
        self.A.load_state_dict(state["deformator"])
        self.R.load_state_dict(state["reconstructor"])
        self.opt_A.load_state_dict(state["opt_deformator"])
        if self.opt_R is not None:
            self.opt_R.load_state_dict(state["opt_reconstructor"])
        self.rng.set_state(state["rng"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        self.method.load_extra_state(state["method_state"])
        self.window.sums.copy_(state["window_sums"])
        self.window.count = int(state["window_count"])
        self.last_stats = {k: float(v) for k, v in state.get("last_stats", {}).items()}
        self._truncate_log(self.step)

    def _truncate_log(self, step: int) -> None:
        """Drop log lines written after the checkpoint we resume from (a run killed mid-way), and a
        line a kill tore in half (not JSON, or no step)."""
        path = self.run_dir / LOG_NAME if self.run_dir else None
        if path is None or not path.exists():
            return
        kept = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                logged = json.loads(line).get("step")
            except (json.JSONDecodeError, AttributeError):
                continue
            if isinstance(logged, int) and logged <= step:
                kept.append(line)
        atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode())

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> DiscoveryResult:
        s = self.s
        reporter = s.reporter if self.rank == 0 else SilentReporter()
        reporter = reporter if isinstance(reporter, NeverFails) else NeverFails(reporter)
        if s.resume:
            self.load_checkpoint()
            if self.step < s.steps:
                reporter.message(f"resuming from step {self.step}")
        self.G.eval()
        self.A.train()
        self.R.train()
        log_file = open(self.run_dir / LOG_NAME, "a") if self.run_dir is not None else None  # noqa: SIM115
        started, first = time.perf_counter(), self.step
        reporter.start(s.steps, self.step)
        try:
            with _StopOnInterrupt() as interrupt:
                while self.step < s.steps:
                    self.window.add(self.train_step())
                    self.step += 1
                    stats = None
                    if self.step % s.log_every == 0 or self.step == s.steps:
                        stats = {"step": self.step, **self.window.flush()}
                        stats["steps_per_s"] = (self.step - first) / (time.perf_counter() - started)
                        if not math.isfinite(stats["loss"]):
                            raise TrainingDivergedError(
                                f"training diverged by step {self.step} (the loss is {stats['loss']}); "
                                "nothing was saved from this window: lower --lr or --eps-max and start "
                                "a new run"
                            )
                        self.last_stats = stats
                        if log_file is not None:
                            log_file.write(json.dumps(stats) + "\n")
                            log_file.flush()
                    if self.step % s.checkpoint_every == 0:
                        self.save_checkpoint()
                    reporter.advance(self.step, stats)
                    if interrupt.requested:
                        self.save_checkpoint()
                        raise KeyboardInterrupt
            if interrupt.requested:  # asked for after the loop's last check: honoured, not lost
                self.save_checkpoint()
                raise KeyboardInterrupt
        finally:
            reporter.finish()
            if log_file is not None:
                log_file.close()
        self.save_checkpoint()
        if self.block_checkpointing:
            self.G.checkpoint_blocks(False)
        self.A.eval()
        self.R.eval()
        return DiscoveryResult(
            directions=self.A.unit_directions(s.eps_max, s.eps_min).cpu(),
            deformator=self.A,
            reconstructor=self.R if self.method.reconstructs else None,
            metrics={"train_rca": self.last_stats["acc"]} if "acc" in self.last_stats else {},
        )
