#!/bin/bash
# usage: benchmarks/speed.sh IMAGE ARGS...   (inpcodec and python of the environment on PATH)
# Prints inpcodec's encode wall time and peak RSS (/usr/bin/time, KiB; --strip: the photo's
# metadata is left out, as Pillow's encoders below leave it), then Pillow's AVIF
# time at the largest quality whose file is no larger, and JPEG, JPEG 2000 (ratio 50), WebP
# and JPEG XL at quality 50; benchmarks/plot_speed_scaling.py reads its output.
img=$1; shift
out=${TMPDIR:-/tmp}/speed-$$.inpc
/usr/bin/time -f "inpcodec_wall %e s peak_rss %M KB" inpcodec encode "$img" $out --quiet --strip "$@" 2>&1 | tail -3
python - "$img" $out <<'PY'
import sys, time, numpy as np
from PIL import Image
from inpcodec.codec.bench.refcodecs import pillow_encode
img = np.asarray(Image.open(sys.argv[1]).convert("RGB")); size = len(open(sys.argv[2],'rb').read())
n = img.shape[0]*img.shape[1]
print(f"file {size} bytes = {8*size/n:.4f} bpp, {n/1e6:.2f} MP")
lo, hi = 0, 100
while lo < hi:  # largest quality whose file is no larger
    mid = (lo + hi + 1) // 2
    if len(pillow_encode(img, "avif", mid)) <= size: lo = mid
    else: hi = mid - 1
t = time.perf_counter(); d = pillow_encode(img, "avif", lo); dt = time.perf_counter() - t
print(f"avif quality {lo} {len(d)} bytes, {dt:.2f} s")
for c, q in (("jpeg", 50), ("jpeg2000", 50), ("webp", 50), ("jpegxl", 50)):
    try:
        t = time.perf_counter(); pillow_encode(img, c, q); print(f"{c} {time.perf_counter()-t:.2f} s")
    except Exception as e: print(c, "failed", e)
PY
