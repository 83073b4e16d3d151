"""Deformators: the parametrisations of A(k, eps)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganzoo_directions.deformators import DEFORMATORS, build_deformator
from ganzoo_directions.errors import GanzooError


@pytest.mark.parametrize("kind", sorted(DEFORMATORS))
def test_shapes_zero_shift_and_unit_directions(kind):
    torch.manual_seed(0)
    A = build_deformator(kind, 5, 7, **({"hidden": 32} if kind == "mlp" else {}))
    k = torch.tensor([0, 1, 4, 4])
    eps = torch.tensor([1.0, -2.0, 0.0, 3.0])
    shifts = A(k, eps)
    assert shifts.shape == (4, 7)
    assert torch.allclose(shifts[2], torch.zeros(7), atol=1e-6)  # A(k, 0) = 0
    directions = A.unit_directions()
    assert directions.shape == (5, 7)
    assert torch.allclose(directions.norm(dim=1), torch.ones(5), atol=1e-5)


@pytest.mark.parametrize("kind", ["linear", "unit", "ortho", "span"])
def test_linear_kinds_scale_a_fixed_column(kind):
    torch.manual_seed(0)
    A = build_deformator(kind, 4, 6)
    with torch.no_grad():
        for p in A.parameters():
            p.add_(0.3 * torch.randn_like(p))
    k = torch.tensor([2, 2])
    a, b = A(k, torch.tensor([1.0, -2.5]))
    assert torch.allclose(b, -2.5 * a, atol=1e-6)
    if kind in ("unit", "ortho", "span"):
        assert torch.allclose(a.norm(), torch.tensor(1.0), atol=1e-5)
    if kind in ("ortho", "span"):
        M = A.direction_matrix()
        assert torch.allclose(M.t() @ M, torch.eye(4), atol=1e-5)


def test_mlp_is_the_papers_network_on_the_one_hot_input():
    torch.manual_seed(0)
    A = build_deformator("mlp", 6, 5, hidden=16)
    k = torch.tensor([0, 3, 5])
    eps = torch.tensor([0.7, -4.0, 2.0])
    x = F.one_hot(k, 6).float() * eps[:, None]  # the paper's input e_k * eps

    def net(v):
        return A.fc3(A.act(A.fc2(A.act(A.fc1(v)))))

    expected = net(x) - net(torch.zeros(1, 6))
    assert torch.allclose(A(k, eps), expected, atol=1e-6)


def test_ortho_refuses_more_directions_than_dimensions():
    with pytest.raises(GanzooError, match="K <= D"):
        build_deformator("ortho", 9, 8)


@pytest.mark.parametrize("kind", ["linear", "unit", "ortho", "span"])
def test_linear_kinds_start_from_given_directions_or_a_random_basis(kind):
    from ganzoo_directions.metrics import random_directions

    torch.manual_seed(0)
    given = random_directions(4, 6, seed=3)
    A = build_deformator(kind, 4, 6)
    A.start_from(given)
    assert torch.allclose(A.unit_directions(), given, atol=5e-3)
    identity, random = build_deformator(kind, 4, 6), build_deformator(kind, 4, 6, init="random")
    assert torch.allclose(identity.unit_directions(), torch.eye(6)[:4], atol=5e-3)
    assert (random.unit_directions() @ torch.eye(6)[:4].t()).abs().max() < 0.99  # not the axes
    with pytest.raises(GanzooError, match="init"):
        build_deformator(kind, 4, 6, init="nope")


def test_span_turns_its_start_only_within_the_starts_subspace():
    from ganzoo_directions.metrics import random_directions

    torch.manual_seed(0)
    given = random_directions(3, 7, seed=5)  # (3, 7)
    A, free = build_deformator("span", 3, 7), build_deformator("ortho", 3, 7)
    assert A.log_mat_half.shape == (3, 3)  # K(K-1)/2 free angles, not D(D-1)/2
    for deformator in (A, free):
        deformator.start_from(given)
        with torch.no_grad():
            deformator.log_mat_half.add_(0.5 * torch.randn_like(deformator.log_mat_half))
    projector = given.t() @ given  # (7, 7): onto the span of the given directions
    turned, escaped = A.direction_matrix(), free.direction_matrix()  # (7, 3)
    assert torch.allclose(projector @ turned, turned, atol=1e-5)  # still in the span ...
    assert not torch.allclose(turned, given.t(), atol=1e-2)  # ... but turned within it
    assert not torch.allclose(projector @ escaped, escaped, atol=1e-2)  # ortho leaves it


def test_ortho_files_written_before_the_base_rotation_still_load():
    A = build_deformator("ortho", 3, 5)
    state = {k: v for k, v in A.state_dict().items() if k != "base"}
    B = build_deformator("ortho", 3, 5)
    B.load_state_dict(state)
    assert torch.allclose(B.direction_matrix(), A.direction_matrix())


def test_mlp_unit_shift_has_length_abs_eps():
    torch.manual_seed(0)
    A = build_deformator("mlp", 4, 6, hidden=16, unit_shift=True)
    eps = torch.tensor([0.5, -2.0, 3.0, 0.0])
    shifts = A(torch.tensor([0, 1, 2, 3]), eps)
    assert torch.allclose(shifts.norm(dim=1), eps.abs(), atol=1e-5)
    with pytest.raises(GanzooError):
        A.start_from(torch.eye(6)[:4])


def test_siamese_reconstructor_reads_only_the_change_and_ignores_its_sign():
    from ganzoo_directions.reconstructors import build_reconstructor

    torch.manual_seed(0)
    R = build_reconstructor("siamese", 5, 3).eval()
    x0, x1 = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    logits, eps_hat = R(x0, x1)
    assert logits.shape == (4, 5) and eps_hat.shape == (4,)
    back, eps_back = R(x1, x0)  # the same change, the other way round
    assert torch.allclose(back, logits, atol=1e-5) and torch.allclose(eps_back, -eps_hat, atol=1e-5)
    still, _ = R(x0, x0)  # no change, no class
    assert torch.allclose(still, torch.zeros_like(still))
