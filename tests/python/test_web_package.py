"""tfjs_web_package as a web app uses it: packed, installed, bundled, type-checked,
served by nginx and run in headless Chromium on the webgl and wasm backends.

One module-scoped fixture does the slow part once (~1 min): the example MLP
(examples/models/mlp_keras2.h5) is converted and packaged twice from two different
paths, ``npm pack``ed twice, installed from the tarball into a scratch web project whose
other packages come from tests/web's lock (@tensorflow/tfjs 4.22, its wasm backend,
esbuild, TypeScript), type-checked with ``tsc`` (tests/web/app/app.ts must pass;
bad_name.ts and bad_rank.ts must fail), bundled with esbuild, served by nginx with
gzip_static + brotli_static, and opened once in Chromium (WebGL 2 through SwiftShader).

esbuild is the bundler because it is one npm package with its binary inside (installs
offline from the lock, no plugins or config), bundles in about a second, resolves
package.json ``exports`` and leaves ``import.meta.url`` and dynamic ``fetch`` alone, so
what it produces is the plain ES module a Rollup or Vite build would also give.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tolerances
from test_browser import CHROMIUM, _require_browser, _skip_or_fail
from tfjs_runtime import JS_DIR

from tfjsconv import api
from tfjsconv.webpackage import build_web_package, cli

REPO_ROOT = Path(__file__).resolve().parents[2]
WEB_DIR = REPO_ROOT / "tests" / "web"
APP_SRC = WEB_DIR / "app"
NPM_CACHE = REPO_ROOT / ".cache" / "npm"
SOURCE_H5 = REPO_ROOT / "examples" / "models" / "mlp_keras2.h5"
PACKAGE = "@rules-tfjs/mlp-web"  # as //examples:mlp_web, which the app imports
LAYERS_PACKAGE = "@rules-tfjs/mlp-layers-web"  # the same MLP as a layers model
VERSION = "1.0.0"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
BROTLI_STATIC = Path("/usr/lib/nginx/modules/ngx_http_brotli_static_module.so")
HASHED = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{16})\.(?P<ext>bin|json)$")


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(cmd: list[str], cwd: Path, timeout: int = 300, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    return proc


# --- the package, built twice from two paths -----------------------------------------


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> list[Path]:
    """The example MLP converted (graph model) and packaged from two different paths."""
    base = tmp_path_factory.mktemp("web_package")
    model = Path(
        api.convert_keras(str(SOURCE_H5), str(base / "a" / "mlp_graph"), output_format="tfjs_graph_model")
    )
    elsewhere = base / "elsewhere" / "deeper" / "model"
    shutil.copytree(model, elsewhere)
    first = build_web_package(str(model), str(base / "a" / "pkg"), PACKAGE, VERSION)
    second = build_web_package(str(elsewhere), str(base / "b" / "out" / "mlp-web"), PACKAGE, VERSION)
    return [Path(first.path), Path(second.path)]


@pytest.fixture(scope="module")
def layers_package(tmp_path_factory) -> Path:
    """The example MLP as a layers model, packaged: the loader's tf.loadLayersModel path."""
    base = tmp_path_factory.mktemp("web_package_layers")
    model = api.convert_keras(str(SOURCE_H5), str(base / "mlp_layers"))
    return Path(build_web_package(model, str(base / "pkg"), LAYERS_PACKAGE, VERSION).path)


def test_package_is_byte_identical_across_runs_and_paths(packages) -> None:
    a, b = tree(packages[0]), tree(packages[1])
    assert a == b and a
    for content in a.values():
        assert str(packages[0].parent).encode() not in content


def test_shards_are_content_addressed_and_model_json_points_at_them(packages) -> None:
    root = packages[0]
    files = tree(root)
    model = json.loads(files["model.json"])
    hashed_json = [n for n in files if HASHED.match(n) and n.endswith(".json")]
    assert len(hashed_json) == 1 and files[hashed_json[0]] == files["model.json"]
    for name in hashed_json + [p for g in model["weightsManifest"] for p in g["paths"]]:
        match = HASHED.match(name)
        assert match, name
        assert hashlib.sha256(files[name]).hexdigest()[:16] == match["hash"], name
    # Dense(4 -> 8) + Dense(8 -> 3), float32: (4*8 + 8 + 8*3 + 3) * 4 bytes in one shard.
    (group,) = model["weightsManifest"]
    assert [len(files[p]) for p in group["paths"]] == [(4 * 8 + 8 + 8 * 3 + 3) * 4]


