"""Sharding: split an organization's accounts into N stable parts by a hash of the account id (--shard K/N)."""

from __future__ import annotations

import argparse
import hashlib
import re
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit_bedrock.discovery import Estate

MAX_SHARDS = 4096
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(spec: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; an argparse type, so a bad value exits 2 with the reason."""
    m = _SPEC.match(spec)
    if not m:
        raise argparse.ArgumentTypeError(f"'{spec}' is not K/N (for example 2/8: the second of eight shards)")
    k, n = int(m.group(1)), int(m.group(2))
    if not 1 <= n <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"'{spec}': the shard count N must be between 1 and {MAX_SHARDS}")
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"'{spec}': the shard number K must be between 1 and N ({n})")
    return k, n


def shard_of(account_id: str, count: int) -> int:
    """The 1-based shard of an account: the first 8 bytes of sha256(account id), modulo `count`.

    It depends on nothing but the id and N, so the same account lands in the same shard on every run, in every
    process and on every machine, whatever else is in the organization.
    """
    digest = hashlib.sha256(account_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select(estate: Estate, index: int, count: int) -> Estate:
    """The part of a discovered estate that shard `index` of `count` scans: accounts and skipped accounts alike."""
    return replace(
        estate,
        accounts=tuple(a for a in estate.accounts if shard_of(a.id, count) == index),
        skipped=tuple((a, why) for a, why in estate.skipped if shard_of(a.id, count) == index),
    )
