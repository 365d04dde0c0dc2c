"""The tree values' model 2 against model 1, and what each of its parts saves (issue 20).

    python benchmarks/bench_value_model.py --kodak ../shared/data/kodak \\
        --files ../runs/files_grey --write-results
    python benchmarks/bench_value_model.py --kodak ../shared/data/kodak --colour \\
        --files ../runs/files_colour --write-results

For every image and rate, the default encoder's file (read from ``--files`` as
``<image>_<bpp>.inpc``; encoded and written there when missing), then per channel the
stored values coded again: by model 1 (value coders 2 and 3) and by model 2 (value coders
4 and 5), both real constriction streams, and the analytic code lengths of the steps
from model 1 to model 2, each step added to the ones before:

1. ``tails``: the value coded on [0, Q-1] around the rounded prediction, the tails in the
   edge bins (model 1 codes the residual on [-(Q-1), Q-1]);
2. ``median``: the centres predicted by the median of their four nearest predictors;
3. ``unrounded``: every prediction kept to 1/256 of a level;
4. ``act6``: 6 activity classes instead of 3;
5. ``floor``: the smallest scale 0.5 instead of 0.3 (= model 2).

The choices were made on kodim01-06; the other images are held out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _results import command_line, default_file, write_section

from inpcodec.bitstreams.adaptive import doubling_chunks
from inpcodec.bitstreams.tree_values import (
    FX,
    N_STAGE,
    encode_tree_values,
    laplace_bits,
    plan,
)
from inpcodec.codec import decoder as D
from inpcodec.codec.io import load_image

STEPS = ("model 1", "tails", "median", "unrounded", "act6", "floor")
CHOSEN_ON = tuple(f"kodim{i:02d}" for i in range(1, 7))


def step_bits(tree, q, levels, step: int) -> float:
    """Analytic bits of ``q`` with the first ``step`` steps from model 1 to model 2."""
    tails, median, unrounded, act6, floor = (step > k for k in range(5))
    n_act = 6 if act6 else 3
    min_scale = 0.5 if floor else 0.3
    _, stages = plan(tree)
    abs_sum = np.zeros(N_STAGE * n_act)
    count = np.zeros(N_STAGE * n_act)
    total = 0.0
    for stage, idx, cor, wts in stages:
        if idx.size == 0:
            continue
        if cor is None:
            mean = np.full(idx.size, (levels - 1) / 2 if unrounded else levels // 2)
            act = np.full(idx.size, n_act - 1)
        else:
            v = q[cor]
            near = v[:, :4]
            den = wts.sum(axis=1)
            if median and (stage == N_STAGE - 1 or cor.shape[1] == 8):
                srt = np.sort(near, axis=1)
                mean = (srt[:, 1] + srt[:, 2]) / 2
                if not unrounded:
                    mean = np.floor(mean + 0.5)
            elif unrounded:
                mean = ((2 * FX * (v * wts).sum(axis=1) + den) // (2 * den)) / FX
            else:
                mean = np.clip((2 * (v * wts).sum(axis=1) + den) // (2 * den), 0, levels - 1)
            spread = 32 * (near.max(axis=1) - near.min(axis=1))
            if act6:
                act = sum((spread > (levels << k)).astype(int) for k in range(5))
            else:
                act = np.where(spread <= levels, 0, np.where(spread <= 4 * levels, 1, 2))
        ctx = stage * n_act + act
        for a, b in doubling_chunks(idx.size):
            c, x, m = ctx[a:b], q[idx[a:b]], mean[a:b]
            scales = np.maximum((abs_sum[c] + 2) / (count[c] + 2), min_scale)
            if tails:
                total += laplace_bits(x, m, scales, 0, levels - 1).sum()
            else:
                total += laplace_bits(x - m, 0.0, scales).sum()
            np.add.at(abs_sum, c, np.abs(x - m))
            np.add.at(count, c, 1)
    return float(total)


def measure(data: bytes):
    """Per channel: (values, model-1 bits, model-2 bits, analytic bits per step)."""
    cont, params, mask_section, values = D.parse(data)
    out = []
    for c, (mask, tree) in enumerate(D.decode_masks(cont, params, mask_section, values)):
        levels = values[c].levels
        q = values[c].decompress(mask, tree, c)
        real = [32 * encode_tree_values(tree, q, levels, m).size for m in (1, 2)]
        out.append((q.size, *real, [step_bits(tree, q, levels, s) for s in range(6)]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", required=True, help="folder of the Kodak PNG images")
    ap.add_argument("--files", required=True, help="folder of the files (made if missing)")
    ap.add_argument("--colour", action="store_true")
    ap.add_argument("--bpp", default="0.05,0.1,0.3")
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    files = Path(args.files)
    files.mkdir(parents=True, exist_ok=True)
    images = sorted(Path(args.kodak).glob("kodim*.png"))[: args.limit]
    rates = [float(b) for b in args.bpp.split(",")]
    # group -> channel kind -> [values, model-1 bits, model-2 bits, steps...]
    sums = {}
    for path in images:
        img = load_image(path, grey=not args.colour)
        group = "chosen on (kodim01-06)" if path.stem in CHOSEN_ON else "held out"
        for bpp in rates:
            data = default_file(files, path.stem, bpp, img)
            line = f"{path.stem} {bpp:g} bpp, bits per value, model 1 -> 2:"
            for c, (n, b1, b2, steps) in enumerate(measure(data)):
                kind = "luma" if c == 0 else "chroma"
                acc = sums.setdefault(group, {}).setdefault(kind, np.zeros(3 + len(STEPS)))
                acc += [n, b1, b2, *steps]
                line += f" c{c} {b1 / n:.3f} -> {b2 / n:.3f}"
            print(line, flush=True)
    lines = [f"Command: `{command_line()}`.", "",
             "Bits per value (real constriction streams), and the analytic saving of each "
             "step from model 1 to model 2 (each added to those before), against model 1's "
             "analytic bits:", "",
             "| images | channel | values | model 1 | model 2 | saved | "
             + " | ".join(STEPS[1:]) + " |",
             "|---|---|---:|---:|---:|---:|" + "---:|" * (len(STEPS) - 1)]
    for group, kinds in sums.items():
        for kind, acc in kinds.items():
            n, b1, b2, *steps = acc
            gains = [f"{100 * (s / steps[0] - 1):+.2f} %" for s in steps[1:]]
            lines.append(f"| {group} | {kind} | {int(n)} | {b1 / n:.3f} | {b2 / n:.3f} | "
                         f"{100 * (b2 / b1 - 1):+.2f} % | " + " | ".join(gains) + " |")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        mode = "colour" if args.colour else "grey"
        write_section(f"bench_value_model_{mode}",
                      "### Value model 2 (format version 5, issue 20)", text)


if __name__ == "__main__":
    main()
