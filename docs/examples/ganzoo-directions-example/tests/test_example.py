"""How a plugin tests itself with the project's contract checks."""

import torch
from ganzoo_directions_example import BlobsGenerator, JacobianSVD

from ganzoo_directions.testing import check_generator, check_method


def test_blobs_meets_the_generator_contract():
    check_generator(BlobsGenerator())


def test_jacobian_svd_meets_the_method_contract(tmp_path):
    dset = check_method(JacobianSVD(samples=4), BlobsGenerator(), tmp_path, num_directions=3)
    d = dset.directions
    assert torch.allclose(d @ d.t(), torch.eye(3), atol=1e-4)  # eigenvectors of a symmetric matrix
