"""The loop filter (format version 6): its arithmetic against scipy, its fit against a
direct least-squares solve, its section in the file and in the encoder."""

import numba
import numpy as np
import pytest
from _images import make_image
from click.testing import CliRunner
from PIL import Image
from scipy.ndimage import correlate, gaussian_filter

from inpcodec import cli
from inpcodec.bitstreams import container as C
from inpcodec.codec import pipeline as P
from inpcodec.codec.format import LOOP_FILTER_VERSION
from inpcodec.codec.loop_filter import (
    MAX_CLASSES,
    MAX_RADIUS,
    LoopFilter,
    apply_loop_filter,
    choose_loop_filter,
    fit_loop_filter,
    offsets,
    pixel_classes,
    smallest_nbytes,
)
from inpcodec.codec.metrics import psnr


def _plane(h=40, w=52, seed=0, sigma=1.0):
    rng = np.random.default_rng(seed)
    return gaussian_filter(rng.standard_normal((h, w)), sigma) * 60 + 128


def _mask(h=40, w=52, seed=1, density=0.1):
    return np.random.default_rng(seed).random((h, w)) < density


def _kernel(filt, c):
    """The (2R+1)^2 correlation kernel of class c: what the second differences add up to."""
    r = filt.radius
    k = np.zeros((2 * r + 1, 2 * r + 1))
    coef = filt.coeffs[c] * 2.0 ** -filt.shift
    for (dy, dx), a in zip(offsets(r), coef[:-1], strict=True):
        k[r + dy, r + dx] += a
        k[r - dy, r - dx] += a
        k[r, r] -= 2 * a
    k[r, r] += 1
    return k, coef[-1]


def test_offsets_are_half_the_window():
    for r in range(1, MAX_RADIUS + 1):
        o = offsets(r)
        assert len(o) == ((2 * r + 1) ** 2 - 1) // 2
        both = set(o) | {(-dy, -dx) for dy, dx in o}
        assert len(both) == 2 * len(o) and (0, 0) not in both


def test_pixel_classes_are_chessboard_distances():
    mask = np.zeros((7, 9), bool)
    mask[2, 3] = mask[6, 8] = True
    cls = pixel_classes(mask, 4)
    for y in range(7):
        for x in range(9):  # brute force: distance to the nearest stored pixel, capped
            d = min(max(abs(y - 2), abs(x - 3)), max(abs(y - 6), abs(x - 8)))
            assert cls[y, x] == min(d, 3)
    assert (pixel_classes(mask, 1) == 0).all()
    assert (pixel_classes(mask, 2) == (~mask)).all()


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_filter_is_the_correlation_scipy_computes(radius):
    """Each class's pixels get the symmetric kernel (numpy's reflect = scipy's mirror)."""
    u, mask = _plane(), _mask()
    rng = np.random.default_rng(radius)
    n = len(offsets(radius)) + 1
    filt = LoopFilter(radius, 3, 10, rng.integers(-300, 300, (3, n)))
    out = apply_loop_filter(u, mask, filt)
    cls = pixel_classes(mask, 3)
    for c in range(3):
        k, bias = _kernel(filt, c)
        ref = correlate(u, k, mode="mirror") + bias
        np.testing.assert_allclose(out[cls == c], ref[cls == c], rtol=0, atol=1e-9)


def _reference_filter(u, mask, filt):
    """FORMAT.md's arithmetic in element-wise numpy, term by term (no fusing)."""
    r = filt.radius
    pad = np.pad(u, r, mode="reflect")
    h, w = u.shape
    coef = filt.coeffs * 2.0 ** -filt.shift
    k = pixel_classes(mask, filt.classes)
    acc = coef[k, -1].copy()
    for i, (dy, dx) in enumerate(offsets(r)):
        a = pad[r + dy:r + dy + h, r + dx:r + dx + w]
        b = pad[r - dy:r - dy + h, r - dx:r - dx + w]
        acc += coef[k, i] * ((a + b) - 2.0 * u)
    return u + acc


