"""Rate control: hit a target size in bits per pixel by searching density and quantisation.

For each candidate number of luma levels (16, 32, 64, 128 unless given), the density is
found by secant steps on log(density) against log(bpp) measured on real encodes: first
with the fast Belhachmi proxy and without tonal optimisation, then with the real encoder
and settings until the file lands within ``RATE_TOLERANCE`` of the target (the slow
stochastic encoders run only at the density the proxy predicts, corrected at most twice,
after which the luma levels are nudged to close the gap).  Among the candidates that hit
the target the one with the best PSNR of the decoded file wins.
"""

from __future__ import annotations

import math

import numpy as np

from .pipeline import CodecError, _encode_once, _psnr, decode, make_mask

RATE_TOLERANCE = 0.03
LEVEL_CANDIDATES = (16, 32, 64, 128)


def _bpp(data: bytes, n: int) -> float:
    return 8.0 * len(data) / n


def lowest_bpp(img, planes) -> float:
    """Size of the smallest file this image can have: one mask point, 2 levels."""
    mask = np.zeros(img.shape[:2], bool)
    mask[0, 0] = True
    data, _, _ = _encode_once(img, planes, mask, 2, 2, False)
    return _bpp(data, mask.size)


def _secant(bpp_fn, target, d0, tol, max_steps, log):
    """Find d with |bpp(d) / target - 1| <= tol; returns the closest (d, result) seen."""
    d, slope = d0, 0.9
    best = None
    prev = None
    for _ in range(max_steps):
        res = bpp_fn(d)
        b = res[0]
        log.append({"density": d, "bpp": b})
        err = abs(b / target - 1.0)
        if best is None or err < best[0]:
            best = (err, d, res)
        if err <= tol:
            break
        if prev is not None and prev[0] != d and prev[1] > 0 and b > 0:
            s = math.log(b / prev[1]) / math.log(d / prev[0])
            if 0.3 < s < 2.0:
                slope = s
        prev = (d, b)
        d = float(np.clip(d * (target / b) ** (1.0 / slope), 1e-7, 1.0))
    return best[1], best[2]


def search_rate(img, planes, target, encoder, levels, chroma_levels, tonal, seed, progress):
    n = img.shape[0] * img.shape[1]
    if not target > 0:
        raise CodecError(f"bpp must be positive, got {target}")
    floor = lowest_bpp(img, planes)
    if target < floor:
        raise CodecError(f"bpp {target:g} is below the lowest this image can reach "
                         f"({floor:.4f} bpp: a single stored point)")
    luma = planes[:, :, 0]
    cands = [int(levels)] if levels is not None else list(LEVEL_CANDIDATES)
    log, outcomes = [], []
    min_d = 1.0 / n
    for lv in cands:
        clv = int(chroma_levels) if chroma_levels is not None else max(2, lv // 2)

        def proxy(d, lv=lv, clv=clv):
            mask, _ = make_mask(luma, "belhachmi", max(d, min_d), seed)
            data, cont, _ = _encode_once(img, planes, mask, lv, clv, False)
            return _bpp(data, n), data, cont, mask, 0

        d0 = max(min_d, target / (8.0 + math.log2(lv) * planes.shape[2]))
        d, _ = _secant(proxy, target, d0, 0.01, 12, log)

        cheap = encoder in ("belhachmi", "random")

        def real(d, lv=lv, clv=clv):
            mask, spent = make_mask(luma, encoder, max(d, min_d), seed, progress)
            data, cont, sp2 = _encode_once(img, planes, mask, lv, clv, tonal)
            return _bpp(data, n), data, cont, mask, spent + sp2

        d, res = _secant(real, target, d, RATE_TOLERANCE * 0.8, 6 if cheap else 3, log)
        b, data, cont, mask, spent = res
        lv_final = lv
        if abs(b / target - 1.0) > RATE_TOLERANCE:  # close the gap with the luma levels
            step = 1 if b < target else -1
            lv_try = lv
            for _ in range(64):
                lv_try += step * max(1, lv_try // 16)
                if not 2 <= lv_try <= 4096:
                    break
                data2, cont2, sp = _encode_once(img, planes, mask, lv_try, clv, tonal)
                spent += sp
                b2 = _bpp(data2, n)
                log.append({"density": float(mask.mean()), "bpp": b2, "levels": lv_try})
                if abs(b2 / target - 1.0) < abs(b / target - 1.0):
                    b, data, cont, lv_final = b2, data2, cont2, lv_try
                if (b2 > target) == (step > 0) or abs(b / target - 1.0) <= RATE_TOLERANCE:
                    break
        psnr = _psnr(decode(data), img)
        outcomes.append((abs(b / target - 1.0) <= RATE_TOLERANCE, psnr, data, cont, mask,
                         lv_final, clv, spent, b))
    hits = [o for o in outcomes if o[0]]
    pool = hits if hits else outcomes
    best = max(pool, key=lambda o: o[1]) if hits else min(pool, key=lambda o: abs(o[8] - target))
    if not hits:
        raise CodecError(f"could not reach {target:g} bpp within {RATE_TOLERANCE:.0%} "
                         f"(closest: {best[8]:.4f} bpp)")
    _, _, data, cont, mask, lv, clv, spent, _ = best
    return data, cont, mask, lv, clv, spent, log