def test_precompressed_copies_are_deterministic_and_only_where_smaller(packages) -> None:
    import brotli

    files = tree(packages[0])
    served = [n for n in files if n.endswith((".bin", ".json", ".js")) and n not in _tooling_files()]
    assert served
    for name in served:
        raw = files[name]
        gz, br = files.get(name + ".gz"), files.get(name + ".br")
        if gz is not None:
            assert gzip.decompress(gz) == raw and len(gz) < len(raw)
            # RFC 1952: no FNAME flag, MTIME 0.
            assert gz[3] == 0 and gz[4:8] == b"\0\0\0\0", name
        else:
            assert len(gzip.compress(raw, mtime=0)) >= len(raw) - 32, f"{name}: gzip would have been smaller"
        if br is not None:
            assert brotli.decompress(br) == raw and len(br) < len(raw)
    # model.json is text and compresses well: both copies exist.
    assert "model.json.gz" in files and "model.json.br" in files


def _tooling_files() -> set:
    return {"package.json", "integrity.json", "report.json", "REPORT.md", "index.d.ts"}


def test_integrity_json_has_sri_for_every_file(packages) -> None:
    files = tree(packages[0])
    integrity = json.loads(files["integrity.json"])
    assert set(integrity) == set(files) - {"integrity.json"}
    for name, value in integrity.items():
        assert value == "sha384-" + base64.b64encode(hashlib.sha384(files[name]).digest()).decode(), name
    # The loader carries the values of the files it fetches.
    loader = files["index.js"].decode()
    model = json.loads(files["model.json"])
    for name in [p for g in model["weightsManifest"] for p in g["paths"]]:
        assert integrity[name] in loader


