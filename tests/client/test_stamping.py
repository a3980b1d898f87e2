"""The one UUIDv7: version and variant bits, the millisecond in the top 48
bits, ids that sort like the events (milliseconds, then the counter)."""

from __future__ import annotations

import time
import uuid

from branchpy_telemetry.client.emitter.stamping import EventStamper, new_event_id

MS = 1_764_291_723_456


def test_new_event_id_is_a_uuid7_of_rfc_9562_stamped_with_the_current_millisecond():
    before = time.time_ns() // 1_000_000
    event_id = uuid.UUID(new_event_id())
    after = time.time_ns() // 1_000_000
    assert event_id.version == 7 and event_id.variant == uuid.RFC_4122
    assert (event_id.int >> 76) & 0xF == 7 and (event_id.int >> 62) & 0b11 == 0b10
    assert before <= event_id.int >> 80 <= after


def test_ids_sort_by_millisecond_then_by_the_counter_within_one_millisecond():
    now = [MS * 1_000_000]
    stamper = EventStamper(clock=lambda: now[0])
    ids = []
    for _ in range(3):
        ids += [stamper.stamp()[1] for _ in range(1000)]  # one millisecond: the counter orders them
        now[0] += 1_000_000
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [uuid.UUID(i).int >> 80 for i in ids[::1000]] == [MS, MS + 1, MS + 2]
