"""The CuPy decoder path against the CPU-tested paths (runs where CUDA is usable).

The CuPy solver runs the same multigrid-preconditioned CG as the Numba one (the array
backend of ``codec/_multigrid.py``, tested against the Numba kernels with NumPy in
``test_diffusion.py``), so here it is checked against the Numba solver and SciPy's direct
solve on a real device, and on whole files: a file decoded on the GPU may differ from the
reference decode by at most one grey level in rare pixels (FORMAT.md, ``--solver`` help).
"""

import numpy as np
import pytest
from _images import make_image, natural_like
from click.testing import CliRunner

from inpcodec.codec import gpu_status, inpaint

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not gpu_status()[0], reason=f"CuPy solver unusable: {gpu_status()[1]}"),
]


def tree_like_mask(h, w, step=8):
    """Corners and centres of a regular grid, denser in the lower right quarter."""
    m = np.zeros((h, w), bool)
    m[::step, ::step] = True
    m[step // 2::step, step // 2::step] = True
    m[h // 2::step // 2, w // 2::step // 2] = True
    return m


def test_cupy_on_a_tree_like_mask_matches_direct_and_numba():
    f = natural_like(160, 224, seed=3)
    m = tree_like_mask(160, 224)
    u_gpu, info = inpaint(f, m, solver="cupy", return_info=True)
    assert info.solver == "cupy" and info.converged
    ref = inpaint(f, m, solver="direct")  # SciPy's sparse LU: the reference
    assert np.abs(u_gpu - ref).max() < 0.01
    assert np.abs(u_gpu - inpaint(f, m, solver="numba")).max() < 1e-3


def test_cupy_large_image_matches_numba():
    """A 768 x 512 colour image, the size the codec's targets are stated for."""
    rng = np.random.default_rng(5)
    f = np.stack([natural_like(512, 768, seed=s) for s in range(3)], axis=-1)
    m = rng.random((512, 768)) < 0.03
    u_gpu, info = inpaint(f, m, solver="cupy", return_info=True)
    assert info.converged
    assert np.abs(u_gpu - inpaint(f, m, solver="numba")).max() < 1e-3


@pytest.mark.parametrize("colour", [False, True])
def test_file_decoded_on_the_gpu_is_within_one_grey_level(colour):
    from inpcodec import decode, encode

    img = make_image(96, 128, colour=colour, seed=4)
    data = encode(img, density=0.06)
    ref = decode(data)  # numba: the reference decode
    gpu = decode(data, solver="cupy")
    again = decode(data, solver="cupy")
    diff = np.abs(ref.astype(int) - gpu.astype(int))
    assert diff.max() <= 1
    assert (diff > 0).mean() < 1e-3
    np.testing.assert_array_equal(gpu, again)  # the GPU decode repeats itself


def test_cli_decode_with_cupy(tmp_path):
    from PIL import Image

    from inpcodec.cli import main

    Image.fromarray(make_image(64, 96, seed=6)).save(tmp_path / "in.png")
    runner = CliRunner()
    r = runner.invoke(main, ["encode", str(tmp_path / "in.png"), str(tmp_path / "a.inp"),
                             "--density", "0.06"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["decode", str(tmp_path / "a.inp"), str(tmp_path / "out.png"),
                             "--solver", "cupy"])
    assert r.exit_code == 0, r.output
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (64, 96)
