"""Latency histograms with fixed log-spaced buckets: mergeable by adding counts, so the percentiles of
any window and any set of agents come from summing buckets, never from averaging percentiles.

Bucket 0 holds [0, 0.1] ms; bucket i >= 1 holds (0.1 * G**(i-1), 0.1 * G**i] ms. A bucket is reported
as the value whose relative distance to both of its bounds is (G - 1) / (G + 1): with G = 1.04 that is
1.96 %, so a percentile read from the histogram is within 2 % of the exact nearest-rank percentile of
the samples (or within 0.05 ms, below 0.1 ms). Reported values are clamped to the samples' min and max.

In Python a histogram is ``{bucket: count}`` over its non-empty buckets. A rollup row stores it as
bytes: 6 per entry, the bucket as an unsigned 16-bit and the count as a 32-bit big-endian integer.
Stored entries may repeat a bucket (PostgreSQL appends one batch's entries to a row's and compacts
only past 512 bytes, see migration 0007); decoding adds repeats up, so both forms mean the same."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping

GROWTH = 1.04
FLOOR_MS = 0.1
LAST_BUCKET = 800  # 0.1 ms * 1.04**800: about 4e12 ms; anything larger is counted there
_LOG_GROWTH = math.log(GROWTH)
_ENTRY = struct.Struct(">Hi")
MAX_COUNT = 2**31 - 1  # a count is stored as a signed 32-bit integer (PostgreSQL's int4send)


def bucket_of(value_ms: float) -> int:
    """The bucket a latency sample falls in (float-safe at the bounds)."""
    if value_ms <= FLOOR_MS:
        return 0
    index = math.ceil(math.log(value_ms / FLOOR_MS) / _LOG_GROWTH)
    # log() rounding can put a value sitting on a bound one bucket off; settle it exactly.
    if index > 1 and FLOOR_MS * GROWTH ** (index - 1) >= value_ms:
        index -= 1
    elif FLOOR_MS * GROWTH**index < value_ms:
        index += 1
    return min(max(index, 1), LAST_BUCKET)


def bucket_value(index: int) -> float:
    """The value reported for a bucket: equally far, relatively, from its two bounds."""
    if index == 0:
        return FLOOR_MS / 2
    return FLOOR_MS * GROWTH**index * 2 / (GROWTH + 1)


def histogram_of(samples: Iterable[float]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for sample in samples:
        key = bucket_of(sample)
        counts[key] = counts.get(key, 0) + 1
    return counts


def histogram_add(into: dict[int, int], other: Mapping[int, int]) -> dict[int, int]:
    """Add ``other``'s counts into ``into`` (in place) and return it."""
    for key, count in other.items():
        into[key] = into.get(key, 0) + count
    return into


def histogram_encode(histogram: Mapping[int, int]) -> bytes:
    """The stored form: one entry per non-empty bucket, in bucket order."""
    return b"".join(_ENTRY.pack(key, min(count, MAX_COUNT)) for key, count in sorted(histogram.items()) if count)


def histogram_decode(data: bytes | memoryview | None, into: dict[int, int] | None = None) -> dict[int, int]:
    """The counts of a stored histogram, added into ``into`` when given (repeated buckets add up)."""
    counts = {} if into is None else into
    for key, count in _ENTRY.iter_unpack(data or b""):
        counts[key] = counts.get(key, 0) + count
    return counts


def histogram_merge(a: bytes | memoryview | None, b: bytes | memoryview | None) -> bytes:
    """Two stored histograms as one (SQLite's smotra_histogram_add; PostgreSQL has it in SQL)."""
    return histogram_encode(histogram_decode(b, histogram_decode(a)))


def percentile(histogram: Mapping[int, int], p: float, *, low: float | None, high: float | None) -> float | None:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of the samples behind ``histogram``."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            value = bucket_value(index)
            if low is not None:
                value = max(value, low)
            if high is not None:
                value = min(value, high)
            return value
    return high  # unreachable: the counts add up to total


def percentiles(
    histogram: Mapping[int, int], ps: tuple[float, ...], *, low: float | None, high: float | None
) -> list[float | None]:
    """Several nearest-rank percentiles (ascending ``ps``) in one walk over the buckets."""
    total = sum(histogram.values())
    if not total:
        return [None] * len(ps)
    ranks = [max(1, math.ceil(p / 100 * total)) for p in ps]
    out: list[float | None] = []
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        while len(out) < len(ranks) and seen >= ranks[len(out)]:
            value = bucket_value(index)
            value = value if low is None else max(value, low)
            out.append(value if high is None else min(value, high))
        if len(out) == len(ranks):
            break
    return out + [high] * (len(ranks) - len(out))  # unreachable: the counts add up to total
