"""Long fuzz run of the decoder: mutated files must be refused cleanly, never crash or hang.

    python benchmarks/fuzz_decoder.py --mutations 100000 --write-results

Seeded mutations of small valid files (grey and colour): byte changes, truncations and
extensions, garbage entropy-coded payloads behind an intact header, random bytes behind
the right magic; every other mutation gets its CRC repaired so that the parser and the
entropy decoders see the garbage too.  Outcomes: *refused* (FormatError / CodecError,
the expected one-line error), *decoded* (a valid-looking file: the decoder returned an
image), *crash* (any other exception) and *hang* (a decode over ``--timeout`` seconds).
"""

from __future__ import annotations

import argparse
import signal
import struct
import time
import traceback
import zlib
from pathlib import Path

import numpy as np
from _results import write_section

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "tests" / "data"
MARK = "fuzz_decoder"


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def _disc_image(h=24, w=32):
    """RGB: a saturated disc on a colour ramp (chroma edges where the luma's are)."""
    i, j = np.mgrid[:h, :w]
    img = np.stack([60 + i, 70 + j // 2, 80 + (i + j) // 3], axis=-1)
    img[(i - 20) ** 2 + (j - 24) ** 2 < 150] = (220, 40, 50)
    return np.clip(img, 0, 255).astype(np.uint8)


def mutate(rng, data: bytes) -> bytes:
    d = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        for _ in range(rng.integers(1, 6)):
            d[rng.integers(len(d))] = rng.integers(256)
    elif kind == 1:
        if rng.random() < 0.5:
            d = d[: rng.integers(len(d))]
        else:
            d += rng.integers(0, 256, rng.integers(1, 50), dtype=np.uint8).tobytes()
    elif kind == 2:
        start = int(rng.integers(20, max(21, len(d) - 4)))
        d[start:-4] = rng.integers(0, 256, max(0, len(d) - 4 - start), dtype=np.uint8).tobytes()
    else:
        d = bytearray(b"INPC" + rng.integers(0, 256, rng.integers(0, 120),
                                             dtype=np.uint8).tobytes())
    if rng.random() < 0.5 and len(d) > 4:
        body = bytes(d[:-4])
        d = bytearray(body + struct.pack("<I", zlib.crc32(body)))
    return bytes(d)


def main():
    from inpcodec import decode, encode
    from inpcodec.bitstreams import FormatError
    from inpcodec.codec.limits import CodecError

    ap = argparse.ArgumentParser()
    ap.add_argument("--mutations", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    img_rng = np.random.default_rng(1)
    seeds = [
        encode((img_rng.random((16, 20)) * 255).astype(np.uint8), encoder="belhachmi",
               density=0.15, tonal=False, loop_filter=False),
        encode((img_rng.random((12, 9, 3)) * 255).astype(np.uint8), encoder="belhachmi",
               density=0.3, tonal=False, loop_filter=False),
        encode(np.full((40, 33), 77, np.uint8), encoder="belhachmi", density=0.02, tonal=False,
               loop_filter=False),
        # tree-coded masks, format version 5 (value model 2): grey; colour with chroma
        # on a coarser tree; the same with chroma guided by the luma
        encode((img_rng.random((24, 30)) * 255).astype(np.uint8), encoder="tree",
               density=0.1, tonal=False, loop_filter=False),
        encode((img_rng.random((20, 17, 3)) * 255).astype(np.uint8), encoder="tree-map",
               density=0.15, tonal=False, chroma_guide=False, loop_filter=False),
        encode(_disc_image(), encoder="tree", density=0.1, tonal=False, loop_filter=False),
        # a free mask with a loop filter (version 7)
        encode(_disc_image(), encoder="belhachmi", density=0.1, tonal=False),
    ]
    # versions the encoder no longer writes (value model 1; the int16 loop filter of
    # version 6), and files with the loop filter of version 7 (grey: edge mode 1, colour:
    # edge mode 2): the committed samples
    seeds += [(SAMPLES / f"sample-v{v}-{name}.inpc").read_bytes() for v, name in
              ((2, "grey-tree"), (3, "colour-tree"), (4, "colour-tree-guided"),
               (6, "grey-tree-filtered"), (7, "grey-tree-filtered"),
               (7, "colour-tree-filtered"))]
    if [s[4] for s in seeds] != [1, 1, 1, 5, 5, 5, 7, 2, 3, 4, 6, 7, 7]:
        raise SystemExit(f"seed versions changed: {[s[4] for s in seeds]}")
    signal.signal(signal.SIGALRM, _alarm)
    counts = {"refused": 0, "decoded": 0, "crash": 0, "hang": 0}
    examples = []
    t0 = time.perf_counter()
    for i in range(args.mutations):
        data = mutate(rng, seeds[i % len(seeds)])
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
        try:
            decode(data)
            counts["decoded"] += 1
        except (FormatError, CodecError):
            counts["refused"] += 1
        except _Hang:
            counts["hang"] += 1
            examples.append(("hang", data.hex()))
        except Exception:  # noqa: BLE001 - a crash is what we count
            counts["crash"] += 1
            examples.append(("crash", traceback.format_exc(limit=2)))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if (i + 1) % 10000 == 0:
            print(i + 1, counts, flush=True)
    seconds = time.perf_counter() - t0
    text = (f"Command: `python benchmarks/fuzz_decoder.py --mutations {args.mutations} "
            f"--write-results` (seed {args.seed}, {len(seeds)} seed files: 3 free-mask, 3 "
            f"tree-mask of version 5 (grey, chroma tree, guided chroma), a free-mask file "
            f"with a loop filter (version 7), the samples of "
            f"versions 2, 3, 4 and 6 and the two of version 7 (loop filters); timeout "
            f"{args.timeout:g} s): "
            f"{args.mutations} mutated files decoded in {seconds:.0f} s: "
            f"refused {counts['refused']}, decoded {counts['decoded']}, "
            f"**crashes {counts['crash']}, hangs {counts['hang']}**.")
    print(text)
    for kind, ex in examples[:5]:
        print(kind, ex)
    if args.write_results:
        write_section(MARK, "## Decoder fuzzing", text)


if __name__ == "__main__":
    main()
