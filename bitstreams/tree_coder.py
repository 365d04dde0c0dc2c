"""Tree-structured masks: the geometry of a recursive rectangle split and its entropy coder.

Geometry
--------
The root cell is the whole image, ``[0, H - 1] x [0, W - 1]`` in pixel coordinates with
inclusive ends.  A split cuts a cell at its middle; the two halves share the cutting line,
so a corner shared by neighbouring cells is one mask point.  The split directions depend
only on the depth (R-EED, Schmaltz et al. 2014): in the binary tree (the default) depth d
cuts along the longer *nominal* side (W - 1) / 2^a versus (H - 1) / 2^b, so every cell of a
depth has the same nominal shape and the cells of depth d form a regular grid of
2^b(d) x 2^a(d) cells.  Cell (i, j) of that grid spans

    rows [floor(i (H - 1) / 2^b), floor((i + 1) (H - 1) / 2^b)],
    cols [floor(j (W - 1) / 2^a), floor((j + 1) (W - 1) / 2^a)],

which nests exactly (the children's outer boundaries are the parent's).  A direction can
be cut while its nominal length is at least 2, so no cell degenerates; the tree ends when
neither can.  The quadtree (``quad=True``) cuts both directions that can be cut at every
depth.  The mask is the set of the leaves' corners, plus each leaf's centre pixel
(``centres=True``).

A tree is stored as the sorted keys ``i * 2^a(d) + j`` of its split cells per depth
(:class:`Tree`), which is independent of the order in which an encoder made the splits.

Coding
------
Breadth first, depth by depth.  The cells of depth d are the children of the split cells
of depth d - 1; their split flags are coded in phases (child 0 of every parent, then
child 1, ...), each phase as vectorised calls of constriction's range coder with adaptive
binary contexts

    context = (depth (0..23), phase and number of earlier siblings split (10),
               number of the cell's 4 edge neighbours of the same depth that do not
               exist because their parents stayed leaves (0, 1, 2+))

with the probability (n1 + a p) / (n0 + n1 + a) of mask_coder.py: counts of the flags
coded before, backed off (a = 4) to the context pooled over the neighbour buckets, itself
backed off (weight 2) to 1/2; float64 from integer counts, identically on both sides,
clipped to [1e-6, 1 - 1e-6]; phases in chunks of doubling size.  Cells at the last depth
cannot split and cost nothing.

The section starts with one uint32 word: 4 x (number of split cells) + mode bits
(1: quadtree, 2: centres).  The count bounds the decoder's work (no depth holds more
than 4 x count + 1 cells) and must match the flags decoded.

Measured (Kodak luma; benchmarks/bench_tree.py and the commit messages):

* geometry, error-driven encoder at 0.1 bpp on kodim05/13/23, mean PSNR / position bits
  per point: binary corners 23.77 dB / 1.11, quadtree corners 23.88 / 0.57, binary with
  centres 23.97 / 0.63, quadtree with centres 24.03 / 0.29.  The quadtree with centres
  is the default of the encoders.
* contexts, quadtree with centres, map-driven trees of 5k / 10k / 25k points on 4 images,
  bits per point: all contexts 0.272 / 0.258 / 0.270; without the neighbour buckets
  0.275 / 0.266 / 0.284; without the sibling combo 0.278 / 0.274 / 0.303; depth only
  0.285 / 0.287 / 0.325; without depth 0.331 / 0.317 / 0.316.  About 0.43 bits per
  split flag and 0.61 flags per point (binary tree: 0.65 bits per flag, 0.89 per point).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inpcodec.bitstreams.adaptive import doubling_chunks

MODE_QUAD = 1
MODE_CENTRES = 2
N_DEPTH = 24
N_COMBO = 10  # (phase, earlier split siblings): (0,0) (1,0) (1,1) (2,0) .. (3,3)
N_NB = 3
N_CONTEXTS = N_DEPTH * N_COMBO * N_NB
_COMBO_BASE = np.array([0, 1, 3, 6])
P_MIN = 1e-6
BACKOFF = 4.0
PRIOR_WEIGHT = 2.0
MAX_PIXELS = 1 << 26  # the container's limit


@dataclass
class Tree:
    """A split tree over an image.

    Attributes
    ----------
    height, width : int
        Image size.
    quad : bool
        Quadtree (both directions per depth) instead of the binary R-EED tree.
    centres : bool
        The mask holds the leaves' centres as well as their corners.
    splits : list of ndarray
        ``splits[d]``: sorted int64 keys ``i * 2^a(d) + j`` of the split cells of depth d.
    """

    height: int
    width: int
    quad: bool = False
    centres: bool = False
    splits: list = field(default_factory=list)

    def n_splits(self) -> int:
        return int(sum(s.size for s in self.splits))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Tree):
            return NotImplemented
        a, b = _trim(self.splits), _trim(other.splits)
        return ((self.height, self.width, self.quad, self.centres)
                == (other.height, other.width, other.quad, other.centres)
                and len(a) == len(b)
                and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)))


def _trim(splits):
    s = list(splits)
    while s and s[-1].size == 0:
        s.pop()
    return s


def schedule(height: int, width: int, quad: bool = False) -> list:
    """Grid exponents ``(b, a)`` (2^b rows x 2^a columns of cells) of every depth.

    Entry d is depth d; cells of the last entry cannot be split.  Integer arithmetic
    only: x is cut when (W - 1) / 2^a >= (H - 1) / 2^b (ties cut x) and >= 2.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size {height}x{width} must be positive")
    ly, lx = height - 1, width - 1
    b = a = 0
    out = [(0, 0)]
    while True:
        can_y, can_x = ly >= (2 << b), lx >= (2 << a)
        if not (can_x or can_y):
            return out
        if quad:
            b, a = b + can_y, a + can_x
        elif can_x and (not can_y or (lx << b) >= (ly << a)):
            a += 1
        else:
            b += 1
        out.append((b, a))


