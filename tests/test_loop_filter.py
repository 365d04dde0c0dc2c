"""The loop filter (format versions 6 and 7): its arithmetic against scipy, its pixel
orientations against scipy's float structure tensor, its fit against a direct
least-squares solve, its section in the file and in the encoder."""

import numba
import numpy as np
import pytest
from _images import make_image
from click.testing import CliRunner
from PIL import Image
from scipy.ndimage import correlate, correlate1d, gaussian_filter

from inpcodec import cli
from inpcodec.bitstreams import container as C
from inpcodec.codec import pipeline as P
from inpcodec.codec.loop_filter import (
    EDGE_ANTI,
    EDGE_DIAG,
    EDGE_X,
    EDGE_Y,
    FLAT,
    MAX_CLASSES,
    MAX_EDGES,
    MAX_PAYLOAD,
    MAX_RADIUS,
    LoopFilter,
    apply_loop_filter,
    choose_loop_filter,
    fit_loop_filter,
    offsets,
    orientations,
    pixel_classes,
    smallest_nbytes,
)
from inpcodec.codec.metrics import psnr


def _plane(h=40, w=52, seed=0, sigma=1.0):
    rng = np.random.default_rng(seed)
    return gaussian_filter(rng.standard_normal((h, w)), sigma) * 60 + 128


def _mask(h=40, w=52, seed=1, density=0.1):
    return np.random.default_rng(seed).random((h, w)) < density


#: What each orientation does to the offsets (FORMAT.md): transpose along y, mirror in x
#: on the antidiagonal, nothing elsewhere.
_TRANSFORMS = {FLAT: lambda dy, dx: (dy, dx), EDGE_X: lambda dy, dx: (dy, dx),
               EDGE_Y: lambda dy, dx: (dx, dy), EDGE_DIAG: lambda dy, dx: (dy, dx),
               EDGE_ANTI: lambda dy, dx: (dy, -dx)}
#: The coefficient group of each orientation with edge mode 2: flat, axis, diagonal.
_GROUPS = {FLAT: 0, EDGE_X: 1, EDGE_Y: 1, EDGE_DIAG: 2, EDGE_ANTI: 2}


def _kernel(filt, c):
    """The (2R+1)^2 correlation kernel of row c: what the second differences add up to."""
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


def test_orientations_of_simple_images():
    """Hand-made cases: ramps along x, y and the two diagonals, a flat plane, and a
    vertical step edge (an edge only near the step)."""
    i, j = np.mgrid[:20, :24].astype(float)
    assert (orientations(10 + 3 * j) == EDGE_X).all()
    assert (orientations(10 + 3 * i) == EDGE_Y).all()
    assert (orientations(10 + 3 * (i + j)) == EDGE_DIAG).all()
    assert (orientations(100 + 3 * (j - i)) == EDGE_ANTI).all()
    assert (orientations(np.full((20, 24), 77.3)) == FLAT).all()
    step = orientations(np.where(j < 12, 50.0, 200.0))
    assert (step[:, 9:15] == EDGE_X).all() and (step[:, :8] == FLAT).all()
    # rounding first: a ramp too shallow to change the rounded values is flat
    assert (orientations(100 + 0.01 * j) == FLAT).all()


def _orientations_numpy(u):
    """FORMAT.md's orientation in whole-array numpy (np.pad's reflection, any size)."""
    v = np.clip(np.rint(u), 0, 255).astype(np.int64)
    p = np.pad(v, 1, mode="reflect")
    sy = p[:-2] + 2 * p[1:-1] + p[2:]
    sx = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]
    gx, gy = sy[:, 2:] - sy[:, :-2], sx[2:] - sx[:-2]

    def box(a):
        q = np.pad(a, 2, mode="reflect")
        return sum(q[dy:dy + a.shape[0], dx:dx + a.shape[1]]
                   for dy in range(5) for dx in range(5))

    a, b, c = box(gx * gx), box(gy * gy), box(gx * gy)
    x, y, s = a - b, 2 * c, a + b
    code = np.where(np.abs(x) >= np.abs(y), np.where(x > 0, EDGE_X, EDGE_Y),
                    np.where(y > 0, EDGE_DIAG, EDGE_ANTI))
    return np.where(25 * (x * x + y * y) > 4 * s * s, code, FLAT)


