"""What a new user runs into on the command line (each case a user met, see issue 19)."""

import io
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from _images import make_image
from _interrupts import swallowing_an_interrupt
from click.testing import CliRunner
from PIL import Image

import inpcodec
from inpcodec import cli
from inpcodec.codec.decoder import decode
from inpcodec.codec.metrics import psnr


def invoke(args, stdin: bytes | None = None):
    return CliRunner().invoke(cli.main, args, input=stdin)


def one_line_error(r, message: str):
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.output, r.output


@pytest.fixture
def grey_png(tmp_path):
    p = tmp_path / "grey.png"
    Image.fromarray(make_image(40, 48)).save(p)
    return p


@pytest.mark.parametrize("command", ["encode", "mask", "decode"])
def test_output_equal_to_input_is_refused_and_input_kept(tmp_path, grey_png, command):
    src = grey_png
    if command == "decode":
        src = tmp_path / "a.inpc"
        assert invoke(["encode", str(grey_png), str(src), "--density", "0.1", "--quiet"]
                      ).exit_code == 0
    before = src.read_bytes()
    one_line_error(invoke([command, str(src), str(src)]), "is the input file")
    # through another spelling of the same path, and through a hard link
    other = tmp_path / "sub" / ".." / src.name
    (tmp_path / "sub").mkdir()
    one_line_error(invoke([command, str(src), str(other)]), "is the input file")
    link = tmp_path / "link"
    os.link(src, link)
    one_line_error(invoke([command, str(src), str(link)]), "is the input file")
    assert src.read_bytes() == before


def test_inpaint_output_equal_to_holes_is_refused(tmp_path, grey_png):
    holes = tmp_path / "h.png"
    Image.fromarray((make_image(40, 48) > 128).astype(np.uint8) * 255).save(holes)
    one_line_error(invoke(["inpaint", str(grey_png), str(holes), str(holes)]),
                   "is the input file")


def test_oversized_image_is_refused_from_its_header(tmp_path):
    # a 15000 x 15000 PNG: Pillow's decompression-bomb error without our check
    big = tmp_path / "big.png"
    Image.new("L", (15000, 15000)).save(big, compress_level=1)
    for args in (["encode", str(big), str(tmp_path / "o.inpc")],
                 ["mask", str(big), str(tmp_path / "o.png")],
                 ["demo", "--image", str(big)]):
        one_line_error(invoke(args), "exceeds the inpcodec format's limit of 2^26 pixels")
    # 9000 x 9000: below Pillow's error, above the format's limit
    mid = tmp_path / "mid.png"
    Image.new("L", (9000, 9000)).save(mid, compress_level=1)
    one_line_error(invoke(["encode", str(mid), str(tmp_path / "o.inpc")]), "2^26 pixels")


def test_opaque_alpha_is_accepted_and_every_image_command_takes_drop_alpha(tmp_path):
    rgb = make_image(32, 40, colour=True)
    opaque = tmp_path / "opaque.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(opaque)
    r = invoke(["encode", str(opaque), str(tmp_path / "a.inpc"), "--density", "0.1", "--quiet"])
    assert r.exit_code == 0, r.output
    clear = tmp_path / "clear.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])).save(clear)
    for args in (["encode", str(clear), str(tmp_path / "b.inpc"), "--density", "0.1", "--quiet"],
                 ["mask", str(clear), str(tmp_path / "m.png")],
                 ["demo", "--image", str(clear), "--density", "0.1"]):
        one_line_error(invoke(args), "--drop-alpha")
        assert invoke(args + ["--drop-alpha"]).exit_code == 0
    assert "--drop-alpha" in invoke(["inpaint", "--help"]).output


def test_rate_errors_speak_of_bpp_and_high_rates_give_the_lossless_file(tmp_path, grey_png):
    out = tmp_path / "o.inpc"
    one_line_error(invoke(["encode", str(grey_png), str(out), "--bpp", "-1"]), "--bpp")
    r = invoke(["encode", str(grey_png), str(out), "--bpp", "100"])
    assert r.exit_code == 0, r.output
    assert "lossless" in r.output
    np.testing.assert_array_equal(decode(out.read_bytes()), make_image(40, 48))


