"""NVIDIA's official StyleGAN2-ADA-PyTorch network pickles (``*.pkl``), read without running their code.

Those files are pickles of ``torch_utils.persistence`` objects: each network module is stored as
``_reconstruct_persistent_obj(meta)`` where ``meta`` carries the module's Python *source code* and its
state. Unpickling them normally executes that source. Here a restricted unpickler allows only
tensor reconstruction, plain containers and numpy arrays, and stands in for the persistence hook with a
function that keeps ``class_name`` and ``state`` and never looks at ``module_src``. Any other global is
refused by name. The ``G_ema`` network's tensors are then mapped onto rosinality's layout.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from ganzoo_directions.errors import CheckpointError


@dataclass
class PersistentModule:
    """What a ``torch_utils.persistence`` object holds, without its code."""

    class_name: str
    state: dict[str, Any] = field(default_factory=dict)

    def children(self) -> dict[str, PersistentModule]:
        return dict(self.state.get("_modules") or {})

    def tensors(self) -> dict[str, torch.Tensor]:
        found = {}
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if isinstance(value, torch.Tensor):
                    found[name] = value
        return found


def _reconstruct_persistent_obj(meta: dict[str, Any]) -> PersistentModule:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("unexpected persistent object (not a class instance)")
    return PersistentModule(str(meta.get("class_name")), dict(meta.get("state") or {}))


def _load_storage_bytes(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _rebuild_parameter(
    data: torch.Tensor, requires_grad: bool, backward_hooks: Any, *rest: Any
) -> torch.Tensor:
    return data


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
        ("torch", "Size"): torch.Size,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib.util", "EasyDict"): dict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
    }
    try:  # numpy arrays and scalars appear in training_set_kwargs and augment_pipe
        import numpy as np

        multiarray = getattr(np, "_core", None) or np.core
        allowed[("numpy", "dtype")] = np.dtype
        allowed[("numpy", "ndarray")] = np.ndarray
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            allowed[(module, "_reconstruct")] = multiarray.multiarray._reconstruct
            allowed[(module, "scalar")] = multiarray.multiarray.scalar
    except ImportError:
        pass
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles tensors, containers and persistence records; refuses every other global."""

    def __init__(self, file: io.BufferedIOBase) -> None:
        super().__init__(file)
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name} (only tensors and data are read)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused a persistent id (not a network pickle written by pickle.dump)")


def read_network_pickle(path: str) -> dict[str, Any]:
    """The top-level dictionary of an official ``network-snapshot-*.pkl``, with modules as records."""
    try:
        with open(path, "rb") as f:
            data = RestrictedUnpickler(f).load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ModuleNotFoundError,
    ) as exc:
        raise CheckpointError(f"{path}: not a readable StyleGAN2-ADA network pickle: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("G_ema"), PersistentModule):
        raise CheckpointError(f"{path}: no 'G_ema' network in this pickle (keys: {sorted(data)[:8]})")
    return data


def flatten(module: PersistentModule, prefix: str = "") -> dict[str, torch.Tensor]:
    """All tensors of a record tree, by dotted name (as ``state_dict`` would name them)."""
    out = {f"{prefix}{k}": v for k, v in module.tensors().items()}
    for name, child in module.children().items():
        if isinstance(child, PersistentModule):
            out.update(flatten(child, f"{prefix}{name}."))
    return out


def conv_clamp_of(g_ema: PersistentModule) -> float | None:
    """The activation clamp the synthesis layers use (``conv_clamp``, e.g. 256), if any."""
    synthesis = g_ema.children().get("synthesis")
    clamps = set()
    for block in (synthesis.children() if synthesis else {}).values():
        for layer in block.children().values():
            if "conv_clamp" in layer.state:
                clamps.add(layer.state["conv_clamp"])
    clamps.discard(None)
    if len(clamps) > 1:
        raise CheckpointError(f"layers use different conv_clamp values {sorted(clamps)}; not supported")
    return float(clamps.pop()) if clamps else None


def to_rosinality(g_ema: PersistentModule) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, Any]]:
    """Map an ADA ``G_ema`` onto rosinality's names: (state dict, latent_avg, facts about the network)."""
    state = g_ema.state
    if state.get("c_dim", 0):
        raise CheckpointError("conditional StyleGAN2-ADA networks (c_dim > 0) are not supported")
    src = flatten(g_ema)
    if not any(k.startswith("synthesis.b4.") for k in src):
        raise CheckpointError(
            "not a StyleGAN2 synthesis network (no synthesis.b4; StyleGAN3 pickles are not supported)"
        )
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        if key not in src:
            raise CheckpointError(f"network pickle lacks {key!r}")
        used.add(key)
        return src[key].detach().float().clone()

    out: dict[str, torch.Tensor] = {}
    n_mlp = len({m.group(1) for k in src if (m := re.fullmatch(r"mapping\.fc(\d+)\.weight", k))})
    for i in range(n_mlp):
        out[f"style.{i + 1}.weight"] = take(f"mapping.fc{i}.weight")
        out[f"style.{i + 1}.bias"] = take(f"mapping.fc{i}.bias")
    latent_avg = take("mapping.w_avg")
    out["input.input"] = take("synthesis.b4.const")[None]

    def styled(dst: str, src_prefix: str, noise_index: int) -> None:
        out[f"{dst}.conv.weight"] = take(f"{src_prefix}.weight")[None]
        out[f"{dst}.conv.modulation.weight"] = take(f"{src_prefix}.affine.weight")
        out[f"{dst}.conv.modulation.bias"] = take(f"{src_prefix}.affine.bias")
        out[f"{dst}.noise.weight"] = take(f"{src_prefix}.noise_strength").reshape(1)
        out[f"{dst}.activate.bias"] = take(f"{src_prefix}.bias")
        out[f"noises.noise_{noise_index}"] = take(f"{src_prefix}.noise_const")[None, None]

    def rgb(dst: str, src_prefix: str) -> None:
        out[f"{dst}.conv.weight"] = take(f"{src_prefix}.weight")[None]
        out[f"{dst}.conv.modulation.weight"] = take(f"{src_prefix}.affine.weight")
        out[f"{dst}.conv.modulation.bias"] = take(f"{src_prefix}.affine.bias")
        out[f"{dst}.bias"] = take(f"{src_prefix}.bias").view(1, -1, 1, 1)

    styled("conv1", "synthesis.b4.conv1", 0)
    rgb("to_rgb1", "synthesis.b4.torgb")
    resolutions = sorted(
        int(m.group(1)) for k in src if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv0\.weight", k))
    )
    for i, res in enumerate(resolutions):
        styled(f"convs.{2 * i}", f"synthesis.b{res}.conv0", 2 * i + 1)
        styled(f"convs.{2 * i + 1}", f"synthesis.b{res}.conv1", 2 * i + 2)
        rgb(f"to_rgbs.{i}", f"synthesis.b{res}.torgb")
    ignored = {k for k in src if k.endswith("resample_filter")}
    left = set(src) - used - ignored
    if left:
        raise CheckpointError(f"network pickle has tensors this loader cannot map: {sorted(left)[:6]}")
    size = resolutions[-1] if resolutions else 4
    if size != 2 ** int(math.log2(size)):
        raise CheckpointError(f"unexpected resolution {size}")
    return out, latent_avg, {"conv_clamp": conv_clamp_of(g_ema), "size": size}
