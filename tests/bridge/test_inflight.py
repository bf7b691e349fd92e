from bridge.inflight import AckWindow
from bridge.routing import Record

REC = Record("t", b"k", b"v", [])


def test_acks_leave_in_arrival_order_whatever_order_kafka_confirms() -> None:
    w = AckWindow()
    entries = [w.add(mid, 1, REC, 0.0) for mid in (5, 6, 7, 8)]
    entries[2].done = True
    entries[3].done = True
    assert w.release() == []  # 5 and 6 are still waiting
    entries[0].done = True
    assert w.release() == [5]
    entries[1].done = True
    assert w.release() == [6, 7, 8]
    assert len(w) == 0


def test_qos0_is_never_acked_and_reconnect_forgets_old_ids() -> None:
    w = AckWindow()
    q0 = w.add(0, 0, REC, 0.0)
    q0.done = True
    old = w.add(9, 1, REC, 0.0)
    assert w.new_connection() == 1
    old.done = True
    assert w.release() == [] and w.epoch == 1
