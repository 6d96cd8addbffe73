"""Entry point of the ``//tools/pb2json:tfjs_pb2json`` py_binary."""

import sys

from tfjsconv_pb2json.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
