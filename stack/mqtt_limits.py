"""The broker's limits, in one place: the Mosquitto config is generated from these, and the
bridge sizes its buffers and dead letters from them.

``MAX_PACKET_SIZE``: a 1.2 MB payload and about 1 MB of MQTT user properties must still reach
the bridge, which dead-letters them (capped) instead of letting Kafka refuse them; both in one
packet are about 2.2 MB. 4 MiB leaves room for that and still bounds what one client can make
the broker (and the bridge) hold per message. Larger packets are refused by the broker, which
disconnects the sender (MQTT 5 reason 0x95), so nothing bigger ever enters the pipeline.

``MAX_QUEUED_*``: the bridge's persistent session must hold the documented backlog while Kafka
is down (at least 1,000,000 messages; the README's guarantees table). The contract's messages
are 300-600 bytes, so 2,000,000 messages fit in 1 GiB; the byte bound stops a client with
unusually large messages from using the whole machine's memory. These apply to every client's
queue, so a stalled subscriber is bounded the same way.
"""

from __future__ import annotations

MAX_PACKET_SIZE = 4 * 1024 * 1024
MAX_QUEUED_MESSAGES = 2_000_000
MAX_QUEUED_BYTES = 1024 * 1024 * 1024
MAX_INFLIGHT_MESSAGES = 1000
