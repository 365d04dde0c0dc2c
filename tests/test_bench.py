"""The benchmark suite (``inpcodec bench``): reference codecs at a rate, metrics, the Dask
runner (local processes and a scheduler address give the same results), resuming, the
result files, the speed study and the CLI's errors."""

import csv
import io
import json
import math

import numpy as np
import pytest
from _images import natural_like
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("dask.distributed")
pytest.importorskip("pytorch_msssim")

from inpcodec.codec.bench import (  # noqa: E402
    TIMING_FIELDS,
    encode_at_rate,
    run_rate_benchmark,
    run_speed_benchmark,
)
from inpcodec.codec.bench.refcodecs import QUALITY_RANGES, pillow_encode  # noqa: E402
from inpcodec.codec.bench.report import speedup_text  # noqa: E402
from inpcodec.codec.metrics import luma, mse, psnr, quality, squared_error  # noqa: E402


def rgb_image(h, w, seed):
    return np.clip(np.stack([natural_like(h, w, seed=3 * seed + k) for k in range(3)], -1),
                   0, 255).astype(np.uint8)


@pytest.mark.parametrize("codec", ["jpeg", "webp", "avif", "jpegxl"])
def test_quality_search_finds_the_closest_rate_brute_force(codec):
    img = rgb_image(64, 80, 0)
    n = img.shape[0] * img.shape[1]
    target = 1.0
    data, q = encode_at_rate(img, codec, target)
    lo, hi = QUALITY_RANGES[codec]
    sizes = {k: 8 * len(pillow_encode(img, codec, k)) / n for k in range(lo, hi + 1)}
    best = min(abs(b - target) for b in sizes.values())
    got = 8 * len(data) / n
    assert got == sizes[int(q)]
    # Bisection assumes size grows with quality; allow the few non-monotone steps.
    assert abs(got - target) <= best + 0.02 * target


def test_jpeg2000_rate_lands_on_target():
    img = rgb_image(96, 96, 1)
    for target in (0.5, 1.5):
        data, ratio = encode_at_rate(img, "jpeg2000", target)
        assert abs(8 * len(data) / img[..., 0].size / target - 1) < 0.03
        assert ratio > 0