@pytest.mark.parametrize("threads", [1, 2])
def test_filter_is_bit_identical_to_the_element_wise_reference(threads):
    """The decoder's kernel gives numpy's bits, any shape, any coefficients, any threads."""
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        rng = np.random.default_rng(threads)
        for _ in range(12):
            h, w = (int(v) for v in rng.integers(1, 90, 2))
            u = rng.normal(128, 60, (h, w))
            mask = rng.random((h, w)) < 0.1
            mask.flat[0] = True
            r, k = int(rng.integers(1, MAX_RADIUS + 1)), int(rng.integers(1, MAX_CLASSES + 1))
            filt = LoopFilter(r, k, int(rng.integers(0, 16)),
                              rng.integers(-32767, 32768, (k, len(offsets(r)) + 1)))
            np.testing.assert_array_equal(apply_loop_filter(u, mask, filt),
                                          _reference_filter(u, mask, filt))
    finally:
        numba.set_num_threads(before)


def test_fit_is_the_least_squares_solution():
    """Against numpy's direct least-squares solve on the explicit features, per class."""
    u, mask = _plane(), _mask()
    target = _plane(seed=5) * 0.3 + u * 0.7
    radius, classes = 2, 3
    filt = fit_loop_filter(u, target, mask, radius, classes)
    pad = np.pad(u, radius, mode="reflect")
    h, w = u.shape
    feats = [pad[radius + dy:radius + dy + h, radius + dx:radius + dx + w]
             + pad[radius - dy:radius - dy + h, radius - dx:radius - dx + w] - 2 * u
             for dy, dx in offsets(radius)]
    cls = pixel_classes(mask, classes)
    for c in range(classes):
        sel = cls == c
        x = np.stack([f[sel] for f in feats] + [np.ones(int(sel.sum()))], -1)
        sol = np.linalg.lstsq(x, (target - u)[sel], rcond=None)[0]
        np.testing.assert_array_equal(filt.coeffs[c], np.rint(sol * 2 ** filt.shift))
    assert filt.shift == 10


def test_large_coefficients_take_coarser_steps():
    """A smooth plane and a rough target ask for large coefficients: the shift drops until
    they fit in int16, instead of clipping them."""
    u, mask = _plane(sigma=4), _mask()
    target = _plane(seed=5)
    filt = fit_loop_filter(u, target, mask, 2, 1)
    assert filt.shift < 10
    assert np.abs(filt.coeffs).max() > 2 ** 14  # the largest uses the range
    err = np.mean((apply_loop_filter(u, mask, filt) - target) ** 2)
    assert err < np.mean((u - target) ** 2)


def test_fit_recovers_an_exact_filter():
    """A target made by a filter of that shape (dyadic coefficients) gives it back."""
    u, mask = _plane(), _mask()
    rng = np.random.default_rng(3)
    true = LoopFilter(2, 2, 10, rng.integers(-200, 200, (2, len(offsets(2)) + 1)))
    target = apply_loop_filter(u, mask, true)
    got = fit_loop_filter(u, target, mask, 2, 2)
    np.testing.assert_array_equal(got.coeffs, true.coeffs)


def test_choice_pays_for_its_bytes():
    u, mask = _plane(80, 96), _mask(80, 96)
    target = gaussian_filter(u, 1.0)  # a blur a filter models well
    kw = dict(rd_slope=1.7, section_overhead=8)
    filt = choose_loop_filter(u, target, mask, file_bytes=400, **kw)
    assert filt is not None
    assert psnr(target, apply_loop_filter(u, mask, filt), peak=255) > psnr(target, u, peak=255)
    assert choose_loop_filter(u, u, mask, file_bytes=400, **kw) is None  # nothing to gain
    assert choose_loop_filter(u, target, mask, file_bytes=400, max_bytes=410, **kw) is None
    small = choose_loop_filter(u, target, mask, file_bytes=400, max_bytes=400 + 40, **kw)
    assert small is None or small.nbytes + 8 <= 40