def test_orientations_of_any_size_match_whole_array_numpy():
    """The kernel's reflection of indices is np.pad's, down to images of 1 x 1."""
    rng = np.random.default_rng(11)
    for h, w in [(1, 1), (1, 7), (2, 2), (3, 1), (2, 9), (5, 4), (33, 47)]:
        u = gaussian_filter(rng.normal(128, 80, (h, w)), 0.7) if min(h, w) > 1 else \
            rng.normal(128, 80, (h, w))
        np.testing.assert_array_equal(orientations(u), _orientations_numpy(u))


def test_orientations_match_scipy_structure_tensor():
    """Against the same definitions in scipy's float arithmetic (exact here: integer data
    far below 2^53), on a smooth random image with every orientation."""
    u = _plane(60, 70, seed=8, sigma=2.5)
    v = np.clip(np.rint(u), 0, 255)
    gx = correlate1d(correlate1d(v, [1, 2, 1], 0, mode="mirror"), [-1, 0, 1], 1,
                     mode="mirror")
    gy = correlate1d(correlate1d(v, [1, 2, 1], 1, mode="mirror"), [-1, 0, 1], 0,
                     mode="mirror")
    box = np.ones((5, 5))
    a, b, c = (correlate(p, box, mode="mirror") for p in (gx * gx, gy * gy, gx * gy))
    x, y, s = a - b, 2 * c, a + b
    coherence = np.sqrt(x * x + y * y) / np.maximum(s, 1e-300)
    angle = np.degrees(np.arctan2(y, x))  # twice the gradient's angle
    want = np.select([coherence <= 0.4, np.abs(angle) <= 45, np.abs(angle) >= 135,
                      angle > 0], [FLAT, EDGE_X, EDGE_Y, EDGE_DIAG], EDGE_ANTI)
    got = orientations(u)
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) == {FLAT, EDGE_X, EDGE_Y, EDGE_DIAG, EDGE_ANTI}


