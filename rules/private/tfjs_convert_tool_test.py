"""Unit tests of the worker protocol plumbing (no TensorFlow needed)."""

import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfjs_convert_tool as tool  # noqa: E402


class IterRequestsTest(unittest.TestCase):
    def test_back_to_back_objects_without_separator(self):
        # Bazel 4.2.3 writes requests with no newline between them.
        stream = io.BytesIO(b'{"arguments": ["a"], "requestId": 1}{"arguments": [], "requestId": 2}')
        self.assertEqual([r["requestId"] for r in tool.iter_requests(stream)], [1, 2])

    def test_newline_separated_and_split_utf8(self):
        data = json.dumps({"arguments": ["\u00e9"], "requestId": 3}).encode() + b"\n"
        data = data.replace(b"\\u00e9", "\u00e9".encode("utf-8"))

        class OneByte(io.BytesIO):
            def read1(self, n=-1):
                return super().read(1)

        self.assertEqual(list(tool.iter_requests(OneByte(data))), [{"arguments": ["\u00e9"], "requestId": 3}])

    def test_flagfile_reaches_the_cli(self):
        with tempfile.NamedTemporaryFile("w", suffix=".params", delete=False) as f:
            f.write("--input_format=keras\n/no/such dir/in.h5\nout dir\n")
        try:
            code, output = tool.run_cli(["@" + f.name])
            # The path with a space arrived whole: the CLI names it in its one-line error.
            self.assertEqual(code, 1)
            self.assertIn("input path does not exist: /no/such dir/in.h5", output)
        finally:
            os.unlink(f.name)

    def test_worker_answers_each_request(self):
        stream = io.BytesIO(
            b'{"arguments": ["--version"], "requestId": 7}{"arguments": ["--bogus"], "requestId": 8}'
        )
        out = io.StringIO()
        tool.worker_main(stream, out)
        responses = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertEqual([r["requestId"] for r in responses], [7, 8])
        self.assertEqual(responses[0]["exitCode"], 0)
        self.assertIn("tfjsconv", responses[0]["output"])
        self.assertNotEqual(responses[1]["exitCode"], 0)


class HermeticTest(unittest.TestCase):
    def test_startup_flags_are_split_from_the_request(self):
        paths, check, entry, rest = tool.split_startup_args(
            [
                "--sys_path=converter",
                "--sys_path=external/tfjs_pip/site-packages",
                "--check_hermetic",
                "@bazel-out/x.params",
            ]
        )
        self.assertEqual(paths, ["converter", "external/tfjs_pip/site-packages"])
        self.assertTrue(check)
        self.assertEqual(entry, "convert")
        self.assertEqual(rest, ["@bazel-out/x.params"])
        self.assertEqual(
            tool.split_startup_args(["--sys_path=tools/pb2json", "--entry=migrate", "--quiet", "src", "dst"]),
            (["tools/pb2json"], False, "migrate", ["--quiet", "src", "dst"]),
        )

    def test_an_unknown_entry_is_an_error_not_a_conversion(self):
        code, output = tool.run_entry("frobnicate", ["x"])
        self.assertEqual(code, 2)
        self.assertIn("unknown --entry=frobnicate", output)

    def test_the_web_package_entry_runs_its_cli_and_returns_its_error(self):
        # A missing model directory: the packaging's one-line error and exit code, captured.
        with tempfile.TemporaryDirectory() as tmp:
            missing = os.path.join(tmp, "no_model")
            args = [missing, os.path.join(tmp, "out"), "--package_name", "x", "--version", "1.0.0"]
            code, output = tool.run_entry("web_package", args)
        self.assertEqual(code, 1)
        self.assertEqual(output, f"tfjs_web_package: error: model directory not found: {missing}\n")

    def test_modules_and_libraries_outside_the_root_are_reported(self):
        # This process imported json and loaded libc from the host: not under an empty dir.
        import json as host_module

        with tempfile.TemporaryDirectory() as root:
            bad = tool.foreign_files(root)
        self.assertIn(os.path.abspath(host_module.__file__), bad)
        self.assertTrue(any("libc.so" in p or "ld-linux" in p for p in bad), bad)
        self.assertFalse(any(p.startswith(("/proc/", "/dev/")) for p in bad))

    def test_files_under_the_root_are_accepted(self):
        # From "/" every loaded file counts as inside.
        self.assertEqual(tool.foreign_files("/"), [])


if __name__ == "__main__":
    unittest.main()
