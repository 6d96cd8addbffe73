"""Staged outputs: nothing half-written, nothing clobbered, interruptions leave no trace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tfjsconv import fsutil
from tfjsconv.errors import ConversionError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def listing(path):
    return sorted(os.listdir(path))


def test_success_publishes_and_leaves_no_staging(tmp_path):
    out = tmp_path / "out"
    with fsutil.staged_output(str(out)) as staging:
        assert not out.exists()
        (open(os.path.join(staging, "model.json"), "w")).write("{}")
    assert listing(out) == ["model.json"]
    assert listing(tmp_path) == ["out"]
    assert oct(os.stat(out).st_mode & 0o777) == "0o755"


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with fsutil.staged_output(str(out)) as staging:
            open(os.path.join(staging, "group1-shard1of1.bin"), "wb").write(b"x")
            raise RuntimeError("boom")
    assert listing(tmp_path) == []


def test_existing_empty_dir_is_used(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with fsutil.staged_output(str(out)) as staging:
        open(os.path.join(staging, "a"), "w").write("1")
    assert listing(out) == ["a"]


def test_non_empty_dir_needs_overwrite_and_failure_keeps_old(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.json").write_text("old")
    with pytest.raises(ConversionError, match="not empty.*--overwrite"):
        with fsutil.staged_output(str(out)):
            pass
    with pytest.raises(RuntimeError):
        with fsutil.staged_output(str(out), overwrite=True) as staging:
            open(os.path.join(staging, "new.json"), "w").write("new")
            raise RuntimeError("boom")
    assert listing(out) == ["old.json"]
    with fsutil.staged_output(str(out), overwrite=True) as staging:
        open(os.path.join(staging, "new.json"), "w").write("new")
    assert listing(out) == ["new.json"]
    assert listing(tmp_path) == ["out"]


def test_file_in_the_way_of_a_directory(tmp_path):
    out = tmp_path / "out"
    out.write_text("x")
    with pytest.raises(ConversionError, match="not a directory"):
        with fsutil.staged_output(str(out)):
            pass
    assert out.read_text() == "x"


def test_file_output(tmp_path):
    out = tmp_path / "sub" / "model.h5"
    with fsutil.staged_output(str(out), kind="file") as staging:
        open(staging, "wb").write(b"h5")
    assert out.read_bytes() == b"h5"
    with pytest.raises(ConversionError, match="already exists"):
        with fsutil.staged_output(str(out), kind="file"):
            pass
    (tmp_path / "d").mkdir()
    with pytest.raises(ConversionError, match="is a directory"):
        with fsutil.staged_output(str(tmp_path / "d"), kind="file"):
            pass


def test_overlap_checks(tmp_path):
    src = tmp_path / "saved_model"
    src.mkdir()
    with pytest.raises(ConversionError, match="is the input"):
        fsutil.check_not_overlapping(str(src), str(src))
    with pytest.raises(ConversionError, match="inside the input"):
        fsutil.check_not_overlapping(str(src), str(src / "web"))
    with pytest.raises(ConversionError, match="contains the input"):
        fsutil.check_not_overlapping(str(src), str(tmp_path))


def test_stale_staging_of_dead_process_is_removed(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(proc.stdout)
    stale = tmp_path / f".tfjsconv-staging-{dead_pid}-abc"
    stale.mkdir()
    (stale / "junk").write_text("x")
    with fsutil.staged_output(str(tmp_path / "out")) as staging:
        open(os.path.join(staging, "a"), "w").write("1")
    assert listing(tmp_path) == ["out"]


SLOW_WRITER = textwrap.dedent("""
    import os, signal, sys, time
    sys.path.insert(0, {converter!r})
    from tfjsconv import fsutil, cli
    signal.signal(signal.SIGTERM, cli._terminate)
    try:
        with fsutil.staged_output({out!r}, overwrite=True) as staging:
            for i in range(1000):
                open(os.path.join(staging, "group1-shard%dof1000.bin" % i), "wb").write(b"x" * 1000)
                if i == 3:
                    print("WRITING", flush=True)
                time.sleep(0.01)
    except KeyboardInterrupt:
        sys.exit(130)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_write_keeps_previous_output(tmp_path, sig):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.json").write_text("previous")
    script = SLOW_WRITER.format(converter=os.path.join(REPO, "converter"), out=str(out))
    # SIGINT back to its default in the child: a parent started in the background
    # (`cmd &`, nohup) ignores it, and children inherit that, so Python would too.
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout.readline().strip() == "WRITING"
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert listing(out) == ["model.json"] and (out / "model.json").read_text() == "previous"
    leftovers = [n for n in listing(tmp_path) if n != "out"]
    if sig == signal.SIGKILL:
        # Nothing can run on SIGKILL; the next conversion in this directory sweeps it.
        assert all(n.startswith(".tfjsconv-staging-") for n in leftovers)
        with fsutil.staged_output(str(tmp_path / "other")) as staging:
            open(os.path.join(staging, "a"), "w").write("1")
        assert sorted(listing(tmp_path)) == ["other", "out"]
    else:
        assert leftovers == []
