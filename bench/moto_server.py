"""moto's server for the benchmark, with the stand-in's O(1) access key -> account index (audit_bedrock.standin.server).

    python bench/moto_server.py -H 127.0.0.1 -p 5000      # the arguments of `python -m moto.server`
"""

from __future__ import annotations

import sys

from audit_bedrock.standin.server import main

if __name__ == "__main__":
    main(sys.argv[1:])