def test_metrics_against_hand_computed_values():
    a = np.full((200, 200, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 0] = 110  # one sample off by 10: MSE = 100 / (200 * 200 * 3)
    expect = 10 * math.log10(255**2 / (100 / (200 * 200 * 3)))
    assert psnr(b, a) == pytest.approx(expect)
    y = 0.299 * 10  # luma error at one pixel
    assert quality(b, a)["psnr_y"] == pytest.approx(
        10 * math.log10(255**2 / (y**2 / (200 * 200))))
    q = quality(a, a)
    assert q["psnr"] == math.inf and q["ssim"] == pytest.approx(1.0)
    assert q["ms_ssim"] == pytest.approx(1.0)
    assert math.isnan(quality(a[:100], a[:100])["ms_ssim"])  # too small for 5 scales
    assert np.array_equal(luma(a[..., 0]), a[..., 0])


def test_mse_in_strips_is_the_whole_image_mse():
    # 300 x 400 x 3 takes several strips of rows; the last one is short
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    whole = np.mean((a.astype(np.float64) - b) ** 2)
    assert mse(a, b) == pytest.approx(whole, rel=1e-12)
    assert psnr(a, b, transform=luma) == pytest.approx(psnr(luma(a), luma(b)), rel=1e-12)
    assert squared_error(a, b) == int(((a.astype(np.int64) - b) ** 2).sum())
    with pytest.raises(ValueError, match="differ"):
        mse(a, b[:10])


def _strip_times(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    for r in rows:
        for k in TIMING_FIELDS:
            r.pop(k, None)
    return rows


def test_dask_scheduler_and_local_processes_give_the_same_results(tmp_path):
    from dask.distributed import LocalCluster

    images = {"a": rgb_image(176, 176, 2), "b": rgb_image(176, 176, 3)}
    codecs = ["jpeg", "jpeg2000", "belhachmi-notonal"]
    bpp = [0.5, 0.8, 1.2, 1.6]
    s1 = run_rate_benchmark(images, tmp_path / "local", codecs=codecs, bpp=bpp,
                            workers=2, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        s2 = run_rate_benchmark(images, tmp_path / "cluster", codecs=codecs, bpp=bpp,
                                scheduler=cluster.scheduler_address, progress=False)
    d1, d2 = tmp_path / "local" / "colour", tmp_path / "cluster" / "colour"
    assert _strip_times((d1 / "results.csv").read_text()) == \
        _strip_times((d2 / "results.csv").read_text())
    assert (d1 / "bd.csv").read_text() == (d2 / "bd.csv").read_text()
    # the summaries differ only if timings leak into them
    assert s1 == s2
    for f in ("rd_psnr.png", "rd_ms_ssim.png", "per_image/a.csv", "per_image/b.csv"):
        assert (d1 / f).is_file()
    rows = _strip_times((d1 / "results.csv").read_text())
    assert len(rows) == 2 * 3 * 4 and not any(r["error"] for r in rows)
    for r in rows:  # every file near its target, metrics measured on the decoded file
        assert abs(float(r["bpp"]) / float(r["target_bpp"]) - 1) < 0.05
        assert 15 < float(r["psnr"]) < 60 and 0 < float(r["ms_ssim"]) <= 1
    doc = json.loads((d1 / "compressai" / "jpeg.json").read_text())
    assert doc["name"] == "jpeg" and len(doc["results"]["bpp"]) == 4
    for k in ("psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"):
        assert len(doc["results"][k]) == 4

    # Resuming: nothing is run again, the files stay as they were.
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "local" / "jobs").rglob("*.json")}
    run_rate_benchmark(images, tmp_path / "local", codecs=codecs, bpp=bpp, progress=False)
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "local" / "jobs").rglob("*.json")}
    assert before == after


def test_bd_rate_of_a_curve_shifted_by_a_rate_factor_is_that_factor():
    from inpcodec.codec.bench.report import bd_table

    rows = []
    for img, gain in (("x", 0.8), ("y", 0.5)):
        for t, (b, p) in enumerate(((0.1, 25.0), (0.2, 27.5), (0.3, 29.0), (0.5, 31.0))):
            rows.append({"codec": "jpeg", "image": img, "target_bpp": t, "bpp": b, "psnr": p})
            rows.append({"codec": "new", "image": img, "target_bpp": t, "bpp": b * gain,
                         "psnr": p})
    bd = bd_table(rows)
    # same quality at 0.8 and 0.5 times the rate: -20 % and -50 %, mean -35 %
    assert bd[("new", "jpeg")]["bd_rate"] == pytest.approx(-35.0, abs=1e-6)
    assert bd[("new", "jpeg")]["images_rate"] == 2
    assert math.isnan(bd[("new", "jpeg2000")]["bd_rate"])  # no anchor curve


def test_speed_study_reports_speedups_over_ps_nlpe(tmp_path):
    img = {"s": rgb_image(48, 48, 4)}
    text = run_speed_benchmark(img, tmp_path, encoders=["belhachmi", "ps+nlpe"],
                               densities=[0.05, 0.1], progress=False)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "speed" / "speed.csv").read_text())))
    assert len(rows) == 4
    nl = [r for r in rows if r["encoder"] == "ps+nlpe"]
    assert all(int(r["inpaintings"]) > 0 for r in nl)
    assert all(int(r["points"]) == round(float(r["density"]) * 48 * 48) for r in rows)
    assert (tmp_path / "speed" / "speed.png").is_file()
    sec = {(r["encoder"], float(r["density"])): float(r["seconds"]) for r in rows}
    speedup = sec[("ps+nlpe", 0.05)] / sec[("belhachmi", 0.05)]
    assert f", {speedup_text(speedup)}x" in text.split("| belhachmi |")[1].splitlines()[0]


