"""Training data: random crops for holes, and a cache of real decoder outputs.

The post-processor must learn on what the decoder really produces, so its training
samples are made by the codec itself, :func:`codec.encode` and :func:`codec.decode` (which
also gives the mask of stored pixels), for one of the two mask families
(``CacheSettings.codec``):

* ``"free"``: the mask from the Belhachmi or the learned encoder on the luma, density 1-10 %
  log-uniform, 16-64 luma levels with the codec's chroma levels, tonal optimisation with
  the quantiser in the loop;
* ``"tree"``: the default tree encoder at a target rate of 0.05-0.5 bpp log-uniform (the
  rates users pick), with the codec's own rate search choosing the tree and the levels.

Tonal optimisation costs about 7 s per 481 x 321 colour image on one core, far too much
per training step, so these (original, decoded, mask) triples are computed once into a
cache folder (:func:`prepare_cache`, one ``.npz`` per item written atomically, so an interrupted
preparation resumes) and training draws random crops from them.  Whole images are
encoded, not crops, so that crops see the image's real boundaries only where it has them.
"""

from __future__ import annotations

import json
import math
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from inpcodec.codec.decoder import decode
from inpcodec.codec.io import find_images, load_image
from inpcodec.codec.pipeline import DEFAULT_ENCODER, encode

#: Luma quantisation levels of the training encodes (the codec's chroma levels follow).
LEVELS = (16, 24, 32, 48, 64)
ENCODERS = ("belhachmi", "learned")


def load_rgb(path: Path) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3) (grey images repeated in the three channels)."""
    a = load_image(path, drop_alpha=True)
    return np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 BT.601 luma, as Pillow's ``convert("L")`` (what a grey file would hold)."""
    from PIL import Image  # noqa: PLC0415

    return np.asarray(Image.fromarray(rgb).convert("L"))


