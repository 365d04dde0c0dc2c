"""The install: one package, ``inpcodec``, whose subpackages are the repository's folders."""

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _listed_packages() -> set:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return {p.strip() for p in cfg["options"]["packages"].split() if p.strip()}


def _package_folders() -> set:
    """inpcodec plus every folder under the root (tests and benchmarks aside) with an
    __init__.py: what the installed package must hold."""
    found = {"inpcodec"}
    for init in ROOT.rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if not rel.parts or rel.parts[0] in ("tests", "benchmarks", "build") or \
                rel.parts[0].startswith("."):
            continue
        found.add(".".join(("inpcodec", *rel.parts)))
    return found


def test_setup_cfg_lists_exactly_the_package_folders():
    assert _listed_packages() == _package_folders()


def test_tests_import_the_installed_package_only():
    # `python -m pytest` puts the root on sys.path, where `codec` would be a second copy
    for name in ("codec", "baselines", "bitstreams", "learned_masks", "cli"):
        assert name not in sys.modules, f"{name} was imported as a top-level module"


def test_the_wheel_holds_inpcodec_alone(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q",
                        "-w", str(tmp_path)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("inpcodec-*.whl")
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"inpcodec", wheel.name.split("-py")[0] + ".dist-info"}, tops
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("inpcodec/learned_masks/weights/mask_net.safetensors",
                 "inpcodec/codec/postprocess/weights/gan_postprocess.safetensors",
                 "inpcodec/__main__.py", "inpcodec/cli.py"):
        assert data in names
    assert not any(n.startswith(("inpcodec/tests", "inpcodec/benchmarks")) for n in names)
