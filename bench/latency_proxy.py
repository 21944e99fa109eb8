"""The benchmark's latency-injecting, counting HTTP forwarder: audit_bedrock.standin.proxy run as a program.

    python bench/latency_proxy.py --upstream http://127.0.0.1:5000 --latency-ms 40 --port 0

It prints "LISTENING <url>" once ready; see audit_bedrock.standin.proxy for the control paths and counts.
"""

from __future__ import annotations

import sys

from audit_bedrock.standin.proxy import main

if __name__ == "__main__":
    sys.exit(main())