def centre_crop(a: np.ndarray, side: int) -> np.ndarray:
    y, x = max(0, (a.shape[0] - side) // 2), max(0, (a.shape[1] - side) // 2)
    return a[y:y + side, x:x + side]


# ----------------------------------------------------------------------------- decoder cache


@dataclass
class CacheSettings:
    """What the cache holds; stored in its ``settings.json`` and checked on reuse."""

    data: list
    val: list
    variants: int = 2
    density_min: float = 0.01
    density_max: float = 0.10
    grey_fraction: float = 0.2
    tonal: bool = True
    val_images: int = 8
    val_side: int = 256
    val_densities: tuple = (0.02, 0.05, 0.10)
    seed: int = 0
    # "free" (the settings above) or "tree" (the default tree encoder at a target rate)
    codec: str = "free"
    bpp_min: float = 0.05
    bpp_max: float = 0.5
    val_bpps: tuple = (0.05, 0.1, 0.3)


#: The mask families a cache can be made for.
CODECS = ("free", "tree")


def _item_plan(settings: CacheSettings) -> list[dict]:
    """Every item of the cache: which image, how it is encoded (seeded, so reproducible)."""
    rng = np.random.default_rng(settings.seed)
    plan = []
    for path in find_images(settings.data):
        for v in range(settings.variants):
            plan.append({"name": f"train-{path.stem}-{v}", "path": str(path), "crop": None,
                         **_training_encoding(settings, rng), "tonal": settings.tonal})
    if settings.val:
        for k, path in enumerate(find_images(settings.val)[:settings.val_images]):
            for j, how in enumerate(_validation_encodings(settings, k)):
                plan.append({"name": f"val-{path.stem}-{j}", "path": str(path),
                             "crop": settings.val_side, **how, "tonal": settings.tonal})
    return plan


def _training_encoding(settings: CacheSettings, rng: np.random.Generator) -> dict:
    """How one training image is encoded: free masks at a log-uniform density with a
    random encoder and level count, or the default tree encoder at a log-uniform rate."""
    if settings.codec == "tree":
        lo, hi = math.log(settings.bpp_min), math.log(settings.bpp_max)
        return {"bpp": float(math.exp(rng.uniform(lo, hi))), "encoder": DEFAULT_ENCODER,
                "levels": None, "grey": bool(rng.random() < settings.grey_fraction)}
    lo, hi = math.log(settings.density_min), math.log(settings.density_max)
    return {"density": float(math.exp(rng.uniform(lo, hi))),
            "encoder": ENCODERS[int(rng.integers(len(ENCODERS)))],
            "levels": int(rng.choice(LEVELS)),
            "grey": bool(rng.random() < settings.grey_fraction)}


def _validation_encodings(settings: CacheSettings, k: int) -> list[dict]:
    """The encodings of the ``k``-th validation image: free masks at the fixed densities
    (encoders alternating, colour), or the tree at the fixed rates (grey and colour
    alternating: the tree's post-processor serves both)."""
    if settings.codec == "tree":
        return [{"bpp": float(b), "encoder": DEFAULT_ENCODER, "levels": None,
                 "grey": (k + j) % 2 == 0} for j, b in enumerate(settings.val_bpps)]
    return [{"density": float(d), "encoder": ENCODERS[(k + j) % len(ENCODERS)],
             "levels": 32, "grey": False} for j, d in enumerate(settings.val_densities)]


def encode_decode(image: np.ndarray, *, encoder: str, levels: int | None,
                  density: float | None = None, bpp: float | None = None,
                  tonal: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """The codec's round trip: (decoded uint8 image, mask of stored pixels, encode seconds).

    Exactly one of ``density`` and ``bpp`` (the rate search) is given."""
    t0 = time.perf_counter()
    data = encode(image, encoder=encoder, density=density, bpp=bpp, levels=levels,
                  tonal=tonal)
    seconds = time.perf_counter() - t0
    decoded, mask = decode(data, return_info=True)
    return decoded, mask, seconds


def _make_item(args) -> tuple[str, float]:
    item, folder, threads = args
    out = Path(folder) / f"{item['name']}.npz"
    if out.exists():
        return item["name"], 0.0
    if threads:
        import numba  # noqa: PLC0415
        import torch  # noqa: PLC0415

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        torch.set_num_threads(threads)
    rgb = load_rgb(Path(item["path"]))
    if item["crop"]:
        rgb = centre_crop(rgb, item["crop"])
    original = luma(rgb) if item["grey"] else rgb
    t0 = time.perf_counter()
    decoded, mask, _ = encode_decode(original, density=item.get("density"),
                                     bpp=item.get("bpp"), encoder=item["encoder"],
                                     levels=item["levels"], tonal=item["tonal"])
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, original=original, decoded=decoded, mask=np.packbits(mask),
                        shape=np.array(mask.shape), meta=json.dumps(item))
    os.replace(tmp, out)
    return item["name"], time.perf_counter() - t0


def prepare_cache(settings: CacheSettings, folder: str | os.PathLike, *, workers: int = 1,
                  threads: int | None = None, progress: bool = False, log=print) -> dict:
    """Encode and decode the training (and validation) images once, into ``folder``.

    Items already present are kept, so an interrupted preparation resumes.  A folder made
    with other settings is refused (delete it or pick another).

    Returns
    -------
    dict
        ``settings``, ``items`` and the wall time spent now (``minutes``).
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    if settings.codec not in CODECS:
        raise ValueError(f"cache codec must be one of {', '.join(CODECS)}, "
                         f"got {settings.codec!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / "settings.json"
    mine = json.loads(json.dumps(asdict(settings)))
    if stored.exists():
        theirs = json.loads(stored.read_text())
        if theirs != mine:
            raise ValueError(f"cache {folder} was made with other settings "
                             f"({theirs}); delete it or use another --cache")
    else:
        stored.write_text(json.dumps(mine, indent=1) + "\n")
    if workers > 1 and not threads:
        threads = 1  # one core per worker process, not every core each
    plan = _item_plan(settings)
    todo = [p for p in plan if not (folder / f"{p['name']}.npz").exists()]
    t0 = time.perf_counter()
    if todo:
        log(f"decoder cache {folder}: encoding {len(todo)} of {len(plan)} items "
            f"({workers} worker(s))")
        bar = tqdm(total=len(todo), desc="prepare", disable=not progress, unit="image")
        jobs = [(p, str(folder), threads) for p in todo]
        if workers > 1:
            # spawn, not fork: forking a process whose OpenMP/TBB pools are running hangs
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                for _ in pool.map(_make_item, jobs):
                    bar.update(1)
        else:
            for job in jobs:
                _make_item(job)
                bar.update(1)
        bar.close()
    return {"folder": str(folder), "settings": mine, "items": len(plan),
            "minutes": round((time.perf_counter() - t0) / 60, 2)}


def load_cache(folder: str | os.PathLike, split: str) -> list[dict]:
    """The cached items of a split ("train" or "val"), as dicts of arrays."""
    folder = Path(folder)
    items = []
    for p in sorted(folder.glob(f"{split}-*.npz")):
        with np.load(p) as z:
            shape = tuple(z["shape"])
            mask = np.unpackbits(z["mask"])[:shape[0] * shape[1]].reshape(shape).astype(bool)
            items.append({"original": z["original"], "decoded": z["decoded"], "mask": mask,
                          "meta": json.loads(str(z["meta"]))})
    return items


# ----------------------------------------------------------------------------- samplers


def to_tensor(a: np.ndarray) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) -> float32 (3, H, W) in [-1, 1] (grey replicated)."""
    a = a.astype(np.float32) / 127.5 - 1.0
    if a.ndim == 2:
        a = np.repeat(a[None], 3, axis=0)
    else:
        a = a.transpose(2, 0, 1)
    return a


def _symmetry(a: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/transposes of the square (H, W, ...) array ``a``."""
    if k & 1:
        a = a[::-1]
    if k & 2:
        a = a[:, ::-1]
    if k & 4:
        a = a.swapaxes(0, 1)
    return a


def local_box(centre: tuple[int, int], size: int, local: int) -> tuple[int, int]:
    """Top-left corner of the ``local`` square centred on ``centre``, kept inside."""
    y = min(max(centre[0] - local // 2, 0), size - local)
    x = min(max(centre[1] - local // 2, 0), size - local)
    return y, x


class DecoderCropSampler:
    """Random crops (8 symmetries) of cached (original, decoded, mask) triples."""

    def __init__(self, items: list[dict], crop: int, local: int, rng: np.random.Generator):
        small = [it["meta"]["name"] for it in items if min(it["mask"].shape) < crop]
        if small:
            raise ValueError(f"{len(small)} cached images are smaller than the crop {crop}")
        if not items:
            raise ValueError("the decoder cache holds no training items")
        self.items, self.crop, self.local, self.rng = items, crop, local, rng

    def batch(self, n: int):
        c, rng = self.crop, self.rng
        x = np.empty((n, 3, c, c), np.float32)
        gt = np.empty_like(x)
        missing = np.empty((n, 1, c, c), np.float32)
        boxes = np.empty((n, 2), np.int64)
        for k in range(n):
            it = self.items[rng.integers(len(self.items))]
            h, w = it["mask"].shape
            y, z = rng.integers(h - c + 1), rng.integers(w - c + 1)
            sym = int(rng.integers(8))
            crop = (slice(y, y + c), slice(z, z + c))
            x[k] = to_tensor(np.ascontiguousarray(_symmetry(it["decoded"][crop], sym)))
            gt[k] = to_tensor(np.ascontiguousarray(_symmetry(it["original"][crop], sym)))
            missing[k, 0] = ~_symmetry(it["mask"][crop], sym)
            # every pixel is "missing": the local critic looks at a random place
            boxes[k] = rng.integers(c - self.local + 1, size=2)
        return x, gt, missing, boxes


def diffusion_fill(x: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """The hole inpainter's input: holes filled by homogeneous diffusion inpainting.

    ``x`` (3, H, W) or (B, 3, H, W) in [-1, 1], ``missing`` (H, W) or (B, 1, H, W), 1 or
    True = hole.  The seed fills the holes with the ImageNet mean colour instead; starting
    from the diffusion inpainting makes the residual generator begin as that baseline, so
    that a CPU-sized training run only has to learn corrections of it (see
    :mod:`.networks`).  A crop without any known pixel is set to 0 (mid grey).
    """
    from inpcodec.codec.diffusion import inpaint  # noqa: PLC0415

    batch = x.ndim == 4
    xs = x if batch else x[None]
    ms = (missing if batch else missing[None, None]) > 0.5
    out = np.empty(xs.shape, np.float32)
    for k in range(xs.shape[0]):
        known = ~ms[k, 0]
        if not known.any():
            out[k] = 0.0
            continue
        u = inpaint(xs[k].transpose(1, 2, 0).astype(np.float64), known, solver="numba")
        out[k] = np.where(known[None], xs[k], u.transpose(2, 0, 1))
    return out if batch else out[0]


class HoleCropSampler:
    """Random crops (horizontal flips, as the seed) with the seed's hole masks."""

    def __init__(self, images: list[np.ndarray], crop: int, local: int,
                 rng: np.random.Generator, grey_fraction: float = 0.1):
        small = [i for i, a in enumerate(images) if min(a.shape[:2]) < crop]
        if small:
            raise ValueError(f"{len(small)} training images are smaller than the crop {crop}")
        self.images, self.crop, self.local, self.rng = images, crop, local, rng
        self.grey_fraction = grey_fraction

    def batch(self, n: int):
        from .masks import free_form_mask, square_mask  # noqa: PLC0415

        c, rng = self.crop, self.rng
        gt = np.empty((n, 3, c, c), np.float32)
        missing = np.empty((n, 1, c, c), np.float32)
        boxes = np.empty((n, 2), np.int64)
        for k in range(n):
            a = self.images[rng.integers(len(self.images))]
            y, z = rng.integers(a.shape[0] - c + 1), rng.integers(a.shape[1] - c + 1)
            crop = a[y:y + c, z:z + c]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            if rng.random() < self.grey_fraction:
                crop = luma(np.ascontiguousarray(crop))
            gt[k] = to_tensor(np.ascontiguousarray(crop))
            square, centre = square_mask(c, c, rng)
            missing[k, 0] = free_form_mask(c, c, rng) | square
            boxes[k] = local_box(centre, c, self.local)
        return diffusion_fill(gt, missing), gt, missing, boxes


def holes_validation_set(folders, n: int, side: int = 256, seed: int = 0) -> list[dict]:
    """The first ``n`` images (centre ``side`` crop) with seeded hole masks at that size,
    and homogeneous diffusion inpainting of the same holes (the baseline)."""
    from inpcodec.codec.diffusion import inpaint  # noqa: PLC0415

    from .masks import hole_mask  # noqa: PLC0415

    items = []
    for k, p in enumerate(find_images(folders)[:n]):
        rgb = centre_crop(load_rgb(p), side)
        rng = np.random.default_rng(zlib.crc32(f"{seed}-{k}".encode()))
        holes = hole_mask(*rgb.shape[:2], rng)
        diffusion = inpaint(rgb.astype(np.float64), ~holes)
        items.append({"original": rgb, "mask": ~holes,
                      "decoded": np.clip(np.rint(diffusion), 0, 255).astype(np.uint8),
                      "meta": {"name": p.stem}})
    return items