def test_encode_to_a_psnr_target_and_its_errors(tmp_path, grey_png):
    out = tmp_path / "o.inpc"
    r = invoke(["encode", str(grey_png), str(out), "--psnr", "28"])
    assert r.exit_code == 0, r.output
    assert "search     PSNR 28.00 dB: the smallest of" in r.output
    got = float(r.output.split("PSNR       ")[1].split(" dB")[0])
    assert got >= 28.0
    assert psnr(decode(out.read_bytes()), make_image(40, 48)) == pytest.approx(got, abs=0.005)
    for args, message in ((["--psnr", "28", "--bpp", "0.5"],
                           "only one of --quality, --density, --bpp"),
                          (["--psnr", "-2"], "--psnr must be a positive number"),
                          (["--psnr", "nan"], "--psnr must be a positive number")):
        out.unlink(missing_ok=True)
        one_line_error(invoke(["encode", str(grey_png), str(out), *args]), message)
        assert not out.exists()


def test_stdin_and_stdout(tmp_path, grey_png):
    r = CliRunner().invoke(cli.main, ["encode", "-", "-", "--density", "0.1"],
                           input=grey_png.read_bytes())
    assert r.exit_code == 0
    data = r.stdout_bytes
    assert data[:4] == b"INPC"
    assert "written    standard output" in r.stderr  # reports go to standard error
    r = CliRunner().invoke(cli.main, ["decode", "-", "-"], input=data)
    assert r.exit_code == 0
    png = Image.open(io.BytesIO(r.stdout_bytes))
    assert png.format == "PNG"
    np.testing.assert_array_equal(np.asarray(png), decode(data))
    r = CliRunner().invoke(cli.main, ["decode", "-", "-", "--format", "bmp"], input=data)
    assert Image.open(io.BytesIO(r.stdout_bytes)).format == "BMP"
    # nothing reaches standard output when the command fails
    r = CliRunner().invoke(cli.main, ["decode", "-", "-"], input=data[:-3])
    assert r.exit_code == 2 and r.stdout_bytes == b""


def test_decode_reports_one_line_and_is_silent_with_q(tmp_path, grey_png):
    f = tmp_path / "a.inpc"
    assert invoke(["encode", str(grey_png), str(f), "--density", "0.1", "--quiet"]).exit_code == 0
    r = invoke(["decode", str(f), str(tmp_path / "a.png")])
    lines = [ln for ln in r.output.splitlines() if ln.strip() and "compiling" not in ln]
    assert r.exit_code == 0 and len(lines) == 1 and "bpp" in lines[0]
    r = invoke(["decode", str(f), str(tmp_path / "b.png"), "--quiet"])
    assert r.exit_code == 0 and r.output == ""


def test_unknown_output_extension_lists_the_known_ones(tmp_path, grey_png):
    f = tmp_path / "a.inpc"
    assert invoke(["encode", str(grey_png), str(f), "--density", "0.1", "--quiet"]).exit_code == 0
    r = invoke(["decode", str(f), str(tmp_path / "a.xyz")])
    one_line_error(r, ".png")
    assert ".webp" in r.output and str(tmp_path / "a.xyz") in r.output


