"""Batches: ``inpcodec encode IN... --out-dir DIR`` and ``decode IN... --out-dir DIR``."""

import numpy as np
import pytest
from _images import make_image
from _interrupts import swallowing_an_interrupt
from click.testing import CliRunner
from PIL import Image

from inpcodec import cli
from inpcodec.codec import batch as B
from inpcodec.codec.decoder import decode


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


@pytest.fixture
def photos(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(make_image(40, 48, colour=True)).save(src / "a.png")
    Image.fromarray(make_image(36, 30)).save(src / "b.png")
    (src / "broken.png").write_bytes(b"not an image")
    (src / "notes.txt").write_text("not an image either, and not an image suffix")
    out = tmp_path / "out"
    out.mkdir()
    return src, out


def test_plan_expands_folders_and_patterns_and_refuses_clashes(photos, tmp_path):
    src, out = photos
    jobs = B.plan("encode", [src], out)
    assert [j.source for j in jobs] == [str(src / n) for n in ("a.png", "b.png", "broken.png")]
    assert [j.target for j in jobs] == [str(out / n) for n in ("a.inpc", "b.inpc",
                                                               "broken.inpc")]
    # a pattern the shell left alone, and a file named twice, give each file once
    jobs = B.plan("encode", [str(src / "?.png"), src / "a.png"], out)
    assert [j.source for j in jobs] == [str(src / "a.png"), str(src / "b.png")]
    Image.fromarray(make_image(8, 8)).save(src / "a.jpg")
    with pytest.raises(ValueError, match="would both be written to"):
        B.plan("encode", [src], out)
    with pytest.raises(ValueError, match="output folder does not exist"):
        B.plan("encode", [src / "b.png"], tmp_path / "nowhere")
    with pytest.raises(ValueError, match="matches no file"):
        B.plan("encode", [str(src / "*.tif")], out)
    with pytest.raises(ValueError, match="unknown image extension"):
        B.plan("decode", [src / "b.png"], out, fmt="xyz")


def test_threads_share_the_cores_between_jobs():
    assert B.job_threads(1, None, cores=16) is None  # the command's default: one thread
    assert B.job_threads(4, None, cores=16) == 4
    assert B.job_threads(3, None, cores=2) == 1
    assert B.job_threads(4, 2, cores=16) == 2


def test_encode_batch_skips_fails_alone_and_matches_single_files(photos, tmp_path):
    src, out = photos
    r = invoke("encode", src, "--out-dir", out, "-q", 40)
    assert r.exit_code == 1  # broken.png failed; the others were written
    assert "broken.png: not an image file" in r.output
    assert "encoded 2 of 3 files (0 skipped, 1 failed)" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["a.inpc", "b.inpc"]
    for name in ("a", "b"):  # the same bytes as the single-file command
        single = tmp_path / f"{name}.inpc"
        assert invoke("encode", src / f"{name}.png", single, "-q", 40, "--quiet").exit_code == 0
        assert (out / f"{name}.inpc").read_bytes() == single.read_bytes()
    before = (out / "a.inpc").stat().st_mtime_ns
    r = invoke("encode", src / "a.png", src / "b.png", "--out-dir", out, "-q", 40)
    assert r.exit_code == 0 and "encoded 0 of 2 files (2 skipped, 0 failed)" in r.output
    assert (out / "a.inpc").stat().st_mtime_ns == before
    r = invoke("encode", src / "a.png", "--out-dir", out, "-q", 40, "--force", "--quiet")
    assert r.exit_code == 0 and r.output == ""
    assert not [p for p in out.iterdir() if p.name.startswith(".inpcodec-")]


def test_decode_batch_on_dask_processes_gives_the_pixels_of_single_decodes(photos):
    src, out = photos
    assert invoke("encode", src / "a.png", src / "b.png", "--out-dir", out,
                  "--quiet").exit_code == 0
    dec = out / "dec"
    dec.mkdir()
    r = invoke("decode", out, "--out-dir", dec, "--jobs", 2, "--format", "webp")
    assert r.exit_code == 0, r.output
    assert "decoded 2 of 2 files (0 skipped, 0 failed)" in r.output
    for name in ("a", "b"):
        want = decode((out / f"{name}.inpc").read_bytes())
        got = np.asarray(Image.open(dec / f"{name}.webp"))
        np.testing.assert_array_equal(got if want.ndim == 3 else got[..., 0] if got.ndim == 3
                                      else got, want)


def test_single_file_form_still_needs_in_and_out(tmp_path):
    r = invoke("encode", tmp_path / "a.png")
    assert r.exit_code == 2 and "give IN and OUT" in r.output
    r = invoke("decode", "-", "--out-dir", tmp_path)
    assert r.exit_code == 2 and "standard input" in r.output


def test_an_interrupt_swallowed_in_a_batch_stops_it_before_the_next_write(photos,
                                                                          monkeypatch):
    # as the single-file command: a Ctrl-C swallowed in a ctypes callback (Numba's
    # compilation) leaves only the handler's flag; the in-process batch then writes
    # nothing more and exits 130 with one line
    src, out = photos
    calls = []
    monkeypatch.setattr(B, "encode_report", swallowing_an_interrupt(B.encode_report, calls))
    r = invoke("encode", src / "a.png", src / "b.png", "--out-dir", out, "--quiet")
    assert r.exit_code == 130 and r.output.strip() == "inpcodec: interrupted", r.output
    assert calls == [1] and list(out.iterdir()) == []


def test_a_parallel_batch_submits_the_largest_inputs_first(tmp_path, monkeypatch):
    import contextlib

    import dask.distributed

    from inpcodec.codec import cluster

    src = tmp_path / "in"
    src.mkdir()
    # the plan's order (by name) is the smallest first
    for name, side in (("a_small", 8), ("b_mid", 24), ("c_large", 64)):
        Image.fromarray(make_image(side, side)).save(src / f"{name}.png")
    submitted = []

    class Done:  # a finished future: the job's row
        def __init__(self, job):
            self.job = job

        def result(self):
            return {"source": self.job.source, "target": self.job.target, "error": None,
                    "notes": []}

    class Client:  # records what a Dask client would be given, in order
        def submit(self, fn, job, *args, pure=True):
            submitted.append(job.source)
            return Done(job)

    monkeypatch.setattr(cluster, "dask_client",
                        lambda *a, **k: contextlib.nullcontext(Client()))
    monkeypatch.setattr(dask.distributed, "as_completed", lambda futures: list(futures))
    batch = B.plan("encode", [src], tmp_path)
    rows = B.run_batch(batch, {}, jobs=2)
    assert submitted == [str(src / n) for n in ("c_large.png", "b_mid.png", "a_small.png")]
    assert [r["source"] for r in rows] == [j.source for j in batch]  # rows in plan order
