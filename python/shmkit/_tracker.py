"""The tracker: the process that removes a program's anonymous objects once nobody holds them,
however the program's processes end (SIGKILL included).

Why a process, and why this one. Whether an object is in use is the kernel's word: every handle
of every process (Python, C, the tool) read-locks one byte of the object's file through its own
open file description (lib/hold.c), and the kernel drops that lock when the description closes,
at close() or at any death. shmkit's remove_unused() removes a name only while it can write-lock
that byte, i.e. only while nobody has it open, and openers wait out the removal and then find the
name gone. What the kernel cannot do is remove a name when the last holder dies: someone alive
must. multiprocessing's answer is a resource tracker that unlinks at the program's end whatever
it was told about; ours is a tracker too, but it decides nothing from bookkeeping: it asks the
kernel, so it can never remove what a live process (of this program or any other, in any pid
namespace) has open, and it needs no message to learn that a process died.

- One tracker per program: the first process that makes an anonymous object starts it (a fresh
  interpreter, as multiprocessing starts its own; in a session of its own, so that Ctrl-C, or a
  kill of the program's process group, leaves it to clean up). Fork children share the parent's
  connection; children that multiprocessing starts by spawn or forkserver find it through the
  environment (SHMKIT_TRACKER) and connect; unrelated programs ignore it and start their own.
- Anonymous names carry the tracker's id: /shmkit-py-<tid>-<pid>-<n>-<tag>-<random>. The tracker
  looks at the names with its id in /dev/shm; nothing has to be registered, so nothing is lost
  when a creator dies between making a name and saying so.
- While the program runs, every second (and right after a process reports dropping an object, or
  a client disconnects) it removes its names that nobody holds, unless pinned: a name read through
  `.name`, a SharedMemory block (multiprocessing keeps those until unlink()), or an object pickled
  other than to start a process may be opened later by name, so it stays until the program ends.
  A name younger than GRACE is left alone too (a Pipe is made, then opened: a gap of microseconds).
- When every client has gone (all processes of the program ended, however), it removes every
  name of its own that nobody holds, pinned ones included, looks again each second at those still
  held (a C program or a spawn child may still use them) and exits when none is left.
- A child started by spawn or forkserver may open its objects after its parent died: the parent
  hands it, with the pickled name, a descriptor that holds the object (lib/hold.c) and that the
  child closes once it opened the object itself; so the object is never unheld in between.
- A message in a queue too big for a slot travels in a block of its own (_spill.py), which nobody
  holds while it waits: a spill of an anonymous queue ends in its queue's random part and is
  removed only once no name of its tracker ends so (the queue's name is gone).
- If the tracker itself is killed, the next tracker to start anywhere removes the unheld names of
  trackers no longer listening (their abstract socket is gone from /proc/net/unix). A tracker in
  another network namespace (a container sharing /dev/shm but not the network) looks gone too:
  its unheld pinned names may then go early; held ones never do.
- What this cannot do: a name read or pickled and dropped everywhere is kept only while its
  program runs (a queue message carrying it to another program outlives it at its own risk).
"""
import os
import select
import signal
import socket
import sys
import time

PREFIX = "shmkit-py-"
SHM = "/dev/shm"
SPILL = "-spill-"
GRACE = 2.0     # seconds: a name younger than this is not judged while the program runs
PERIOD = 1.0    # seconds between looks
ENV = "SHMKIT_TRACKER"


def address(tid):
    return "\0shmkit-tracker-" + tid


def listening_tids():
    """Ids of the trackers listening now (their abstract sockets, in this network namespace)."""
    tids = set()
    try:
        with open("/proc/net/unix") as f:
            for line in f:
                path = line.split()[-1] if line.count(" ") >= 7 else ""
                if path.startswith("@shmkit-tracker-"):
                    tids.add(path[len("@shmkit-tracker-"):])
    except OSError:
        return None
    return tids