def test_encoder_options_reach_their_encoder_and_only_theirs(tmp_path, grey_png):
    out = tmp_path / "o.inpc"
    one_line_error(invoke(["encode", str(grey_png), str(out), "--runs", "3"]),
                   "--runs does not apply to --encoder tree")
    r = invoke(["encode", str(grey_png), str(out), "--encoder", "ps", "--density", "0.1",
                "--max-seconds", "0.5", "--runs", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    one_line_error(invoke(["encode", str(grey_png), str(out), "--encoder", "learned",
                           "--weights", str(tmp_path / "none.safetensors")]),
                   "none.safetensors")
    one_line_error(invoke(["encode", str(grey_png), str(out), "--precision", "float32"]),
                   "--precision does not apply to --encoder tree")
    r = invoke(["encode", str(grey_png), str(out), "--encoder", "tree-learned",
                "--density", "0.05", "--precision", "float32", "--quiet"])
    assert r.exit_code == 0, r.output
    one_line_error(invoke(["decode", str(out), str(tmp_path / "d.png"), "--postprocess",
                           "gan", "--weights", str(tmp_path / "none.safetensors")]),
                   "none.safetensors")


def test_error_messages_name_the_users_path_not_a_temporary_file(tmp_path, grey_png):
    out = tmp_path / "deep" / "o.inpc"
    r = invoke(["encode", str(grey_png), str(out)])
    one_line_error(r, str(out))
    assert ".inpcodec-" not in r.output


def test_help_names_the_papers_not_the_seed():
    for command in ([], ["encode"], ["mask"], ["decode"], ["inpaint"], ["train-masks"],
                    ["train-gan"]):
        text = invoke(command + ["--help"]).output
        assert "seed's" not in text and "the seed " not in text, command
    assert "Alt, Peter and Weickert" in invoke(["train-masks", "--help"]).output
    assert "MHTMA" in invoke(["decode", "--help"]).output


def test_python_m_inpcodec_runs_and_ctrl_c_exits_130(tmp_path, grey_png):
    r = subprocess.run([sys.executable, "-m", "inpcodec", "--version"], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0 and inpcodec.__version__ in r.stdout
    # interrupt a slow encode (PS at a high density): exit 130, no output file, no temp file
    out = tmp_path / "o.inpc"
    big = tmp_path / "big.png"
    Image.fromarray(make_image(256, 256)).save(big)
    p = subprocess.Popen([sys.executable, "-m", "inpcodec", "encode", str(big), str(out),
                          "--encoder", "ps", "--density", "0.02"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.communicate(timeout=8)
        pytest.fail("the encode finished before it could be interrupted")
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".inpcodec-*"))


def _reported_bpp(output):
    size = next(ln for ln in output.splitlines() if ln.startswith("size"))
    return float(size.split("= ")[1].split(" bpp")[0])


def test_demo_encodes_the_bundled_image_at_the_default_quality():
    """The README's first command: one pass at the default quality, JPEG at the same
    size."""
    from inpcodec.codec.data import cameraman
    from inpcodec.codec.pipeline import encode

    r = invoke(["demo"])
    assert r.exit_code == 0, r.output
    want = 8 * len(encode(cameraman())) / cameraman().size
    assert _reported_bpp(r.output) == pytest.approx(want, abs=1e-4)
    assert "tree-rdo" in next(ln for ln in r.output.splitlines() if ln.startswith("mask"))
    assert any(ln.startswith("JPEG") for ln in r.output.splitlines())


def test_encode_without_a_target_is_the_default_quality_and_q_is_quality(tmp_path):
    from inpcodec.codec.pipeline import DEFAULT_QUALITY, encode

    for shape in ((96, 128), (20, 24)):
        img = make_image(*shape)
        path = tmp_path / f"{shape[0]}.png"
        Image.fromarray(img).save(path)
        out = tmp_path / f"{shape[0]}.inpc"
        r = invoke(["encode", str(path), str(out)])
        assert r.exit_code == 0, r.output
        assert out.read_bytes() == encode(img, quality=DEFAULT_QUALITY)
        r = invoke(["encode", str(path), str(out), "-q", "85", "--quiet"])
        assert r.exit_code == 0 and r.output == ""
        assert out.read_bytes() == encode(img, quality=85)
    one_line_error(invoke(["encode", str(path), str(out), "-q", "101"]), "--quality")


def test_demo_reports_the_jpeg_beside_it_at_its_real_rate(tmp_path):
    img = tmp_path / "g.png"
    Image.fromarray(make_image(48, 64)).save(img)
    r = invoke(["demo", "--image", str(img), "--density", "0.1"])
    assert r.exit_code == 0, r.output
    size = next(ln for ln in r.output.splitlines() if ln.startswith("size"))
    ours = float(size.split("= ")[1].split(" bpp")[0])
    jpeg = next((ln for ln in r.output.splitlines() if ln.startswith("JPEG")), "")
    if "quality" in jpeg:  # JPEG fits in the same bytes: its rate is at most ours
        assert float(jpeg.split("= ")[1].split(" bpp")[0]) <= ours + 1e-9


def test_ctrl_c_at_any_point_of_the_default_encode_exits_130_with_one_line(tmp_path):
    # a colour photo-like image whose default encode takes a few seconds: the signal
    # lands in start-up, in the tree's growth and pruning (Numba kernels), in the tonal
    # optimisation or in the writing, depending on the delay
    rng = np.random.default_rng(0)
    img = make_image(384, 384, colour=True).astype(np.int16)
    img = np.clip(img + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
    src = tmp_path / "photo.png"
    Image.fromarray(img).save(src)
    interrupted = 0
    for delay in (0.3, 0.8, 1.2, 1.6, 2.0, 2.6):
        out = tmp_path / f"o{delay}.inpc"
        p = subprocess.Popen([sys.executable, "-m", "inpcodec", "encode", str(src), str(out),
                              "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            p.communicate(timeout=delay)
            assert p.returncode == 0 and out.exists()  # finished first: nothing to check
            continue
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        if p.returncode == 0:  # the signal came once the file was complete: it stays
            assert out.exists() and not err, (delay, err)
            continue
        assert p.returncode == 130, (delay, err)
        assert err.strip() == "inpcodec: interrupted", (delay, err)
        assert not out.exists() and not list(tmp_path.glob(".inpcodec-*"))
        interrupted += 1
    assert interrupted >= 3


def test_an_error_raised_by_an_interrupt_is_an_interrupt():
    # Ctrl-C inside a Numba kernel reaches Python as a SystemError in its context
    def kernel():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemError("CPUDispatcher(<function merge_costs>) returned a result "
                              "with an exception set") from None

    assert cli._by_interrupt(_raised(kernel))
    assert not cli._by_interrupt(_raised(lambda: int("x")))


def test_an_interrupt_swallowed_on_the_way_still_stops_the_write(tmp_path, monkeypatch):
    # a Ctrl-C that lands in a ctypes callback (llvmlite, while Numba compiles) is only
    # printed as "Exception ignored ..."; the handler's flag keeps it: exit 130, one line,
    # no output
    monkeypatch.setattr(cli, "encode_report", swallowing_an_interrupt(cli.encode_report))
    src = tmp_path / "g.png"
    Image.fromarray(make_image(24, 20)).save(src)
    out = tmp_path / "g.inpc"
    r = invoke(["encode", str(src), str(out), "--quiet"])
    assert r.exit_code == 130 and r.output.strip() == "inpcodec: interrupted"
    assert not out.exists()
    assert signal.getsignal(signal.SIGINT) is not cli._on_sigint  # put back


def _raised(fn):
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001
        return exc
    raise AssertionError("did not raise")


def test_psnr_beyond_every_lossy_file_says_what_it_gives_and_its_size(tmp_path):
    src = tmp_path / "g.png"
    Image.fromarray(make_image(48, 40)).save(src)
    out = tmp_path / "g.inpc"
    r = invoke(["encode", str(src), str(out), "--psnr", "90", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "the lossless file is given" in r.output and "bytes of raw samples" in r.output
    np.testing.assert_array_equal(decode(out.read_bytes()), make_image(48, 40))
    larger = out.stat().st_size > src.stat().st_size
    assert ("is larger than the input" in r.output) == larger


def test_ctrl_c_inside_numba_is_raised_at_the_next_solve(monkeypatch):
    # raising in llvmlite's callbacks while Numba loads a kernel can leave LLVM half done;
    # the interrupt is noted there and raised by the next solve's hook instead
    import os
    import sys as _sys

    monkeypatch.setattr(cli, "_INTERRUPTED", False)
    fake = os.path.join(os.sep, "site-packages", "numba", "core", "dispatcher.py")
    code = compile("def load(handler, signum):\n    handler(signum, _getframe())\n", fake,
                   "exec")
    space = {"_getframe": _sys._getframe}
    exec(code, space)
    space["load"](cli._on_sigint, signal.SIGINT)  # no exception inside Numba's frames
    assert cli._INTERRUPTED
    with pytest.raises(KeyboardInterrupt):
        cli._raise_if_interrupted(1)
    monkeypatch.setattr(cli, "_INTERRUPTED", False)
    cli._raise_if_interrupted(1)  # nothing pending: nothing raised
    with pytest.raises(KeyboardInterrupt):  # elsewhere it is raised at once
        cli._on_sigint(signal.SIGINT, _sys._getframe())