def cell_bounds(height: int, width: int, grid: tuple, keys: np.ndarray):
    """Inclusive pixel bounds ``(y0, y1, x0, x1)`` of the cells ``keys`` of a grid (b, a)."""
    b, a = grid
    i, j = np.divmod(np.asarray(keys, np.int64), np.int64(1) << a)
    ly, lx = height - 1, width - 1
    return (i * ly) >> b, ((i + 1) * ly) >> b, (j * lx) >> a, ((j + 1) * lx) >> a


def children(keys: np.ndarray, grid: tuple, child_grid: tuple, phase: int) -> np.ndarray:
    """Keys (in the child grid) of child number ``phase`` of the cells ``keys``.

    Children are numbered row-major inside their parent: phase = ci * 2^da + cj.
    """
    b, a = grid
    db, da = child_grid[0] - b, child_grid[1] - a
    ci, cj = divmod(phase, 1 << da)
    i, j = np.divmod(np.asarray(keys, np.int64), np.int64(1) << a)
    return (((i << db) + ci) << child_grid[1]) + (j << da) + cj


def n_children(grid: tuple, child_grid: tuple) -> int:
    return 1 << ((child_grid[0] - grid[0]) + (child_grid[1] - grid[1]))


def depth_nodes(tree: Tree):
    """Yield ``(depth, grid, node keys (sorted), split flags)`` for every depth of the tree."""
    sched = schedule(tree.height, tree.width, tree.quad)
    nodes = np.zeros(1, np.int64)
    for d, grid in enumerate(sched):
        split = tree.splits[d] if d < len(tree.splits) else np.zeros(0, np.int64)
        if nodes.size == 0:
            if split.size:
                raise ValueError(f"depth {d} has splits below a leaf")
            return
        flags = np.isin(nodes, split)
        if int(flags.sum()) != split.size:
            raise ValueError(f"depth {d}: a split cell is not a cell of the tree")
        if split.size and d == len(sched) - 1:
            raise ValueError(f"depth {d} is the last: its cells cannot be split")
        yield d, grid, nodes, flags
        if d + 1 < len(sched):
            nc = n_children(grid, sched[d + 1])
            nodes = np.sort(np.concatenate(
                [children(split, grid, sched[d + 1], k) for k in range(nc)]))
    if len(_trim(tree.splits)) > len(sched):
        raise ValueError("the tree is deeper than the image allows")


def leaves(tree: Tree) -> list:
    """Per depth: ``(grid, keys of the leaf cells)``."""
    return [(grid, nodes[~flags]) for _, grid, nodes, flags in depth_nodes(tree)]


def cell_points(height: int, width: int, grid: tuple, keys: np.ndarray,
                centres: bool) -> np.ndarray:
    """Flat pixel indices, shape (n, 4) or (n, 5), of the mask points the cells ``keys``
    give as leaves: their corners, and their centres if ``centres``."""
    y0, y1, x0, x1 = cell_bounds(height, width, grid, keys)
    p = [y0 * width + x0, y0 * width + x1, y1 * width + x0, y1 * width + x1]
    if centres:
        p.append(((y0 + y1) >> 1) * width + ((x0 + x1) >> 1))
    return np.stack(p, axis=1)