class Tracker:
    def __init__(self, listener, tid):
        from . import _shmkit
        self.shmkit = _shmkit
        self.listener = listener
        self.tid = tid
        self.prefix = PREFIX + tid + "-"
        self.clients = {}
        self.pinned = set()
        self.dropped = set()
        self.poll = select.poll()
        self.poll.register(listener, select.POLLIN)

    def names(self):
        try:
            return [n for n in os.listdir(SHM) if n.startswith(self.prefix)]
        except OSError:
            return []

    def remove(self, name):
        """True when the name is gone (removed now, or already)."""
        try:
            self.shmkit.remove_unused("/" + name)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True

    def sweep(self, final):
        names = self.names()
        now = time.time()
        left = 0
        owners = {n.rsplit("-", 1)[1] for n in names if SPILL not in n}
        # Objects first, then spills, which go once their queue's name has gone.
        for name in sorted(names, key=lambda n: SPILL in n):
            if SPILL in name:
                if name.rsplit("-", 1)[1] in owners:
                    left += 1
                    continue
            elif not final:
                if ("/" + name) in self.pinned:
                    left += 1
                    continue
                try:
                    young = now - os.stat(os.path.join(SHM, name)).st_ctime < GRACE
                except OSError:
                    continue
                if young and ("/" + name) not in self.dropped:
                    left += 1
                    continue
            if self.remove(name):
                self.pinned.discard("/" + name)
                owners.discard(name.rsplit("-", 1)[1])
            else:
                left += 1
        self.dropped.clear()
        return left

    def sweep_orphans(self):
        """Names of trackers that are no longer listening (killed): unheld ones go."""
        tids = listening_tids()
        if tids is None:
            return
        try:
            names = os.listdir(SHM)
        except OSError:
            return
        names = [n for n in names if n.startswith(PREFIX)]
        owners = {(n.split("-", 3)[2], n.rsplit("-", 1)[1]) for n in names if SPILL not in n}
        for name in sorted(names, key=lambda n: SPILL in n):
            tid = name.split("-", 3)[2]
            if len(tid) != 8 or tid in tids:
                continue
            key = (tid, name.rsplit("-", 1)[1])
            if SPILL in name and key in owners:
                continue
            if self.remove(name):
                owners.discard(key)

    def message(self, data):
        for line in data.split(b"\n"):
            verb, _, name = line.decode("ascii", "replace").partition(" ")
            if verb == "pin":
                self.pinned.add(name)
            elif verb == "drop":
                self.dropped.add(name)

    def run(self):
        self.sweep_orphans()
        next_sweep = time.monotonic() + PERIOD
        while True:
            wait = max(0.0, next_sweep - time.monotonic())
            soon = False
            for fd, ev in self.poll.poll(wait * 1000):
                if fd == self.listener.fileno():
                    try:
                        c, _ = self.listener.accept()
                    except OSError:
                        continue
                    self.clients[c.fileno()] = c
                    self.poll.register(c, select.POLLIN)
                    continue
                c = self.clients.get(fd)
                data = b""
                if c is not None:
                    try:
                        data = c.recv(4096)
                    except OSError:
                        data = b""
                if data:
                    self.message(data)
                    soon = soon or b"drop" in data
                    continue
                self.poll.unregister(fd)
                self.clients.pop(fd, None)
                if c is not None:
                    c.close()
                soon = True
            if soon:
                # A drop is reported just before the handle closes: look a moment later.
                next_sweep = min(next_sweep, time.monotonic() + 0.02)
            if time.monotonic() < next_sweep:
                continue
            final = not self.clients
            left = self.sweep(final)
            if final and not left:
                return
            next_sweep = time.monotonic() + PERIOD


def main(fd, tid):
    # A session of its own: Ctrl-C and kills of the program's process group are for the
    # program; the tracker outlives it to clean up after it, then exits.
    try:
        os.setsid()
    except OSError:
        pass
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    listener = socket.socket(fileno=fd)
    try:
        Tracker(listener, tid).run()
    finally:
        listener.close()
    sys.exit(0)
