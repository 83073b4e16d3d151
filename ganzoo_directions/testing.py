"""Checks a plugin's tests can call: the contracts of :class:`GeneratorAdapter` and :class:`DirectionMethod`.

    from ganzoo_directions.testing import check_generator, check_method

    def test_my_generator():
        check_generator(MyGAN())

    def test_my_method(tmp_path):
        check_method(MyMethod(), MyGAN(), tmp_path)

They run the real code paths on tiny CPU settings and raise ``AssertionError`` with a message.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .directions import DirectionSet
from .interfaces import DirectionMethod, GeneratorAdapter, RunSettings, images_problem, result_problem


def check_generator(generator: GeneratorAdapter, batch: int = 3, seed: int = 0) -> None:
    """Shapes, range, determinism, differentiability and that a shift changes the image."""
    generator.eval()
    D = generator.latent_dim
    assert isinstance(generator.name, str) and generator.name, "set the class attribute 'name'"
    assert D >= 1 and generator.image_size >= 1 and generator.max_directions >= 1
    unknown = set(generator.live_options) - set(generator.options)
    assert not unknown, f"live_options {sorted(unknown)} are not options of {generator.name!r}"
    rng = torch.Generator(generator.device).manual_seed(seed)  # what the host passes: on the run's device
    untouched = rng.get_state()
    z = generator.sample_latents(batch, rng)
    assert not torch.equal(rng.get_state(), untouched), (
        "sample_latents must draw from the torch.Generator it is given, on that generator's device "
        "(device=generator.device): a draw on another generator or device breaks seeding, and on a GPU"
    )
    assert z.device == generator.device, (
        f"sample_latents must return latents on the adapter's device {generator.device}, got {z.device}"
    )
    assert z.shape == (batch, D), f"sample_latents must return ({batch}, {D}), got {tuple(z.shape)}"
    z2 = generator.sample_latents(batch, torch.Generator(generator.device).manual_seed(seed))
    assert torch.equal(z, z2), "sample_latents must be reproducible from a seeded torch.Generator"
    z = z.clone().requires_grad_(True)
    x = generator.render(z)
    problem = images_problem(x, batch, generator.image_channels, generator.image_size)
    assert problem is None, problem  # what building the generator for any command refuses
    x.square().mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0, "render must be differentiable in the latent"
    with torch.no_grad():
        again = generator.render(z.detach())
        assert torch.equal(again, x.detach()), "render must be deterministic (fix noise inputs)"
        shift = torch.nn.functional.normalize(
            torch.randn(1, D, generator=torch.Generator().manual_seed(1)), dim=1
        )
        moved = generator.render_shifted(z.detach(), 3.0 * shift.to(z.device).expand(batch, -1))
        assert (moved - again).abs().mean() > 0, "a latent shift must change the image"
    assert len(generator.fingerprint) == 64, "fingerprint must be a sha256 hex digest"


def check_method(
    method: DirectionMethod,
    generator: GeneratorAdapter,
    tmp_path: str | Path,
    num_directions: int = 2,
    steps: int = 2,
) -> DirectionSet:
    """Run ``method`` briefly and check its result round-trips through a direction file."""
    run_dir = Path(tmp_path) / f"check-{method.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    K = min(num_directions, generator.max_directions)
    settings = RunSettings(num_directions=K, steps=steps, batch_size=2, run_dir=run_dir, log_every=1)
    result = method.discover(generator, settings)
    problem = result_problem(result, generator.latent_dim, K if method.trained else None)
    assert problem is None, problem  # what `zoo-dirs discover` refuses (closed form may choose its K)
    d = result.directions
    assert d.dtype == torch.float32, f"directions must be float32, got {d.dtype}"
    dset = DirectionSet(
        d, result.deformator, {"generator": generator.describe(), "method": method.describe()}
    )
    back = DirectionSet.load(dset.save(run_dir / "directions.safetensors"))
    z = generator.sample_latents(2, torch.Generator(generator.device).manual_seed(0))
    assert torch.allclose(back.apply(z, 0, 1.5), dset.apply(z, 0, 1.5), atol=1e-6)
    return back