def test_package_json_and_report(packages) -> None:
    files = tree(packages[0])
    pkg = json.loads(files["package.json"])
    assert (pkg["name"], pkg["version"], pkg["type"]) == (PACKAGE, VERSION, "module")
    assert pkg["exports"]["."] == {"types": "./index.d.ts", "default": "./index.js"}
    assert pkg["types"] == "./index.d.ts"
    assert sorted(pkg["files"]) == sorted(files)
    assert pkg["peerDependencies"] == {"@tensorflow/tfjs": "^4.22.0"}
    report = json.loads(files["report.json"])
    rows = {r["path"]: r for r in report["files"]}
    for name, row in rows.items():
        assert row["raw"] == len(files[name])
        assert (name + ".gz" in files) == row["gzip_written"] and (name + ".br" in files) == row[
            "brotli_written"
        ]
    (group,) = report["weight_groups"]
    assert group["dtypes"] == {"float32": 268} and group["bytes"] == 268
    assert report["summary"].startswith(f"{PACKAGE}: ") and report["summary"].endswith(", 1 shard")
    assert report["summary"] in files["REPORT.md"].decode()


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--package_name", "Bad Name", "--version", "1.0.0"], "is not a valid npm name"),
        (["--package_name", "ok", "--version", "1.0"], "is not a SemVer version"),
    ],
)
def test_bad_arguments_are_one_line_errors_and_write_nothing(
    packages, tmp_path, capsys, argv, message
) -> None:
    model = tmp_path / "model"
    shutil.copytree(packages[0], model)  # has model.json + shards (hashed names)
    code = cli.main([str(model), str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_existing_output_is_not_clobbered(packages, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = [str(packages[0]), str(out), "--package_name", "x", "--version", "1.0.0"]
    assert cli.main(args) == 1
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert cli.main([*args, "--overwrite", "--quiet"]) == 0
    assert (out / "package.json").is_file() and not (out / "keep.txt").exists()


def test_a_shard_path_outside_the_model_directory_is_refused(packages, tmp_path, capsys) -> None:
    """The manifest is input too: a path that climbs out of the model is not read."""
    model = tmp_path / "model"
    shutil.copytree(packages[0], model)
    (tmp_path / "secret.bin").write_bytes(b"\0" * 268)
    meta = json.loads((model / "model.json").read_text())
    meta["weightsManifest"][0]["paths"] = ["../secret.bin"]
    (model / "model.json").write_text(json.dumps(meta))
    code = cli.main([str(model), str(tmp_path / "out"), "--package_name", "x", "--version", "1.0.0"])
    err = capsys.readouterr().err
    assert code == 1 and "points outside the model directory" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_directory_without_model_json_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    code = cli.main(
        [str(tmp_path / "empty"), str(tmp_path / "out"), "--package_name", "x", "--version", "1.0.0"]
    )
    assert code == 1 and "has no model.json" in capsys.readouterr().err


# --- the web app --------------------------------------------------------------------


def _require_web_tools() -> None:
    _require_browser()
    if not (WEB_DIR / "node_modules" / ".bin" / "esbuild").exists():
        _skip_or_fail("tests/web/node_modules is missing (./dev setup installs it)")
    if not (os.access(NGINX, os.X_OK) and BROTLI_STATIC.is_file()):
        _skip_or_fail("nginx with libnginx-mod-http-brotli-static is not installed (./dev setup)")


def _npm_pack(package_dir: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    proc = _run(
        [
            "npm",
            "pack",
            "--json",
            "--pack-destination",
            str(dest),
            "--cache",
            str(NPM_CACHE),
            "--loglevel=error",
        ],
        cwd=package_dir,
    )
    return dest / json.loads(proc.stdout)[0]["filename"]


def _scratch_project(app: Path, tarballs: list[Path]) -> None:
    """tests/web's project (package.json, lock, installed tree) + the tarballs, offline."""
    app.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy(WEB_DIR / name, app / name)
    try:  # hard links: ~350 MB of node_modules in well under a second
        subprocess.run(["cp", "-al", str(WEB_DIR / "node_modules"), str(app / "node_modules")], check=True)
    except subprocess.CalledProcessError:
        shutil.copytree(WEB_DIR / "node_modules", app / "node_modules", symlinks=True)
    hidden_lock = app / "node_modules" / ".package-lock.json"
    data = hidden_lock.read_bytes()
    hidden_lock.unlink()  # npm rewrites it: a copy, not a link into tests/web
    hidden_lock.write_bytes(data)
    # --legacy-peer-deps: npm's automatic peer install would ask the registry for
    # @tensorflow/tfjs' metadata (not in a cache `npm ci` filled) although the lock already
    # holds 4.22.0; whether that satisfies the packages' peer range is `npm ls`'s check.
    _run(
        ["npm", "install", "--offline", "--legacy-peer-deps", "--no-audit", "--no-fund", "--loglevel=error",
         "--cache", str(NPM_CACHE), *map(str, tarballs)],
        cwd=app,
    )  # fmt: skip
    for src in APP_SRC.iterdir():
        shutil.copy(src, app / src.name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def nginx(tmp_path_factory) -> Iterator[tuple]:
    """(site root, base URL): nginx serving a directory with gzip_static + brotli_static
    and `Cache-Control: immutable` for content-hashed names."""
    d = tmp_path_factory.mktemp("nginx")
    (d / "site").mkdir()
    (d / "tmp").mkdir()
    port = _free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = d / "nginx.conf"
    conf.write_text(f"""
load_module {BROTLI_STATIC};
daemon off;
{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  include /etc/nginx/mime.types;
  types {{ application/wasm wasm; }}
  default_type application/octet-stream;
  access_log off;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {d}/site;
    gzip_static on;
    brotli_static on;
    gzip_vary on;
    location ~ "\\.[0-9a-f]{{16}}\\.(bin|json)$" {{
      add_header Cache-Control "public, max-age=31536000, immutable";
    }}
  }}
}}
""")
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-e", str(d / "error.log")], stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    else:
        proc.kill()
    if proc.poll() is not None:
        pytest.fail(f"nginx did not start: {proc.stderr.read().decode()[-2000:]}")
    try:
        yield d / "site", f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def web_app(packages, layers_package, nginx, tmp_path_factory) -> dict:
    """Pack, install, type-check, bundle, serve and run once; the tests read the results."""
    _require_web_tools()
    base = tmp_path_factory.mktemp("web_app")
    tarballs = [_npm_pack(p, base / f"pack{i}") for i, p in enumerate(packages)]
    app = base / "app"
    _scratch_project(app, [tarballs[0], _npm_pack(layers_package, base / "pack_layers")])
    npm_ls = _run(
        ["npm", "ls", "--offline", "--cache", str(NPM_CACHE), "@tensorflow/tfjs"], cwd=app, check=False
    )
    tsc = ["node", str(app / "node_modules" / "typescript" / "bin" / "tsc")]
    good = _run([*tsc, "-p", "tsconfig.json"], cwd=app, check=False)
    (app / "tsconfig.bad.json").write_text(
        json.dumps({"extends": "./tsconfig.json", "files": ["bad_name.ts", "bad_rank.ts"]})
    )
    bad = _run([*tsc, "-p", "tsconfig.bad.json"], cwd=app, check=False)
    site, url = nginx
    _run(
        [str(app / "node_modules" / ".bin" / "esbuild"), "app.ts", "--bundle", "--format=esm",
         f"--outfile={site / 'app.js'}", "--log-level=warning"],
        cwd=app,
    )  # fmt: skip
    shutil.copy(app / "index.html", site / "index.html")
    installed = app / "node_modules" / "@rules-tfjs" / "mlp-web"
    shutil.copytree(installed, site / "pkg")
    shutil.copytree(app / "node_modules" / "@rules-tfjs" / "mlp-layers-web", site / "pkg-layers")
    shutil.copytree(app / "node_modules" / "@tensorflow" / "tfjs-backend-wasm" / "dist", site / "wasm")
    # A copy with one byte of its shard flipped (and no precompressed copies of it).
    corrupt = Path(shutil.copytree(installed, site / "corrupt"))
    shard = json.loads((corrupt / "model.json").read_text())["weightsManifest"][0]["paths"][0]
    data = bytearray((corrupt / shard).read_bytes())
    data[len(data) // 2] ^= 0x01
    (corrupt / shard).write_bytes(bytes(data))
    for ext in (".gz", ".br"):
        (corrupt / (shard + ext)).unlink(missing_ok=True)

    import tf_keras

    source = tf_keras.models.load_model(str(SOURCE_H5), compile=False)
    x = np.random.default_rng(20261207).uniform(-2, 2, (5, 4)).astype(np.float32)
    expected = np.asarray(source(x, training=False), dtype=np.float32)
    bound = tolerances.keras_bound(source, [x])
    query = urllib.parse.urlencode({"input": json.dumps(x.tolist())})
    browser = _run(
        ["node", str(JS_DIR / "browser_check.js"), "--url", f"{url}?{query}", "--chromium", CHROMIUM,
         "--gl", "swiftshader", "--screenshot", str(base / "page.png")],
        cwd=JS_DIR, check=False, timeout=300,
    )  # fmt: skip
    lines = browser.stdout.strip().splitlines()
    assert lines, f"no result from the browser (exit {browser.returncode}):\n{browser.stderr[-4000:]}"
    return {
        "tarballs": tarballs,
        "npm_ls": npm_ls,
        "installed": installed,
        "tsc_good": good,
        "tsc_bad": bad,
        "url": url,
        "shard": shard,
        "result": json.loads(lines[-1]),
        "browser_log": browser.stderr,
        "expected": expected,
        "bound": bound,
    }


@pytest.mark.browser
@pytest.mark.slow
def test_npm_pack_tarball_is_byte_identical_and_holds_the_package(web_app, packages) -> None:
    a, b = (t.read_bytes() for t in web_app["tarballs"])
    assert a == b
    with tarfile.open(web_app["tarballs"][0]) as tar:
        names = sorted(m.name.removeprefix("package/") for m in tar.getmembers() if m.isfile())
    assert names == sorted(tree(packages[0]))
    assert tree(web_app["installed"]) == tree(packages[0])
    # Installed beside @tensorflow/tfjs 4.22.0 from the lock: the peer range holds.
    ls = web_app["npm_ls"]
    assert ls.returncode == 0, ls.stdout + ls.stderr
    assert f"{PACKAGE}@{VERSION}" in ls.stdout and "@tensorflow/tfjs@4.22.0 deduped" in ls.stdout


@pytest.mark.browser
@pytest.mark.slow
def test_typed_api_passes_tsc_and_a_wrong_input_name_or_rank_fails(web_app) -> None:
    good, bad = web_app["tsc_good"], web_app["tsc_bad"]
    assert good.returncode == 0, good.stdout + good.stderr
    assert bad.returncode != 0
    errors = bad.stdout
    assert re.search(
        r"bad_name\.ts\(\d+,\d+\): error TS\d+: .*'input' does not exist in type 'Inputs'", errors
    ), errors
    assert re.search(
        r"bad_rank\.ts\(\d+,\d+\): error TS\d+: .*'Tensor1D' is not assignable to .*'Tensor2D'", errors
    ), errors
    assert "index.d.ts" not in errors, errors


def _get(url: str, encoding: str) -> tuple:
    request = urllib.request.Request(url, headers={"Accept-Encoding": encoding} if encoding else {})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.headers, resp.read()


@pytest.mark.browser
@pytest.mark.slow
def test_nginx_serves_precompressed_files_with_content_encoding(web_app) -> None:
    pkg = web_app["installed"]
    model = json.loads((pkg / "model.json").read_text())
    hashed = next(n.name for n in pkg.iterdir() if HASHED.match(n.name) and n.name.endswith(".json"))
    names = ["model.json", hashed, *[p for g in model["weightsManifest"] for p in g["paths"]]]
    for name in names:
        url = web_app["url"] + "pkg/" + name
        for encoding, suffix in (("br", ".br"), ("gzip", ".gz"), ("", "")):
            headers, body = _get(url, encoding)
            if suffix and (pkg / (name + suffix)).is_file():
                assert headers.get("Content-Encoding") == encoding, (name, encoding)
                assert body == (pkg / (name + suffix)).read_bytes()
            else:
                assert headers.get("Content-Encoding") is None, (name, encoding)
                assert body == (pkg / name).read_bytes()
        immutable = "immutable" in (headers.get("Cache-Control") or "")
        assert immutable == (name != "model.json"), name
    # The example's model.json is served compressed either way; its shard only as br.
    assert _get(web_app["url"] + "pkg/model.json", "br")[0]["Content-Encoding"] == "br"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["graph", "layers"])
@pytest.mark.parametrize("backend", ["webgl", "wasm"])
def test_loaded_package_matches_tensorflow_in_chromium(web_app, backend, kind, record_property) -> None:
    """The bundled app's predictions (graph and layers packages of the example MLP) on
    each backend match tf_keras on the source .h5 within the model's parity bound
    (tolerances.keras_bound: 4x TF's float32-vs-float64 gap, at least 8 ulps). No backend factor: wasm computes in float32 like the cpu backend, and webgl
    here renders to float32 textures (asserted: WEBGL_RENDER_FLOAT32_ENABLED), so its
    arithmetic is float32 too; a float16-texture device would need a wider bound."""
    result = web_app["result"]
    assert result.get("ok"), f"page error: {result.get('error')}\n{web_app['browser_log'][-4000:]}"
    (run,) = [r for r in result["runs"] if r["backend"] == backend]
    assert run["float32"] is True
    if backend == "webgl":
        assert run["webglVersion"] == 2
    expected = web_app["expected"]
    data, shape = (run["data"], run["shape"]) if kind == "graph" else (run["layersData"], run["layersShape"])
    got = np.asarray(data, dtype=np.float32).reshape(shape)
    assert got.shape == expected.shape
    record_property("max_abs_diff", float(np.max(np.abs(got - expected))))
    np.testing.assert_allclose(got, expected, rtol=0, atol=web_app["bound"])


@pytest.mark.browser
@pytest.mark.slow
def test_corrupted_shard_is_refused_with_its_name(web_app) -> None:
    result = web_app["result"]
    assert result.get("ok"), result.get("error")
    corrupt = result["corrupt"]
    assert corrupt["rejected"] and corrupt["isIntegrityError"], corrupt
    assert corrupt["file"] == web_app["shard"]
    assert f"{web_app['shard']} failed its integrity check" in corrupt["message"]


# --- Bazel: the rule's output is the Python API's, and is cached --------------------


BAZEL_BIN = REPO_ROOT / "bazel-bin" / "examples"


@pytest.mark.bazel
def test_bazel_package_equals_the_python_api_and_is_not_rebuilt(tmp_path) -> None:
    """//examples:mlp_web (built in the hermetic runtime) is byte-identical to the Python
    API's package of //examples:mlp_graph, and a second build runs no action."""
    if shutil.which("bazel") is None:
        _skip_or_fail("bazel is not on PATH")
    targets = ["//examples:mlp_web", "//examples:mlp_layers_uint8_web"]
    _run(["bazel", "build", *targets], cwd=REPO_ROOT, timeout=1800)
    log = tmp_path / "exec.json"
    _run(["bazel", "build", f"--execution_log_json_file={log}", *targets], cwd=REPO_ROOT, timeout=600)
    assert not log.exists() or not log.read_text().strip(), "a no-op build ran actions"
    ours = build_web_package(str(BAZEL_BIN / "mlp_graph"), str(tmp_path / "api"), PACKAGE, VERSION)
    assert tree(Path(ours.path)) == tree(BAZEL_BIN / "mlp_web")
    layers = json.loads((BAZEL_BIN / "mlp_layers_uint8_web" / "report.json").read_text())
    assert layers["kind"] == "layers" and set(layers["dtypes"]) == {"uint8"}
