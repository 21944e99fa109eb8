"""moto's server for the benchmark, with one scalability fix to the stand-in: access key -> account in O(1).

moto resolves the account of every request by scanning every account's IAM backend, in every partition,
for the request's access key (moto.iam.models.get_account_id_from). With 1,000 accounts that is ~6,000
lookups per request, so moto's CPU per call doubled between 200 and 1,000 accounts and a benchmark of the
scanner's scaling measured moto's quadratic term instead. This launcher indexes keys as moto creates them
(AssumeRole's temporary keys, IAM users' keys) and falls back to moto's own scan for any other key. It
changes no response: the same key maps to the same account.

    python bench/moto_server.py -H 127.0.0.1 -p 5000      # the arguments of `python -m moto.server`
"""

from __future__ import annotations

import sys
import threading
from typing import Any


def install() -> None:
    """Patch moto in this process (idempotent)."""
    from moto.iam import models

    if getattr(models.get_account_id_from, "_bench_index", False):
        return
    index: dict[str, str] = {}
    lock = threading.Lock()
    scan = models.get_account_id_from

    def remember(create: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            key = create(self, *args, **kwargs)
            with lock:
                index[key.physical_resource_id] = self.account_id
            return key
        return wrapper

    def get_account_id_from(access_key: str) -> str:
        account = index.get(access_key)
        return account if account is not None else str(scan(access_key))

    get_account_id_from._bench_index = True  # type: ignore[attr-defined]
    for name in ("create_temp_access_key", "create_access_key"):
        setattr(models.IAMBackend, name, remember(getattr(models.IAMBackend, name)))
    models.get_account_id_from = get_account_id_from


def main(argv: list[str]) -> None:
    install()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
