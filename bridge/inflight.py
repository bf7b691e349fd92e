"""The ordered window of messages Kafka has not confirmed yet, and the acks it releases.

MQTT requires PUBACKs in the order the PUBLISHes arrived (MQTT-4.6.0-2), while Kafka confirms
per partition, in any order across partitions. So a confirmation only marks its entry done;
``release()`` acks the longest done prefix.
"""

from __future__ import annotations

from collections import deque

from bridge.routing import Record


class Pending:
    """One received message on its way to Kafka."""

    __slots__ = ("done", "epoch", "mid", "qos", "record", "sent_at")

    def __init__(self, mid: int, qos: int, record: Record, sent_at: float, epoch: int) -> None:
        self.mid = mid
        self.qos = qos
        self.record = record
        self.sent_at = sent_at
        self.epoch = epoch
        self.done = False


class AckWindow:
    """Pending QoS 1 messages of the current MQTT connection, in arrival order."""

    def __init__(self) -> None:
        self._queue: deque[Pending] = deque()
        self.epoch = 0
        """Bumped on every new connection: packet ids of an old connection mean nothing now."""

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, mid: int, qos: int, record: Record, now: float) -> Pending:
        entry = Pending(mid, qos, record, now, self.epoch)
        if qos:
            self._queue.append(entry)
        return entry

    def release(self) -> list[int]:
        """Packet ids to acknowledge now: the done prefix, in arrival order."""
        queue = self._queue
        mids = []
        while queue and queue[0].done:
            mids.append(queue.popleft().mid)
        return mids

    def new_connection(self) -> int:
        """Forget unacked entries: the broker will resend them (duplicates, never loss)."""
        dropped = len(self._queue)
        self._queue.clear()
        self.epoch += 1
        return dropped