def test_section_round_trip_and_bad_sections():
    assert smallest_nbytes() == len(LoopFilter(1, 1, 10, np.zeros((1, 5), int)).to_bytes())
    n = len(offsets(3)) + 1
    filt = LoopFilter(3, MAX_CLASSES, 12, np.arange(MAX_CLASSES * n).reshape(-1, n) - 40)
    back = LoopFilter.from_bytes(filt.to_bytes())
    assert (back.radius, back.classes, back.shift) == (3, MAX_CLASSES, 12)
    np.testing.assert_array_equal(back.coeffs, filt.coeffs)
    assert filt.nbytes == len(filt.to_bytes())
    for bad, why in ((b"\x01", "too short"), (bytes([4, 1, 10]), "outside"),
                     (bytes([1, 0, 10]), "outside"), (bytes([1, 1, 16]), "outside"),
                     (bytes([1, 1, 10, 0, 0]), "wrong length")):
        with pytest.raises(ValueError, match=why):
            LoopFilter.from_bytes(bad)


def _with_filter_section(data: bytes, payload: bytes, version: int) -> bytes:
    cont = C.read(data)
    cont.version = version
    cont.sections["FILT"] = payload
    return C.write(cont)


def test_file_with_filter_decodes_better_and_deterministically():
    img = make_image(64, 80, seed=4)
    plain = P.encode(img, encoder="tree", density=0.1, loop_filter=False)
    data = P.encode(img, encoder="tree", density=0.1)
    i = P.info(data)
    assert data[4] == LOOP_FILTER_VERSION and i.loop_filter is not None
    assert P.info(plain).loop_filter is None and plain[4] == 5
    assert len(data) == len(plain) + i.loop_filter[2]  # the same file plus its section
    out = P.decode(data)
    assert psnr(out, img) > psnr(P.decode(plain), img)
    np.testing.assert_array_equal(out, P.decode(data))


def test_forged_filter_sections_are_refused():
    img = make_image(32, 40, seed=2)
    plain = P.encode(img, encoder="tree", density=0.1, loop_filter=False)
    good = LoopFilter(1, 1, 10, np.zeros((1, 5), np.int64)).to_bytes()
    with pytest.raises(C.FormatError, match="do not match"):  # a section version 5 lacks
        P.decode(_with_filter_section(plain, good, 5))
    assert P.decode(_with_filter_section(plain, good, 6)).shape == img.shape  # identity
    np.testing.assert_array_equal(P.decode(_with_filter_section(plain, good, 6)),
                                  P.decode(plain))
    for bad in (good[:-1], bytes([9, 1, 10]) + good[3:], b""):
        with pytest.raises(C.FormatError, match="loop filter"):
            P.decode(_with_filter_section(plain, bad, 6))
    # wild coefficients decode to clipped pixels, never an error or a crash
    wild = LoopFilter(3, 4, 0, np.full((4, 25), 32767)).to_bytes()
    out = P.decode(_with_filter_section(plain, wild, 6))
    assert out.dtype == np.uint8 and out.shape == img.shape


def test_rate_target_holds_with_the_filter():
    """The search leaves room for the filter: the file stays within the tolerance."""
    img = make_image(96, 128, seed=7)
    rep = P.encode_report(img, encoder="tree", bpp=1.0)
    assert rep.bpp <= 1.0 * 1.03
    assert rep.loop_filter is not None
    plain = P.encode_report(img, encoder="tree", bpp=1.0, loop_filter=False)
    assert rep.psnr > plain.psnr


def test_cli_writes_and_shows_the_filter(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(make_image(64, 80, seed=4)).save(src)
    runner = CliRunner()
    for flag, shown in (("--loop-filter", True), ("--no-loop-filter", False)):
        out = tmp_path / f"{flag}.inpc"
        res = runner.invoke(cli.main, ["encode", str(src), str(out), "--encoder", "tree",
                                       "--density", "0.1", flag, "--quiet"])
        assert res.exit_code == 0, res.output
        res = runner.invoke(cli.main, ["info", str(out)])
        assert ("loop filter" in res.output) == shown