@pytest.mark.parametrize("edges", [1, 2])
def test_oriented_filter_is_the_transformed_correlation(edges):
    """Each pixel gets its row's kernel transposed along y and mirrored on the
    antidiagonal (scipy's correlation)."""
    u, mask = _plane(sigma=2.0), _mask()
    rng = np.random.default_rng(edges)
    rows = 2 * (3 if edges == 2 else 1)
    filt = LoopFilter(2, 2, 10, rng.integers(-300, 300, (rows, len(offsets(2)) + 1)), edges)
    out = apply_loop_filter(u, mask, filt)
    dist, orient = pixel_classes(mask, 2), orientations(u)
    kernels = {EDGE_Y: np.transpose, EDGE_ANTI: np.fliplr}
    for row in range(rows):
        k, bias = _kernel(filt, row)
        for code in _TRANSFORMS:
            sel = orient == code
            sel &= dist == (row // 3 if edges == 2 else row)
            if edges == 2:
                sel &= _GROUPS[code] == row % 3
            ref = correlate(u, kernels.get(code, np.asarray)(k), mode="mirror") + bias
            np.testing.assert_allclose(out[sel], ref[sel], rtol=0, atol=1e-9)


def _reference_filter(u, mask, filt):
    """FORMAT.md's arithmetic in element-wise numpy, term by term (no fusing)."""
    r = filt.radius
    pad = np.pad(u, r, mode="reflect")
    h, w = u.shape
    coef = filt.coeffs * 2.0 ** -filt.shift
    k = pixel_classes(mask, filt.classes).astype(int)
    orient = orientations(u) if filt.edges else np.full((h, w), FLAT)
    if filt.edges == 2:
        k = 3 * k + np.vectorize(_GROUPS.get)(orient)
    acc = coef[k, -1].copy()
    for i, o in enumerate(offsets(r)):
        d = np.empty((h, w))
        for code, transform in _TRANSFORMS.items():  # a + b == b + a: no canonical sign
            dy, dx = transform(*o)
            a = pad[r + dy:r + dy + h, r + dx:r + dx + w]
            b = pad[r - dy:r - dy + h, r - dx:r - dx + w]
            sel = orient == code
            d[sel] = ((a + b) - 2.0 * u)[sel]
        acc += coef[k, i] * d
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
            e = int(rng.integers(0, MAX_EDGES + 1))
            rows = k * (3 if e == 2 else 1)
            filt = LoopFilter(r, k, int(rng.integers(0, 16)),
                              rng.integers(-32767, 32768, (rows, len(offsets(r)) + 1)), e)
            np.testing.assert_array_equal(apply_loop_filter(u, mask, filt),
                                          _reference_filter(u, mask, filt))
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("edges", [0, 1, 2])
def test_fit_is_the_least_squares_solution(edges):
    """Against numpy's direct least-squares solve on the explicit (transformed) features,
    per coefficient row."""
    u, mask = _plane(sigma=2.0), _mask()
    target = _plane(seed=5) * 0.3 + u * 0.7
    radius, classes = 2, 2
    filt = fit_loop_filter(u, target, mask, radius, classes, edges)
    pad = np.pad(u, radius, mode="reflect")
    h, w = u.shape
    orient = orientations(u) if edges else np.full((h, w), FLAT)
    feats = np.empty((h, w, len(offsets(radius))))
    for i, o in enumerate(offsets(radius)):
        for code, transform in _TRANSFORMS.items():
            dy, dx = transform(*o)
            d = (pad[radius + dy:radius + dy + h, radius + dx:radius + dx + w]
                 + pad[radius - dy:radius - dy + h, radius - dx:radius - dx + w] - 2 * u)
            feats[..., i][orient == code] = d[orient == code]
    row = pixel_classes(mask, classes).astype(int)
    if edges == 2:
        row = 3 * row + np.vectorize(_GROUPS.get)(orient)
    assert filt.coeffs.shape == (classes * (3 if edges == 2 else 1), len(offsets(radius)) + 1)
    for c in range(len(filt.coeffs)):
        sel = row == c
        x = np.concatenate([feats[sel], np.ones((int(sel.sum()), 1))], -1)
        sol = np.linalg.lstsq(x, (target - u)[sel], rcond=None)[0]
        np.testing.assert_array_equal(filt.coeffs[c], np.rint(sol * 2 ** filt.shift))


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


@pytest.mark.parametrize("edges", [0, 1, 2])
def test_fit_recovers_an_exact_filter(edges):
    """A target made by a filter of that shape (dyadic coefficients) gives it back, and
    the encoder's choice finds its shape."""
    u, mask = _plane(80, 96, sigma=2.0), _mask(80, 96)
    rng = np.random.default_rng(3)
    rows = 2 * (3 if edges == 2 else 1)
    true = LoopFilter(2, 2, 10, rng.integers(-200, 200, (rows, len(offsets(2)) + 1)), edges)
    target = apply_loop_filter(u, mask, true)
    got = fit_loop_filter(u, target, mask, 2, 2, edges)
    np.testing.assert_array_equal(got.coeffs, true.coeffs)
    chosen = choose_loop_filter(u, target, mask, file_bytes=4000, rd_slope=1.7)
    assert (chosen.radius, chosen.classes, chosen.edges) == (2, 2, edges)


def test_choice_pays_for_its_bytes():
    u, mask = _plane(80, 96), _mask(80, 96)
    target = gaussian_filter(u, 1.0)  # a blur a filter models well
    kw = dict(rd_slope=1.7)
    filt = choose_loop_filter(u, target, mask, file_bytes=400, **kw)
    assert filt is not None
    assert psnr(target, apply_loop_filter(u, mask, filt), peak=255) > psnr(target, u, peak=255)
    assert choose_loop_filter(u, u, mask, file_bytes=400, **kw) is None  # nothing to gain
    assert choose_loop_filter(u, target, mask, file_bytes=400, max_bytes=410, **kw) is None
    small = choose_loop_filter(u, target, mask, file_bytes=400, max_bytes=400 + 40, **kw)
    assert small is None or small.nbytes + C.section_header_size(small.nbytes) <= 40


def test_section_round_trip_and_bad_sections():
    assert smallest_nbytes() == len(LoopFilter(1, 1, 10, np.zeros((1, 5), int)).to_bytes())
    n = len(offsets(3)) + 1
    rng = np.random.default_rng(0)
    for coeffs in (np.arange(12 * n).reshape(-1, n) - 40, rng.integers(-32767, 32768, (12, n)),
                   np.zeros((12, n), int), np.full((12, n), -32767)):
        filt = LoopFilter(3, MAX_CLASSES, 12, coeffs, 2)
        back = LoopFilter.from_bytes(filt.to_bytes())
        assert (back.radius, back.classes, back.shift, back.edges) == (3, MAX_CLASSES, 12, 2)
        np.testing.assert_array_equal(back.coeffs, filt.coeffs)
        assert filt.nbytes == len(filt.to_bytes()) <= MAX_PAYLOAD
    # the Rice code by hand: coefficients 0, -1, 1, -2, 0 are zigzag values 0, 1, 2, 3, 0;
    # k = 0 takes 11 bits (0 10 110 1110 0), k = 1 12 (00 01 100 101 00); packed from the
    # top bit and padded with zeros
    small = LoopFilter(1, 1, 7, np.array([[0, -1, 1, -2, 0]]))
    assert small.to_bytes() == bytes([1, 1, 0, 7, 0, 0b01011011, 0b10000000])
    good = small.to_bytes()
    for bad, why in ((b"\x01", "too short"), (bytes([4, 1, 0, 10, 1]), "outside"),
                     (bytes([1, 0, 0, 10, 1]), "outside"), (bytes([1, 1, 0, 16, 1]), "outside"),
                     (bytes([1, 1, 3, 10, 1]), "outside"), (bytes([1, 1, 0, 7, 16]), "Rice"),
                     (good[:-1], "run past"), (good + b"\x00", "wrong length"),
                     (good[:-1] + b"\x41", "wrong length"),  # padding bits set
                     (bytes([1, 1, 0, 7, 15, 0b11000000, 0, 0]), "int16"),  # 2 << 15
                     (good + bytes(MAX_PAYLOAD), f"longer than {MAX_PAYLOAD}")):
        with pytest.raises(ValueError, match=why):
            LoopFilter.from_bytes(bad)


def _with_filter_section(data: bytes, payload: bytes) -> bytes:
    cont = C.read(data)
    cont.sections["FILT"] = payload
    return C.write(cont)


def test_file_with_filter_decodes_better_and_deterministically():
    img = make_image(64, 80, seed=4)
    plain = P.encode(img, encoder="tree", density=0.1, loop_filter=False)
    data = P.encode(img, encoder="tree", density=0.1)
    i = P.info(data)
    assert i.loop_filter is not None and "FILT" in C.read(data).sections
    assert P.info(plain).loop_filter is None and "FILT" not in C.read(plain).sections
    assert data[4] == plain[4] == C.VERSION
    assert len(data) == len(plain) + i.loop_filter[2]  # the same file plus its section
    out = P.decode(data)
    assert psnr(out, img) > psnr(P.decode(plain), img)
    np.testing.assert_array_equal(out, P.decode(data))


def test_forged_filter_sections_are_refused():
    img = make_image(32, 40, seed=2)
    plain = P.encode(img, encoder="tree", density=0.1, loop_filter=False)
    identity = LoopFilter(1, 1, 10, np.zeros((1, 5), np.int64))
    good = identity.to_bytes()
    np.testing.assert_array_equal(P.decode(_with_filter_section(plain, good)),
                                  P.decode(plain))  # the identity filter
    for bad in (good[:-1], bytes([9]) + good[1:], b""):
        with pytest.raises(C.FormatError, match="loop filter"):
            P.decode(_with_filter_section(plain, bad))
    # wild coefficients decode to clipped pixels, never an error or a crash
    wild = LoopFilter(3, 4, 0, np.full((12, 25), -32767), 2).to_bytes()
    out = P.decode(_with_filter_section(plain, wild))
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