def test_speed_jobs_time_tree_masks_from_scratch():
    # the tree encoders keep an image's split order for the rate search; a speed job must
    # not reuse the order an earlier job (another density, same image) left behind
    from inpcodec.codec.bench.jobs import SpeedJob, run_speed_job

    img = natural_like(96, 96, 3)
    first, second = (run_speed_job(SpeedJob("s", "tree", d), img) for d in (0.05, 0.08))
    assert first["inpaintings"] > 0 and second["inpaintings"] > 0


def test_cli_bench_errors_are_one_line(tmp_path):
    from inpcodec.cli import main

    def run(*args):
        r = CliRunner().invoke(main, ["bench", *args])
        assert r.exit_code == 2 and "Traceback" not in r.output
        assert len(r.output.strip().splitlines()) == 1
        return r.output

    assert "no such folder" in run(str(tmp_path / "missing"))
    assert "no images" in run(str(tmp_path))
    Image.fromarray(natural_like(32, 32).astype(np.uint8)).save(tmp_path / "g.png")
    assert "--grey" in run(str(tmp_path), "--out", str(tmp_path / "o"))
    assert "unknown codec" in run(str(tmp_path), "--grey", "--codecs", "mp3")
    assert "--bpp" in run(str(tmp_path), "--grey", "--bpp", "0.1,x")
    assert "--workers" in run(str(tmp_path), "--grey", "--workers", "0")


def test_bd_of_mean_curves_reports_the_overlap():
    from inpcodec.codec.bench.report import bd_mean_curves

    anchor = [(0.1, 25.0), (0.2, 27.5), (0.3, 29.0), (0.5, 31.0)]
    curves = {"jpeg": {"points": [{"target_bpp": t, "bpp": b, "psnr": p}
                                  for t, (b, p) in zip((0.1, 0.2, 0.3, 0.5), anchor, strict=True)]},
              # twice the bits for the same PSNR, on the upper part of the anchor's range
              "new": {"points": [{"target_bpp": t, "bpp": 2 * b, "psnr": p}
                                 for t, (b, p) in zip((0.1, 0.2, 0.3, 0.5), anchor, strict=True)]},
              "far": {"points": [{"target_bpp": t, "bpp": b, "psnr": p - 10}
                                 for t, (b, p) in zip((0.1, 0.2, 0.3, 0.5), anchor, strict=True)]}}
    bd = bd_mean_curves(curves)
    assert bd[("new", "jpeg")]["bd_rate"] == pytest.approx(100.0, abs=1e-6)
    assert bd[("new", "jpeg")]["bd_rate_overlap"] == pytest.approx(1.0)
    # rates 0.2-1.0 against 0.1-0.5: they share 0.2-0.5 of 0.1-1.0
    assert bd[("new", "jpeg")]["bd_psnr_overlap"] == pytest.approx(0.3 / 0.9)
    assert math.isnan(bd[("far", "jpeg")]["bd_rate"])  # PSNR ranges apart: no figure
    assert ("new", "jpeg2000") not in bd
    curves["bumpy"] = {"points": [{"target_bpp": t, "bpp": b, "psnr": p}
                                  for t, b, p in ((0.1, 0.1, 26), (0.2, 0.2, 25),
                                                  (0.3, 0.3, 28), (0.5, 0.5, 30))]}
    assert math.isnan(bd_mean_curves(curves)[("bumpy", "jpeg")]["bd_rate"])
    # a reference codec that cannot go lower repeats its smallest file: counted once
    curves["jpeg"]["points"].insert(0, dict(curves["jpeg"]["points"][0], target_bpp=0.05))
    assert bd_mean_curves(curves)[("new", "jpeg")]["bd_rate"] == pytest.approx(100.0)
    assert bd_mean_curves(curves, max_target=0.3) == {}  # 3 points: too few


