"""Long fuzz run of the decoder: mutated files must be refused cleanly, never crash or hang.

    python benchmarks/fuzz_decoder.py --mutations 100000 --write-results

Seeded mutations of small valid files (grey and colour, every encoder and tool of the
codec): half are byte-level (byte changes, truncations and extensions, garbage
entropy-coded payloads behind an intact header, random bytes behind the right magic;
every other one gets its CRC repaired), half are structure-aware and checksum-valid (a
header field set to a boundary or random value; a section's payload flipped, cut,
extended, zeroed or replaced; a section dropped, duplicated, renamed or added; the file
rebuilt with a correct CRC), so that the parsers and the entropy decoders see hostile
input that passes the checksum.  Outcomes: *refused* (FormatError / CodecError, the
expected error; *multi-line* if its message has more than one line), *decoded* (the
decoder returned an image), *crash* (any other exception) and *hang* (a decode slower
than 5 s plus 0.5 microseconds per pixel of the file's header).
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

from inpcodec.bitstreams import container

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


_HEAD = struct.Struct("<4sBIIBB")  # magic, version, width, height, channels, colour
HEADER_FIELDS = ("version", "width", "height", "channels", "colour")
#: Tags a renamed or added section takes: every known one, unknown critical and ancillary.
TAGS = [b"MASK", b"CTRE", b"VAL0", b"VAL1", b"VAL2", b"GUID", b"FILT", b"PARM", b"iccp",
        b"exif", b"xmp ", b"zzzz", b"ZZZZ"]


def _sections(data: bytes):
    """(header fields, [(tag bytes, payload)]) of a valid file: the container's framing
    alone (:func:`container.unframe`), not the checks of the sections being tested."""
    head, frames = container.unframe(data)
    return {k: getattr(head, k) for k in HEADER_FIELDS}, list(frames)


def _build(head: dict, sections) -> bytes:
    """A file with these fields and sections, framed as its version says, with a correct
    CRC (:func:`container.frame` checks nothing)."""
    return container.frame(*(int(head[k]) for k in HEADER_FIELDS), sections)


def mutate_structured(rng, data: bytes) -> bytes:
    """A checksum-valid mutant of a valid file: one header field or one section changed."""
    head, sections = _sections(data)
    kind = rng.integers(3)
    if kind == 0 or not sections:
        field = HEADER_FIELDS[rng.integers(len(HEADER_FIELDS))]
        choices = [0, 1, 2, 3, 7, 16, 17, 31, 32, 255, 256, 4096, 32767, 32768, 32769, 65535, 2**31,
                   2**32 - 1, int(rng.integers(1, 40000)), head[field] + 1,
                   max(0, head[field] - 1), head[field] * 2, head["width"] * 1024]
        head[field] = choices[rng.integers(len(choices))]
    elif kind == 1:
        i = int(rng.integers(len(sections)))
        tag, p = sections[i]
        p = bytearray(p)
        how = rng.integers(5)
        if how == 0 and p:
            for _ in range(rng.integers(1, 4)):
                p[rng.integers(len(p))] ^= 1 << int(rng.integers(8))
        elif how == 1 and p:
            p = p[:rng.integers(len(p))]
        elif how == 2:
            p += rng.integers(0, 256, rng.integers(1, 64), dtype=np.uint8).tobytes()
        elif how == 3:
            p = bytearray(len(p)) if rng.random() < 0.5 else bytearray(b"\xff" * len(p))
        else:
            p = bytearray(rng.integers(0, 256, len(p), dtype=np.uint8).tobytes())
        sections[i] = (tag, bytes(p))
    else:
        i = int(rng.integers(len(sections)))
        how = rng.integers(4)
        if how == 0:
            del sections[i]
        elif how == 1:
            sections.insert(int(rng.integers(len(sections) + 1)), sections[i])
        elif how == 2:
            known = [t for t, _ in sections] + TAGS
            sections[i] = (known[rng.integers(len(known))], sections[i][1])
        else:
            tag = (TAGS[rng.integers(len(TAGS))] if rng.random() < 0.5
                   else rng.integers(65, 91, 4, dtype=np.uint8).tobytes())
            sections.insert(int(rng.integers(len(sections) + 1)),
                            (tag,
                             rng.integers(0, 256, rng.integers(0, 40),
                                          dtype=np.uint8).tobytes()))
    return _build(head, sections)


def main():
    from inpcodec import decode, encode
    from inpcodec.bitstreams import FormatError
    from inpcodec.codec.limits import CodecError

    ap = argparse.ArgumentParser()
    ap.add_argument("--mutations", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--timeout", type=float, default=5.0,
                    help="seconds a decode may take beside 0.5 us per pixel")
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
        # tree-coded masks (value model 2): grey; colour with chroma on a coarser tree;
        # the same with chroma guided by the luma
        encode((img_rng.random((24, 30)) * 255).astype(np.uint8), encoder="tree",
               density=0.1, tonal=False, loop_filter=False),
        encode((img_rng.random((20, 17, 3)) * 255).astype(np.uint8), encoder="tree-map",
               density=0.15, tonal=False, chroma_guide=False, loop_filter=False),
        encode(_disc_image(), encoder="tree", density=0.1, tonal=False, loop_filter=False),
        # a free mask with a loop filter
        encode(_disc_image(), encoder="belhachmi", density=0.1, tonal=False),
        # the default (Lagrangian) encoder's files: grey, colour with the chroma tree,
        # loop filter and chroma guide where they pay; a lossless file; a 1 x 1 image
        encode((img_rng.random((21, 26)) * 255).astype(np.uint8)),
        encode(_disc_image(), quality=70),
        encode(_disc_image(8, 6), bpp=30.0),
        encode(np.array([[[200, 10, 30]]], np.uint8)),
    ]
    # inpcodec 0.2.0's files (versions 1 and 2), and the conformance set of format 1.0
    # (every tool: loop filters of edge modes 1 and 2, metadata, value model 1 on a tree)
    seeds += [(SAMPLES / f"sample-v{v}-{name}.inpc").read_bytes() for v, name in
              ((1, "colour"), (2, "grey-tree"))]
    seeds += [p.read_bytes() for p in sorted((SAMPLES / "conformance").glob("*.inpc"))
              if not p.name.startswith("refuse-")]
    versions = sorted({s[4] for s in seeds})
    print(len(seeds), "seeds of versions", versions)
    if versions != [1, 2, container.VERSION]:
        raise SystemExit(f"seed versions changed: {versions}")
    signal.signal(signal.SIGALRM, _alarm)
    counts = {"refused": 0, "multi-line": 0, "decoded": 0, "crash": 0, "hang": 0}
    examples = []
    t0 = time.perf_counter()
    for i in range(args.mutations):
        seed = seeds[i % len(seeds)]
        data = mutate(rng, seed) if i % 2 else mutate_structured(rng, seed)
        pixels = 0
        if len(data) >= _HEAD.size:
            _, _, w, h, _, _ = _HEAD.unpack_from(data)
            pixels = min(w * h, 1 << 26)  # more is refused from the header
        signal.setitimer(signal.ITIMER_REAL, args.timeout + 0.5e-6 * pixels)
        try:
            decode(data)
            counts["decoded"] += 1
        except (FormatError, CodecError) as exc:
            counts["refused"] += 1
            if "\n" in str(exc).strip():
                counts["multi-line"] += 1
                examples.append(("multi-line", str(exc)))
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
            f"tree-mask (grey, chroma tree, guided chroma), a free-mask file with a loop "
            f"filter, 4 of the default encoder (grey, colour, lossless, 1 x 1), inpcodec "
            f"0.2.0's samples of versions 1 and 2, and the format 1.0 conformance set; "
            f"half the mutants byte-level, half structure-aware "
            f"and checksum-valid; a hang is a decode over {args.timeout:g} s plus 0.5 us "
            f"per pixel): {args.mutations} mutated files decoded in {seconds:.0f} s: "
            f"refused {counts['refused']} (multi-line messages {counts['multi-line']}), "
            f"decoded {counts['decoded']}, "
            f"**crashes {counts['crash']}, hangs {counts['hang']}**.")
    print(text)
    for kind, ex in examples[:5]:
        print(kind, ex)
    if args.write_results:
        write_section(MARK, "## Decoder fuzzing", text)


if __name__ == "__main__":
    main()