def tree_mask(tree: Tree) -> np.ndarray:
    """The boolean mask of the tree: leaf corners (and centres if ``tree.centres``)."""
    m = np.zeros(tree.height * tree.width, bool)
    for grid, keys in leaves(tree):
        m[cell_points(tree.height, tree.width, grid, keys, tree.centres).ravel()] = True
    return m.reshape(tree.height, tree.width)


def merge_bottom_splits(tree: Tree, times: int = 1) -> Tree:
    """The tree with its bottom splits (those whose children are all leaves) undone,
    ``times`` over: each pass halves the resolution of the whole tree, as chroma
    subsampling does for a pixel grid.  The result's leaf corners are corners of ``tree``'s
    leaves; its leaf centres need not be points of ``tree``'s mask."""
    if times < 0:
        raise ValueError(f"times must be >= 0, got {times}")
    sched = schedule(tree.height, tree.width, tree.quad)
    splits = _trim(tree.splits)
    for _ in range(times):
        out = []
        for d, split in enumerate(splits):
            if d + 1 < len(splits) and splits[d + 1].size:
                (b, a), (cb, ca) = sched[d], sched[d + 1]
                ci, cj = np.divmod(splits[d + 1], np.int64(1) << ca)
                parents = ((ci >> (cb - b)) << a) + (cj >> (ca - a))
                out.append(split[np.isin(split, parents)])
            else:
                out.append(split[:0])
        splits = _trim(out)
    return Tree(tree.height, tree.width, tree.quad, tree.centres, list(splits))


def uniform_tree(height: int, width: int, depth: int, *, quad: bool = False,
                 centres: bool = False) -> Tree:
    """Every cell split down to ``depth`` (capped at the deepest splittable depth)."""
    sched = schedule(height, width, quad)
    depth = min(depth, len(sched) - 1)
    splits = [np.arange(1 << (b + a), dtype=np.int64) for b, a in sched[:depth]]
    return Tree(height, width, quad, centres, splits)


# ----------------------------------------------------------------------------- entropy coding


def _model():
    import constriction  # noqa: PLC0415

    return constriction.stream.model.Bernoulli(perfect=False)


