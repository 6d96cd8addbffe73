import sys

from tfjsconv_pb2json.cli import main

sys.exit(main(sys.argv[1:]))
