"""A Python process killed with SIGKILL is survived as a C one is."""
import signal
import time

import pytest

import helpers
import shmkit


def test_killed_producer_does_not_stall_consumers(ctx):
    q = shmkit.Queue(64)
    p = ctx.Process(target=helpers.die_mid_put, args=(q,))
    p.start()
    first = q.get(timeout=60)
    assert first == 0
    time.sleep(0.1)
    p.kill()
    p.join(60)
    assert p.exitcode == -signal.SIGKILL
    seen = []
    while True:
        try:
            seen.append(q.get(timeout=1))
        except Exception:
            break
    assert seen == sorted(seen) and len(set(seen)) == len(seen)  # whole, in order, once
    q.put("after")
    assert q.get(timeout=5) == "after"
    st = q.stats()
    assert st["participants_reaped"] >= 1


def test_killed_writer_counts_as_gone_for_eof(ctx):
    q = shmkit.Queue(4)
    p = ctx.Process(target=helpers.die_mid_put, args=(q,))
    p.start()
    assert q.get(timeout=60) == 0
    p.kill()
    p.join(60)
    q.close()  # the maker leaves too: now nobody can write
    q2 = shmkit.Queue.attach(q.name)
    with pytest.raises(EOFError):
        for _ in range(100):
            q2.get(timeout=30)
