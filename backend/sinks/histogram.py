"""Duration histograms that answer a percentile over any range in constant time.

Fixed log buckets (ratio 1.05, from 1 µs; bucket 0 holds durations <= 1 µs,
the last one everything from ~2.8 h up): a percentile read from them is
within ~2.5 % of the exact value. One histogram per time block is stored as
a dense CUMULATIVE array of SIZE uint32 counts (little-endian bytes, 1.9 KB),
so a percentile over k blocks is a binary search costing ~9·k additions —
the same whether the blocks hold ten events or ten million (a sparse
histogram's cost would grow with the number of distinct durations seen).
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from collections.abc import Iterable
from itertools import accumulate

RATIO = 1.05
FLOOR_MS = 0.001
SIZE = 480
LOG_RATIO = math.log(RATIO)
LOG_FLOOR = math.log(FLOOR_MS)
_TYPE = "I"
assert array(_TYPE).itemsize == 4, "uint32 arrays expected"
_SWAP = sys.byteorder == "big"


def bucket_of(ms: float) -> int:
    if ms <= FLOOR_MS:
        return 0
    return min(SIZE - 1, 1 + int((math.log(ms) - LOG_FLOOR) / LOG_RATIO))  # inlined in rollups.compute_deltas


def bucket_value(bucket: int) -> float:
    """The geometric middle of a bucket (0 for bucket 0)."""
    if bucket <= 0:
        return 0.0
    return FLOOR_MS * RATIO ** (bucket - 1 + 0.5)


def decode(blob: bytes) -> array:
    values = array(_TYPE)
    values.frombytes(blob)
    if _SWAP:
        values.byteswap()
    return values


def encode(values: array) -> bytes:
    if _SWAP:
        values = array(_TYPE, values)
        values.byteswap()
    return values.tobytes()


def add_counts(blob: bytes | None, counts: dict[int, int]) -> bytes:
    """The cumulative histogram `blob` (None: empty) plus per-bucket `counts`."""
    deltas = [0] * SIZE
    for bucket, n in counts.items():
        deltas[bucket] += n
    added = accumulate(deltas)
    if blob is None:
        return encode(array(_TYPE, added))
    return encode(array(_TYPE, map(operator.add, decode(blob), added)))


def percentile(blobs: Iterable[bytes], q: float = 0.95) -> float | None:
    """Nearest-rank percentile over the union of the blocks; None when they are empty."""
    return percentiles(blobs, (q,))[0]


def percentiles(blobs: Iterable[bytes], qs: Iterable[float]) -> list[float | None]:
    """Each nearest-rank percentile of `qs` over the union of the blocks (each decoded once)."""
    arrays = [decode(b) for b in blobs]
    return [_rank_value(arrays, q) for q in qs]


def _rank_value(arrays: list[array], q: float) -> float | None:
    total = sum(a[-1] for a in arrays)
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    lo, hi = 0, SIZE - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if sum(a[mid] for a in arrays) >= rank:
            hi = mid
        else:
            lo = mid + 1
    return round(bucket_value(lo), 3)


def merge(blobs: Iterable[bytes]) -> bytes:
    """One cumulative histogram holding the counts of all `blobs` (they add, bucket by bucket)."""
    arrays = [decode(b) for b in blobs]
    return encode(array(_TYPE, map(sum, zip(*arrays, strict=True))))