def test_codec_names_and_the_gan_post_processor_job(tmp_path, monkeypatch):
    import torch

    from inpcodec.codec import pipeline as P
    from inpcodec.codec.bench.jobs import RateJob, parse_codec, run_rate_job
    from inpcodec.codec.encoders import FREE_MASK_CODER, TREE_MASK_CODER
    from inpcodec.codec.postprocess import inference as I
    from inpcodec.codec.postprocess import refine
    from inpcodec.codec.postprocess.networks import Generator
    from inpcodec.codec.postprocess.training import save_weights

    assert parse_codec("jpeg") == ("reference", "jpeg", False, "none", "best", False)
    assert parse_codec("ps+nlpe") == ("inpcodec", "ps+nlpe", True, "none", "best", True)
    assert parse_codec("learned-notonal-gan") == ("inpcodec", "learned", False, "gan", "best",
                                                  True)
    assert parse_codec("tree-map") == ("inpcodec", "tree-map", True, "none", "best", True)
    assert parse_codec("tree-map-gan") == ("inpcodec", "tree-map", True, "gan", "best", True)
    assert parse_codec("tree-fast-gan") == ("inpcodec", "tree", True, "gan", "fast", True)
    assert parse_codec("tree-rdo-fast-nofilter-gan").loop_filter is False
    assert parse_codec("tree").effort == "best"
    for bad in ("learned-gan-notonal", "jpeg-gan", "tree-gan-fast", "learned-gan-gan"):
        with pytest.raises(ValueError, match="unknown codec"):
            parse_codec(bad)

    # Without weights a -gan run stops before its first job, with the way to get them.
    monkeypatch.setitem(I.POSTPROCESS_WEIGHTS, TREE_MASK_CODER,
                        tmp_path / "absent.safetensors")
    img = rgb_image(48, 64, 4)
    with pytest.raises(ValueError, match="train-gan"):
        run_rate_benchmark({"a": img}, tmp_path / "out", codecs=["belhachmi-gan"], bpp=[1.0],
                           workers=1, progress=False)
    assert not (tmp_path / "out" / "jobs").exists()

    # With weights, the job measures the post-processed decoding of its real file.
    torch.manual_seed(0)
    net = Generator(4, 2, "postprocess")
    torch.nn.init.normal_(net.refine.to_rgb.weight, std=0.2)  # not the identity
    save_weights(net.eval(), tmp_path / "pp.safetensors")
    for coder in (FREE_MASK_CODER, TREE_MASK_CODER):
        monkeypatch.setitem(I.POSTPROCESS_WEIGHTS, coder, tmp_path / "pp.safetensors")
    monkeypatch.setitem(I.FILTERED_POSTPROCESS_WEIGHTS, TREE_MASK_CODER,
                        tmp_path / "pp.safetensors")
    plain = run_rate_job(RateJob("a", "colour", "belhachmi-notonal", 1.0), img)
    gan = run_rate_job(RateJob("a", "colour", "belhachmi-notonal-gan", 1.0), img)
    assert gan["bytes"] == plain["bytes"]  # same file ...
    data = P.encode(img, encoder="belhachmi", bpp=1.0, tonal=False)
    assert len(data) == gan["bytes"]
    u, mask = P.decode(data, return_info=True)
    refined = refine(u, mask, network=I.load_generator(tmp_path / "pp.safetensors"))
    assert gan["psnr"] == pytest.approx(psnr(refined, img), abs=1e-9)  # ... refined decode
    assert gan["psnr"] != pytest.approx(plain["psnr"], abs=1e-3)


def test_jpeg2000_codes_colour_with_the_colour_transform():
    # SGcod of the COD marker (0xFF52): progression order, 2 bytes of layers, then MCT.
    def mct(data):
        i = data.index(b"\xff\x52")
        return data[i + 8]

    rgb = rgb_image(64, 64, 7)
    assert mct(pillow_encode(rgb, "jpeg2000", 20.0)) == 1
    assert mct(pillow_encode(rgb[..., 0], "jpeg2000", 20.0)) == 0
