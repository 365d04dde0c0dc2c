"""The decoder's loop filter: a small linear filter on the inpainted luma, fitted per file.

Homogeneous diffusion with tonally optimised values leaves a characteristic error: the
stored values over- and undershoot so that the smooth interpolant between them fits the
image on average, and the reconstruction has a cusp at every stored pixel; across an edge
it blurs.  A linear filter of the inpainted luma, fitted by least squares to the original
image by the encoder and stored in the file (section ``FILT``), removes much of that
error (benchmarks/RESULTS.md, "The loop filter").  Adaptive loop filters of video codecs
(the ALF of H.266/VVC) are the same idea for block transforms; the orientation classes
and the transposed and flipped filters below are ALF's.

The filter (radius R, K distance classes, edge mode E, coefficient shift S) changes pixel
p of class k to

    u'(p) = u(p) + b_k + sum_i c_{k,i} (u(p + T o_i) + u(p - T o_i) - 2 u(p))

over the ``(2R+1)^2 // 2`` offsets ``o_i`` of one half of the square window
(:func:`offsets`), with the image extended by reflection; ``c`` and ``b`` are integers
divided by ``2^S``.  The second differences keep the filter's response to a constant at
one whatever its quantised coefficients.  The distance class of a pixel is 0 for a stored
pixel, else its chessboard distance to the nearest stored pixel, capped at K - 1.  Each
pixel also has an orientation (:func:`orientations`, from the structure tensor of the
rounded luma, in exact integer arithmetic): flat, or an edge whose gradient lies nearest
the x axis, the y axis, the diagonal or the antidiagonal.  With E = 0 it is ignored (T is
the identity, k the distance class).  With E >= 1 the offsets of a pixel whose gradient
lies along y are transposed and those of an antidiagonal edge mirrored (T), so that one
set of coefficients serves both edges of a pair; E = 2 also gives flat pixels, edges near
an axis and diagonal edges coefficients of their own (k = 3 x distance class + that
group).  The coefficients are stored with a Rice code (:meth:`LoopFilter.to_bytes`).

Decoding is float64 arithmetic in a fixed order per pixel (:func:`apply_loop_filter`), so
it gives the same values on every machine and thread count, like the solver.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from inpcodec.bitstreams.container import section_header_size
from inpcodec.codec.filters import chessboard_distance

#: Largest radius, distance-class count and edge mode a file may hold (the encoder tries
#: all of them).
MAX_RADIUS = 3
MAX_CLASSES = 4
MAX_EDGES = 2
#: The coefficient shifts the encoder tries, finest last: at 2^-10 the quantisation costs
#: 0.00-0.01 dB against the unquantised least-squares filter (every fourth default grey
#: file of kodim01-24 at 0.05/0.1/0.3 bpp, a one-off script), coarser steps save bytes.
SHIFTS = (5, 6, 7, 8, 9, 10)
MAX_SHIFT = 15
_HEAD = struct.Struct("<BBBBB")  # radius, classes, edges, shift, Rice parameter
_MAX_RICE = 15
#: The largest coded payload (bytes) a decoder accepts: MAX_RADIUS, MAX_CLASSES and
#: MAX_EDGES with every coefficient at the int16 limit take less.
MAX_PAYLOAD = 4096
#: Coherence above which a pixel is an edge: |lambda1 - lambda2| / (lambda1 + lambda2)
#: of the 5 x 5 structure tensor > 2/5, tested as 25 (X^2 + Y^2) > 4 S^2.
_EDGE_NUM, _EDGE_DEN = 2, 5
#: Orientation codes (:func:`orientations`) and what each means for the filter: the
#: transform of its offsets (0 identity, 1 transpose, 2 mirror in x) and its group
#: (0 flat, 1 near an axis, 2 diagonal) when the edges have classes of their own.
FLAT, EDGE_X, EDGE_Y, EDGE_DIAG, EDGE_ANTI = range(5)
_TRANSFORM = np.array([0, 0, 1, 0, 2], np.uint8)
_GROUP = np.array([0, 1, 1, 2, 2], np.uint8)
#: Rows of the image per block when the encoder sums the normal equations: the features
#: of 64 rows are in memory at a time, whatever the image's height.
_BLOCK_ROWS = 64


def _groups(edges: int) -> int:
    return 3 if edges == 2 else 1


@dataclass(frozen=True)
class LoopFilter:
    """A fitted filter: ``coeffs`` int64 of shape (classes x groups, len(offsets(radius))
    + 1), the last column the bias, all in units of 2^-shift; ``classes`` is the number
    of distance classes, ``edges`` the edge mode (0, 1 or 2), groups 3 for edge mode 2,
    else 1; row k = 3 x distance class + group for edge mode 2, else the distance class."""

    radius: int
    classes: int
    shift: int
    coeffs: np.ndarray
    edges: int = 0

    def to_bytes(self) -> bytes:
        """The ``FILT`` payload (FORMAT.md): the header, then the coefficients
        row by row, each zigzag-mapped (c >= 0: 2c, c < 0: -2c - 1) and Rice-coded with
        the header's parameter k (the quotient z >> k in unary as ones ended by a zero,
        then the k low bits, most significant first), packed from the most significant
        bit of each byte, the last byte padded with zeros."""
        z = _zigzag(np.asarray(self.coeffs, np.int64).ravel())
        k = _best_rice(z)
        bits = []
        for v in z.tolist():
            bits += [1] * (v >> k) + [0] + [(v >> j) & 1 for j in range(k - 1, -1, -1)]
        return (_HEAD.pack(self.radius, self.classes, self.edges, self.shift, k)
                + np.packbits(np.array(bits, np.uint8)).tobytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> LoopFilter:
        """Parse a ``FILT`` payload; ValueError (one
        line) for anything malformed."""
        if len(data) < _HEAD.size:
            raise ValueError("loop filter section is too short")
        if len(data) > MAX_PAYLOAD:
            raise ValueError(f"loop filter section is longer than {MAX_PAYLOAD} bytes")
        radius, classes, edges, shift, k = _HEAD.unpack(data[:_HEAD.size])
        _check(radius, classes, shift, edges)
        if k > _MAX_RICE:
            raise ValueError(f"loop filter Rice parameter {k} outside 0..{_MAX_RICE}")
        count = classes * _groups(edges) * (len(offsets(radius)) + 1)
        bits = np.unpackbits(np.frombuffer(data[_HEAD.size:], np.uint8))
        zeros = np.flatnonzero(bits == 0)  # each code's unary part ends at a zero
        z = np.empty(count, np.int64)
        pos = 0
        for i in range(count):
            j = np.searchsorted(zeros, pos)
            if j == zeros.size or zeros[j] + 1 + k > bits.size:
                raise ValueError("loop filter coefficients run past their section")
            q, pos = int(zeros[j] - pos), int(zeros[j] + 1)
            low = 0
            for b in bits[pos:pos + k]:
                low = 2 * low + int(b)
            z[i], pos = (q << k) + low, pos + k
            if z[i] > 2 * 32767:
                raise ValueError("loop filter coefficient outside int16")
        if bits.size - pos >= 8 or bits[pos:].any():
            raise ValueError("loop filter section has the wrong length")
        coeffs = _unzigzag(z).reshape(classes * _groups(edges), -1)
        return cls(radius, classes, shift, coeffs, edges)

    @property
    def nbytes(self) -> int:
        return _HEAD.size + _rice_bytes(_zigzag(np.asarray(self.coeffs, np.int64).ravel()))


def _check(radius, classes, shift, edges):
    if not (1 <= radius <= MAX_RADIUS and 1 <= classes <= MAX_CLASSES
            and shift <= MAX_SHIFT and edges <= MAX_EDGES):
        raise ValueError(f"loop filter radius {radius}, classes {classes}, edge mode "
                         f"{edges} or shift {shift} outside 1..{MAX_RADIUS}, "
                         f"1..{MAX_CLASSES}, 0..{MAX_EDGES}, 0..{MAX_SHIFT}")


def _zigzag(c):
    return np.where(c >= 0, 2 * c, -2 * c - 1)


def _unzigzag(z):
    return np.where(z % 2 == 0, z // 2, -(z + 1) // 2)


def _rice_bits(z, k):
    return int(np.sum((z >> k) + 1 + k))


def _best_rice(z) -> int:
    return min(range(_MAX_RICE + 1), key=lambda k: _rice_bits(z, k))


def _rice_bytes(z) -> int:
    return -(-_rice_bits(z, _best_rice(z)) // 8)


def smallest_nbytes() -> int:
    """Payload bytes of the smallest filter (radius 1, one class, all coefficients 0)."""
    return LoopFilter(1, 1, 0, np.zeros((1, len(offsets(1)) + 1), np.int64)).nbytes


def offsets(radius: int) -> list:
    """One half of the (2R+1)^2 window without its centre: (dy, dx), dy > 0 or dx > 0."""
    return [(dy, dx) for dy in range(radius + 1) for dx in range(-radius, radius + 1)
            if dy > 0 or dx > 0]


def _transformed(radius: int, transform: int) -> list:
    """The offsets of :func:`offsets` under a transform (0 identity, 1 transpose, 2
    mirror in x), each turned into the half window (a second difference is the same for
    o and -o)."""
    out = []
    for dy, dx in offsets(radius):
        ty, tx = ((dy, dx), (dx, dy), (dy, -dx))[transform]
        out.append((ty, tx) if ty > 0 or (ty == 0 and tx > 0) else (-ty, -tx))
    return out


def pixel_classes(mask: np.ndarray, classes: int) -> np.ndarray:
    """Distance class of each pixel (uint8): 0 stored, j at chessboard distance j, capped
    at K-1."""
    mask = np.asarray(mask, bool)
    if classes == 1:
        return np.zeros(mask.shape, np.uint8)
    return chessboard_distance(mask, classes - 1)


@njit(parallel=True, cache=True)
def _orientation_kernel(u, yi, xi, out):  # pragma: no cover (JIT)
    # yi, xi: the row and column of each index -2 .. n+1 of the image extended by
    # reflection (yi[y + 2] is row y).  Integers throughout, in the narrowest types that
    # hold them (|gx|, |gy| <= 1020; a 5-sum of products <= 5.3e6, a 25-sum <= 2.7e7),
    # widened to int64 for every product: exact, and 19 bytes a pixel instead of 48.
    h, w = u.shape
    v = np.empty((h, w), np.int16)
    for y in prange(h):
        for x in range(w):
            v[y, x] = np.int16(min(max(np.rint(u[y, x]), 0.0), 255.0))
    gx = np.empty((h, w), np.int16)
    gy = np.empty((h, w), np.int16)
    for y in prange(h):
        ym, yp = yi[y + 1], yi[y + 3]
        for x in range(w):
            xm, xp = xi[x + 1], xi[x + 3]
            gx[y, x] = ((np.int64(v[ym, xp]) + 2 * np.int64(v[y, xp]) + np.int64(v[yp, xp]))
                        - (np.int64(v[ym, xm]) + 2 * np.int64(v[y, xm])
                           + np.int64(v[yp, xm])))
            gy[y, x] = ((np.int64(v[yp, xm]) + 2 * np.int64(v[yp, x]) + np.int64(v[yp, xp]))
                        - (np.int64(v[ym, xm]) + 2 * np.int64(v[ym, x])
                           + np.int64(v[ym, xp])))
    # the 5 x 5 sums of the products, rows first (integers: any order is exact)
    ra = np.empty((h, w), np.int32)
    rb = np.empty((h, w), np.int32)
    rc = np.empty((h, w), np.int32)
    for y in prange(h):
        for x in range(w):
            sa = sb = sc = np.int64(0)
            for d in range(5):
                xx = xi[x + d]
                px, py = np.int64(gx[y, xx]), np.int64(gy[y, xx])
                sa += px * px
                sb += py * py
                sc += px * py
            ra[y, x], rb[y, x], rc[y, x] = sa, sb, sc
    for y in prange(h):
        for x in range(w):
            a = b = c = np.int64(0)
            for d in range(5):
                yy = yi[y + d]
                a += ra[yy, x]
                b += rb[yy, x]
                c += rc[yy, x]
            big_x, big_y, s = a - b, 2 * c, a + b
            if _EDGE_DEN ** 2 * (big_x * big_x + big_y * big_y) <= _EDGE_NUM ** 2 * s * s:
                out[y, x] = FLAT
            elif abs(big_x) >= abs(big_y):
                out[y, x] = EDGE_X if big_x > 0 else EDGE_Y
            else:
                out[y, x] = EDGE_DIAG if big_y > 0 else EDGE_ANTI


def orientations(u: np.ndarray) -> np.ndarray:
    """Orientation code of each pixel (uint8; FLAT, EDGE_X, EDGE_Y, EDGE_DIAG, EDGE_ANTI).

    From the luma rounded half to even and clipped to 0..255, in integers (so the same
    on every machine): Sobel gradients gx, gy (the image extended by reflection), their
    products summed over the 5 x 5 window (a, b, c for gx^2, gy^2, gx gy; the products
    extended by reflection), X = a - b, Y = 2c, S = a + b.  A pixel is an edge where
    25 (X^2 + Y^2) > 4 S^2; an edge is EDGE_X where |X| >= |Y| and X > 0, EDGE_Y where
    |X| >= |Y| and X <= 0, EDGE_DIAG where |Y| > |X| and Y > 0, else EDGE_ANTI.
    """
    u = np.asarray(u, np.float64)
    h, w = u.shape
    out = np.empty(u.shape, np.uint8)
    # numpy's own reflection, as indices: what np.pad(..., mode="reflect") reads
    _orientation_kernel(u, np.pad(np.arange(h), 2, mode="reflect"),
                        np.pad(np.arange(w), 2, mode="reflect"), out)
    return out


def _second_differences(padded, radius, rows, width):
    """The second difference of each offset for image rows ``rows`` (a slice)."""
    r0, r1 = rows.start + radius, rows.stop + radius
    centre = padded[r0:r1, radius:radius + width]
    for dy, dx in offsets(radius):
        yield (padded[r0 + dy:r1 + dy, radius + dx:radius + dx + width]
               + padded[r0 - dy:r1 - dy, radius - dx:radius - dx + width] - 2.0 * centre)


@njit(parallel=True, cache=True)
def _filter_kernel(padded, dist, orient, groups, group_of, transform_of, coef, dy, dx,
                   radius, out):  # pragma: no cover (JIT)
    h, w = out.shape
    n = dy.shape[1]
    for y in prange(h):
        for x in range(w):
            o = orient[y, x]
            k = groups * dist[y, x] + group_of[o]
            t = transform_of[o]
            centre = padded[y + radius, x + radius]
            twice = 2.0 * centre
            acc = coef[k, n]
            for i in range(n):
                a = padded[y + radius + dy[t, i], x + radius + dx[t, i]]
                b = padded[y + radius - dy[t, i], x + radius - dx[t, i]]
                acc += coef[k, i] * ((a + b) - twice)
            out[y, x] = centre + acc


def apply_loop_filter(u: np.ndarray, mask: np.ndarray, filt: LoopFilter) -> np.ndarray:
    """The filtered plane (float64): the decoder's reference arithmetic.

    Every pixel's sum is accumulated in the order of :func:`offsets`, bias first, one
    pixel per loop iteration (Numba without fast-math: no fused or reordered
    arithmetic, whatever the thread count), so the result is the same on every machine;
    ``tests/test_loop_filter.py`` checks it bit for bit against element-wise numpy.
    """
    u = np.asarray(u, np.float64)
    coef = filt.coeffs.astype(np.float64) * 2.0 ** -filt.shift  # exact: |c| < 2^15
    dist = pixel_classes(mask, filt.classes)
    if filt.edges:
        orient, transform_of = orientations(u), _TRANSFORM
    else:  # every pixel flat, no transform
        orient, transform_of = np.zeros(u.shape, np.uint8), np.zeros_like(_TRANSFORM)
    group_of = _GROUP if filt.edges == 2 else np.zeros_like(_GROUP)
    padded = np.pad(u, filt.radius, mode="reflect")
    off = np.array([_transformed(filt.radius, t) for t in range(3)], np.int64)
    out = np.empty_like(u)
    _filter_kernel(padded, dist, orient, _groups(filt.edges), group_of, transform_of, coef,
                   off[..., 0].copy(), off[..., 1].copy(), filt.radius, out)
    return out


#: Groups of pixels whose normal equations the encoder sums apart: distance class
#: (MAX_CLASSES) x orientation code (5).
_CELLS = MAX_CLASSES * 5


def _normal_equations(u, target, mask):
    """Per cell (distance class of the largest count x orientation code): X^T X, X^T y
    and y^T y of the least-squares problem with the untransformed offsets of the largest
    radius, y = target - u; summed over blocks of rows, so the features take memory
    O(width x block) whatever the image size."""
    h, w = u.shape
    n = len(offsets(MAX_RADIUS)) + 1
    cell = (5 * pixel_classes(mask, MAX_CLASSES) + orientations(u)).astype(np.int64)
    gram = np.zeros((_CELLS, n, n))
    rhs = np.zeros((_CELLS, n))
    yy = np.zeros(_CELLS)
    padded = np.pad(u, MAX_RADIUS, mode="reflect")
    for start in range(0, h, _BLOCK_ROWS):
        rows = slice(start, min(h, start + _BLOCK_ROWS))
        x = np.empty((rows.stop - rows.start, w, n))
        for i, d in enumerate(_second_differences(padded, MAX_RADIUS, rows, w)):
            x[..., i] = d
        x[..., -1] = 1.0
        # the block's pixels grouped by cell: one gather, then contiguous slices
        k = cell[rows].ravel()
        order = np.argsort(k, kind="stable")
        xs = x.reshape(-1, n)[order]
        ys = (target[rows] - u[rows]).ravel()[order]
        ends = np.searchsorted(k[order], np.arange(_CELLS + 1))
        for c in range(_CELLS):
            a, b = ends[c], ends[c + 1]
            if b > a:
                gram[c] += xs[a:b].T @ xs[a:b]
                rhs[c] += xs[a:b].T @ ys[a:b]
                yy[c] += ys[a:b] @ ys[a:b]
    return gram, rhs, yy


def _shape_of(gram, rhs, yy, radius, classes, edges):
    """The normal equations of one shape, from those of the cells: a row's equations are
    the sums over its cells of each cell's, with the features of the cell's transform
    (a subset of the largest radius's offsets, reordered)."""
    index = {o: i for i, o in enumerate(offsets(MAX_RADIUS))}
    bias = gram.shape[1] - 1
    rows = classes * _groups(edges)
    n = len(offsets(radius)) + 1
    g, r, e = np.zeros((rows, n, n)), np.zeros((rows, n)), np.zeros(rows)
    for cell in range(_CELLS):
        dist, orient = divmod(cell, 5)
        row = min(dist, classes - 1)
        t = 0
        if edges:
            t = int(_TRANSFORM[orient])
            if edges == 2:
                row = 3 * row + int(_GROUP[orient])
        sel = [index[o] for o in _transformed(radius, t)] + [bias]
        g[row] += gram[cell][np.ix_(sel, sel)]
        r[row] += rhs[cell][sel]
        e[row] += yy[cell]
    return g, r, e


def _solve(gram, rhs):
    """Least-squares coefficients per row (zero where a row has fewer pixels than
    coefficients or no finite solution)."""
    rows, n = rhs.shape
    sols = np.zeros((rows, n))
    for c in range(rows):
        if gram[c][-1, -1] < n:
            continue
        sol, *_ = np.linalg.lstsq(gram[c], rhs[c], rcond=1e-12)
        if np.all(np.isfinite(sol)):
            sols[c] = sol
    return sols


def _quantised(sols, radius, classes, edges, shift):
    """The filter of these coefficients in steps of 2^-shift, or coarser steps where the
    largest would not fit in int16."""
    limit = 2 ** 15 - 1
    biggest = float(np.abs(sols).max())
    while shift > 0 and biggest * 2.0 ** shift > limit:
        shift -= 1
    coeffs = np.clip(np.rint(sols * 2.0 ** shift), -limit, limit).astype(np.int64)
    return LoopFilter(radius, classes, shift, coeffs, edges)


def fit_loop_filter(u: np.ndarray, target: np.ndarray, mask: np.ndarray, radius: int,
                    classes: int, edges: int = 0, shift: int = SHIFTS[-1]) -> LoopFilter:
    """The least-squares filter of this shape that maps ``u`` nearest to ``target``
    (coefficients rounded to steps of 2^-shift, coarser where they would not fit in
    int16)."""
    if not (1 <= radius <= MAX_RADIUS and 1 <= classes <= MAX_CLASSES
            and 0 <= edges <= MAX_EDGES):
        raise ValueError(f"radius, classes and edges must lie in 1..{MAX_RADIUS}, "
                         f"1..{MAX_CLASSES}, 0..{MAX_EDGES}")
    u, target = np.asarray(u, np.float64), np.asarray(target, np.float64)
    g, r, _ = _shape_of(*_normal_equations(u, target, mask), radius, classes, edges)
    return _quantised(_solve(g, r), radius, classes, edges, shift)


def choose_loop_filter(u: np.ndarray, target: np.ndarray, mask: np.ndarray,
                       file_bytes: int, *, rd_slope: float | None = None,
                       lam: float | None = None, max_bytes: int | None = None):
    """The filter that pays most, or None where none pays.

    Every radius 1..MAX_RADIUS, distance-class count 1..MAX_CLASSES and edge mode
    0..MAX_EDGES is fitted from one pass of normal equations and quantised at every
    shift of SHIFTS, and judged by its squared error against ``target`` (exact for the
    quantised coefficients, before rounding to 8 bits).  A filter pays where its PSNR
    gain exceeds the cost of its bytes at ``rd_slope`` dB per doubling of the file
    (codec.rate.RD_SLOPE), and the file with it and its section's framing must stay
    within ``max_bytes``.  With ``lam`` instead of ``rd_slope`` the
    filter is judged by the Lagrangian J = squared error + ``lam`` x its bits.
    """
    if (rd_slope is None) == (lam is None):
        raise ValueError("give exactly one of rd_slope and lam")
    u, target = np.asarray(u, np.float64), np.asarray(target, np.float64)
    eqs = _normal_equations(u, target, mask)

    # errors below a billionth of the unfiltered one are rounding noise of the normal
    # equations (yy - 2 q.rhs + q G q): all count as exact, so the cheapest exact wins
    floor = max(1e-9 * float(eqs[2].sum()), 1e-12)

    def scored(err, size):  # lower is better
        err = max(float(err), floor)
        if lam is not None:
            return err + lam * 8.0 * (size - file_bytes)
        # squared error in dB plus the rate's price
        return 10 * math.log10(err) + rd_slope * math.log2(size / file_bytes)

    best, best_score = None, scored(eqs[2].sum(), file_bytes)
    for radius in range(1, MAX_RADIUS + 1):
        for classes in range(1, MAX_CLASSES + 1):
            for edges in range(MAX_EDGES + 1):
                gram, rhs, yy = _shape_of(*eqs, radius, classes, edges)
                sols = _solve(gram, rhs)
                for shift in SHIFTS:
                    filt = _quantised(sols, radius, classes, edges, shift)
                    size = file_bytes + filt.nbytes + section_header_size(filt.nbytes)
                    if max_bytes is not None and size > max_bytes:
                        continue
                    q = filt.coeffs * 2.0 ** -filt.shift
                    err = sum(yy[c] - 2 * q[c] @ rhs[c] + q[c] @ gram[c] @ q[c]
                              for c in range(len(q)))
                    score = scored(err, size)
                    if score < best_score:
                        best, best_score = filt, score
    return best
