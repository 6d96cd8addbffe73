"""Every entry point imports TensorFlow the converter's way (``tfjsconv.tf_env``).

Each check runs in a fresh Python process, since what matters is the *first* import
of TensorFlow in a process: after it, oneDNN and the log level can no longer change,
and JAX has been loaded (or not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import graph_models as gm
import pytest

REPO = Path(__file__).resolve().parents[2]

_REPORT = (
    "import json, os, sys; print(json.dumps([os.environ.get('TF_ENABLE_ONEDNN_OPTS'), 'jax' in sys.modules]))"
)


def _run(code: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "converter"), str(REPO / "tools" / "pb2json")])
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def frozen_pb(tmp_path_factory) -> str:
    return gm.frozen_graph(str(tmp_path_factory.mktemp("tf_env")))[0]


def test_jax_is_hidden_only_while_tensorflow_imports():
    pytest.importorskip("jax")
    out = _run(
        "from tfjsconv import tf_env; tf_env.import_tensorflow(); import sys; hidden = 'jax' not in sys.modules;"
        " import jax; print(hidden and jax.numpy.ones(2).sum() == 2)"
    )
    assert out == "True"


@pytest.mark.parametrize(
    "entry",
    [
        "from tfjsconv.wizard import detect; detect.frozen_graph_outputs(sys.argv[1])",
        "from tfjsconv_pb2json import topology; topology.parse_graph_def(open(sys.argv[1], 'rb').read(), 'x')",
    ],
)
def test_entry_points_import_tensorflow_like_the_converter(frozen_pb, entry):
    assert json.loads(_run(f"import sys; {entry}; {_REPORT}", frozen_pb)) == ["0", False]


_EXIT_SCRIPT = """
import atexit, logging, sys, tempfile
from pathlib import Path
from tfjsconv import tf_env
{prepare}
keep = tempfile.TemporaryDirectory()  # removed by its weakref.finalize at exit
Path(sys.argv[1]).write_text(keep.name)
atexit.register(lambda: Path(sys.argv[2]).write_text("ran"))
handler = logging.FileHandler(sys.argv[3])
logging.getLogger("exit_test").addHandler(handler)
logging.getLogger("exit_test").warning("logged")
sys.stdout.write("no newline, still buffered")
tf_env.exit_process(3)
"""


@pytest.mark.parametrize("prepare", ["tf_env.import_tensorflow()", "pass"], ids=["with_tf", "without_tf"])
def test_exit_process_keeps_every_exit_duty(tmp_path, prepare):
    """The fast exit skips the interpreter's teardown, never what a user can observe."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env["PYTHONPATH"] = str(REPO / "converter")
    names, ran, log = tmp_path / "names", tmp_path / "ran", tmp_path / "log"
    code = _EXIT_SCRIPT.format(prepare=prepare)
    done = subprocess.run(
        [sys.executable, "-c", code, str(names), str(ran), str(log)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout == "no newline, still buffered"
    assert ran.read_text() == "ran"
    assert log.read_text() == "logged\n"
    assert not Path(names.read_text()).exists()
