"""The light install: everything but the learned features and the ``direct`` reference
solver runs without PyTorch and SciPy.

Each check runs in a fresh interpreter where ``torch``, ``safetensors``,
``pytorch_msssim`` and ``scipy`` cannot be imported (``sys.modules[name] = None`` makes
any import of them fail, as where they were never installed).
"""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

BLOCK = ("import sys\n"
         "for _m in ('torch', 'safetensors', 'pytorch_msssim', 'torchvision', 'scipy'):\n"
         "    sys.modules[_m] = None\n")


def run(code: str, *args, cwd=None):
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def cli(*args, cwd=None):
    return run("from inpcodec.cli import main\nmain()", *args, cwd=cwd)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    d = tmp_path_factory.mktemp("light")
    y, x = np.mgrid[0:40, 0:48]
    img = np.dstack([(x * 5) % 256, (y * 6) % 256, (x + y) * 2 % 256]).astype(np.uint8)
    Image.fromarray(img).save(d / "photo.png")
    return d


def test_encode_decode_and_plugin_without_torch(photo):
    r = cli("encode", "photo.png", "photo.inpc", "--quiet", cwd=photo)
    assert r.returncode == 0, r.stderr
    r = cli("decode", "photo.inpc", "back.png", "--quiet", cwd=photo)
    assert r.returncode == 0, r.stderr
    assert Image.open(photo / "back.png").size == (48, 40)
    r = run("import numpy as np, inpcodec.pillow\nfrom PIL import Image\n"
            "im = Image.open('photo.png'); im.save('p.inpc', quality=40)\n"
            "print(np.asarray(Image.open('p.inpc')).shape)\n"
            "assert sys.modules['torch'] is None and sys.modules['scipy'] is None\n",
            cwd=photo)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(40, 48, 3)"


def test_bench_metrics_without_torch(photo):
    r = run("from inpcodec.codec.bench.jobs import RateJob, run_rate_job\n"
            "import numpy as np\nfrom PIL import Image\n"
            "img = np.asarray(Image.open('photo.png'))\n"
            "for codec in ('jpeg', 'tree-rdo-lambda'):\n"
            "    row = run_rate_job(RateJob('photo', 'colour', codec, 0.5), img)\n"
            "    print(codec, row.get('error', ''), row['psnr'] > 10,\n"
            "          row['ms_ssim'] != row['ms_ssim'])\n",
            cwd=photo)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["jpeg  True True", "tree-rdo-lambda  True True"]


@pytest.mark.parametrize("args", [
    ("encode", "photo.png", "x.inpc", "--encoder", "learned", "--density", "0.05", "--quiet"),
    ("encode", "photo.png", "x.inpc", "--encoder", "tree-learned", "--quiet"),
    ("decode", "photo.inpc", "x.png", "--postprocess", "gan", "--quiet"),
])
def test_learned_features_name_the_extra(photo, args):
    if not (photo / "photo.inpc").exists():
        assert cli("encode", "photo.png", "photo.inpc", "--quiet", cwd=photo).returncode == 0
    r = cli(*args, cwd=photo)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'inpcodec[learned]'" in lines[0], r.stderr
    assert not (photo / args[2]).exists()


@pytest.mark.parametrize("encoder", ["belhachmi", "tree-teacher", "ps"])
def test_classical_encoders_without_scipy(photo, encoder):
    """Belhachmi's smoothing and Laplacian, the teacher's box-averaged error maps and the
    loop filter's distance classes (codec.filters) need no SciPy."""
    out = f"{encoder}.inpc"
    r = cli("encode", "photo.png", out, "--encoder", encoder, "--density", "0.1", "--quiet",
            cwd=photo)
    assert r.returncode == 0, r.stderr
    r = cli("decode", out, f"{encoder}.png", "--quiet", cwd=photo)
    assert r.returncode == 0, r.stderr


def test_direct_solver_names_scipy(photo):
    if not (photo / "photo.inpc").exists():
        assert cli("encode", "photo.png", "photo.inpc", "--quiet", cwd=photo).returncode == 0
    r = cli("decode", "photo.inpc", "d.png", "--solver", "direct", "--quiet", cwd=photo)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install scipy" in lines[0], r.stderr
    assert not (photo / "d.png").exists()