def _probabilities(n0, n1, ctx):
    t0 = n0.reshape(-1, N_NB).sum(axis=1)
    t1 = n1.reshape(-1, N_NB).sum(axis=1)
    pooled = (t1 + PRIOR_WEIGHT * 0.5) / (t0 + t1 + PRIOR_WEIGHT)
    p = (n1[ctx] + BACKOFF * pooled[ctx // N_NB]) / (n0[ctx] + n1[ctx] + BACKOFF)
    return np.clip(p, P_MIN, 1.0 - P_MIN)


def _count(n0, n1, ctx, sym):
    n1 += np.bincount(ctx[sym == 1], minlength=N_CONTEXTS)
    n0 += np.bincount(ctx[sym == 0], minlength=N_CONTEXTS)


def _missing_neighbours(nodes: np.ndarray, grid: tuple) -> np.ndarray:
    """Per cell: edge neighbours inside the image that are not cells of this depth."""
    b, a = grid
    i, j = np.divmod(nodes, np.int64(1) << a)
    miss = np.zeros(nodes.size, np.int64)
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ni, nj = i + di, j + dj
        inside = (ni >= 0) & (ni < (1 << b)) & (nj >= 0) & (nj < (1 << a))
        key = (ni << a) + nj
        pos = np.minimum(np.searchsorted(nodes, key), nodes.size - 1)
        miss += inside & (nodes[pos] != key)
    return np.minimum(miss, N_NB - 1)


class _Encoder:
    """Codes the tree's own flags, phase by phase, in the walk's order."""

    def __init__(self, tree: Tree):
        import constriction  # noqa: PLC0415

        self.flags_of = {d: (nodes, flags) for d, _, nodes, flags in depth_nodes(tree)}
        self.enc = constriction.stream.queue.RangeEncoder()
        self.model = _model()

    def phase(self, d, nodes):
        all_nodes, all_flags = self.flags_of.get(d, (np.zeros(0, np.int64), np.zeros(0, bool)))
        pos = np.minimum(np.searchsorted(all_nodes, nodes), max(all_nodes.size - 1, 0))
        self.flags = all_flags[pos].astype(np.int32)

    def __call__(self, s, e, p):
        self.enc.encode(self.flags[s:e], self.model, p)
        return self.flags[s:e]


class _Decoder:
    def __init__(self, words):
        import constriction  # noqa: PLC0415

        self.dec = constriction.stream.queue.RangeDecoder(words)
        self.model = _model()

    def phase(self, d, nodes):
        pass

    def __call__(self, s, e, p):
        return np.asarray(self.dec.decode(self.model, p), np.int32)


def _walk(height, width, quad, count, coder):
    """Breadth-first walk shared by encoder and decoder; returns the split keys per depth.

    ``coder.phase(depth, cell keys)`` announces a phase; ``coder(start, end, p)`` codes
    (or decodes) the flags ``start:end`` of that phase with probabilities ``p`` of a 1.
    """
    sched = schedule(height, width, quad)
    n0 = np.zeros(N_CONTEXTS, np.int64)
    n1 = np.zeros(N_CONTEXTS, np.int64)
    splits = []
    parents = np.zeros(1, np.int64)
    total = 0
    for d in range(len(sched) - 1):  # the last depth cannot split: nothing to code
        grid = sched[d]
        if d == 0:
            by_phase = [np.zeros(1, np.int64)]
        else:
            nc = n_children(sched[d - 1], grid)
            by_phase = [children(parents, sched[d - 1], grid, k) for k in range(nc)]
        all_nodes = np.sort(np.concatenate(by_phase))
        nb = _missing_neighbours(all_nodes, grid)
        earlier = np.zeros(by_phase[0].size, np.int64)
        split_keys = []
        for k, nodes in enumerate(by_phase):
            coder.phase(d, nodes)
            kk = min(k, 3)
            combo = _COMBO_BASE[kk] + np.minimum(earlier, kk)
            ctx = (min(d, N_DEPTH - 1) * N_COMBO + combo) * N_NB \
                + nb[np.searchsorted(all_nodes, nodes)]
            flags = np.zeros(nodes.size, np.int32)
            for s, e in doubling_chunks(nodes.size):
                f = np.asarray(coder(s, e, _probabilities(n0, n1, ctx[s:e])), np.int32)
                flags[s:e] = f
                _count(n0, n1, ctx[s:e], f)
                total += int(f.sum())
                if total > count:
                    raise ValueError(f"more split flags than the {count} announced")
            earlier += flags
            split_keys.append(nodes[flags == 1])
        parents = np.sort(np.concatenate(split_keys))
        splits.append(parents)
        if parents.size == 0:
            break
    if total != count:
        raise ValueError(f"{total} split flags decoded, {count} announced")
    return splits


def encode_tree(tree: Tree) -> np.ndarray:
    """Compressed words (uint32) of a tree (format in the module docstring)."""
    count = tree.n_splits()
    if count > tree.height * tree.width:
        raise ValueError("more splits than pixels")
    coder = _Encoder(tree)  # validates the tree
    _walk(tree.height, tree.width, tree.quad, count, coder)
    mode = (MODE_QUAD if tree.quad else 0) | (MODE_CENTRES if tree.centres else 0)
    return np.concatenate([np.array([4 * count + mode], np.uint32),
                           coder.enc.get_compressed()])


def decode_tree(words: np.ndarray, height: int, width: int) -> Tree:
    """Inverse of :func:`encode_tree`.

    Raises
    ------
    ValueError
        On a bad header or damaged data (every loop is bounded by the announced count,
        itself bounded by the number of pixels).
    """
    if not (1 <= height and 1 <= width and height * width <= MAX_PIXELS):
        raise ValueError(f"image size {height}x{width} outside the limits")
    words = np.asarray(words, np.uint32)
    if words.ndim != 1 or words.size < 1:
        raise ValueError("the tree section is empty")
    count, mode = divmod(int(words[0]), 4)
    if count > height * width:
        raise ValueError(f"{count} splits announced for {height * width} pixels")
    quad, centres = bool(mode & MODE_QUAD), bool(mode & MODE_CENTRES)
    try:
        splits = _walk(height, width, quad, count, _Decoder(words[1:]))
    except (RuntimeError, AssertionError, IndexError, OverflowError) as exc:
        raise ValueError(f"damaged tree section ({type(exc).__name__})") from None
    return Tree(height, width, quad, centres, splits)
