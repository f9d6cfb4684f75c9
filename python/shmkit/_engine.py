"""The engine under shmkit.Pool and shmkit.futures.ProcessPoolExecutor.

Why it survives a killed worker: the parent always knows which task a dead worker was running.
  - Each worker has an inbox of its own (a shmkit Queue only the parent puts to); the parent
    records every task it puts there, in order, as that worker's outstanding tasks.
  - Before running a task the worker writes the task's id (after its start time) into its cell
    of a shared array of int64 ("slots", one shmkit block); a finished task's result goes to
    the shared results queue (one message per task) before the worker writes the next id.
  - The parent's manager thread alone reads results and watches the workers' sentinels. When a
    worker is gone it first drains the results queue (a dead process's completed puts are all
    there: a put is published whole or not at all), then looks at what is still outstanding:
    the task whose id is in the slot was running -- its result is WorkerDied naming the exit
    signal, or it runs again while it has retries left; every other outstanding task never
    started (killed between taking a message and writing the slot included) and goes back to
    the front of the pending line. The dead inbox is unlinked; a replacement gets a new one.
    So no result is lost or delivered twice, and nothing waits for the dead.
  - timeout=: the manager kills (SIGKILL) a worker whose slot shows the same task for longer,
    and the death is reported as TaskTimeout; a task killed by a race with that (the worker had
    just moved on) is put back without using a retry.
Speed: tasks are pickled once each in the parent and framed several to a message ("<IQ" length
and id, then the pickle); map/imap chunks are single tasks; how many tasks a worker may have
queued grows as tasks are seen to be short (about 100 ms of work queued, 4 tasks at least; 2
when they take 50 ms or more), so small tasks travel in batches; a worker left idle while
another has tasks waiting in its inbox gets some of them (the parent takes that inbox's next
message and deals it again), so long ones are not stuck behind each other.
Names: every object is "/shmkit-py-<pid>-<n>-pool<pid>-<what>-<random>" (what: results, slots,
in<k>), so `shmkit ls` says whose pool it is. The parent unlinks them when the pool ends (or at
exit). Should the parent be killed, each worker notices (its parent sentinel, or its inbox at
EOF: the parent was the only writer), unlinks them and exits at once: no orphan runs on.
"""
import collections
import itertools
import multiprocessing
import os
import pickle
import queue as _queue
import signal
import struct
import sys
import threading
import time
import traceback
import weakref
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import connection as _mpconn
from multiprocessing import util
from concurrent.futures.process import _ExceptionWithTraceback as _FuturesWithTraceback
from multiprocessing.pool import ExceptionWithTraceback as _PoolWithTraceback
from multiprocessing.pool import MaybeEncodingError

from . import _registry, _shmkit
from .queues import Queue

FRAME = struct.Struct("<IQ")   # pickle length, task id
INBOX_CAPACITY = 16            # messages; each up to INBOX_SLOT bytes (larger ones still go)
INBOX_SLOT = 64 << 10
RESULTS_CAPACITY = 64
RESULTS_SLOT = 64 << 10
MESSAGE_TARGET = 32 << 10      # bytes of frames per inbox message
QUEUED_WORK_NS = 100_000_000   # how much work a worker may have queued
QUOTA_MAX = 256
TICK = 0.05                    # seconds between looks at sentinels and timeouts while busy

# Task kinds: what a worker does with (func, args, kwargs).
CALL, MAPCHUNK, STARCHUNK = 0, 1, 2


class WorkerDied(BrokenProcessPool, multiprocessing.ProcessError):
    """The worker running this task died (killed by a signal, or exited) before returning
    its result. The pool itself keeps working: a replacement worker has been started.

    A BrokenProcessPool, so concurrent.futures code that handles a dead worker catches it, and
    a multiprocessing.ProcessError, multiprocessing's base for process failures. Attributes:
    pid, exitcode (negative: the signal number, as Process.exitcode), signal (the signal's
    number or None)."""

    def __init__(self, msg, pid=None, exitcode=None):
        super().__init__(msg)
        self.pid = pid
        self.exitcode = exitcode
        self.signal = -exitcode if exitcode is not None and exitcode < 0 else None


class TaskTimeout(WorkerDied):
    """The task ran longer than its timeout=: its worker was killed and replaced."""


WorkerDied.__module__ = TaskTimeout.__module__ = "shmkit"


def _death_text(pid, exitcode):
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "signal %d" % -exitcode
        return "worker %d was killed by %s" % (pid, name)
    return "worker %d exited with code %s" % (pid, exitcode)


# ---- the worker process ----------------------------------------------------------------------

def _orphaned(owned):
    """The pool's process is gone (killed: it unlinks nothing): nobody will read a result or
    unlink the pool's objects. Unlink them (every worker tries; a name goes once) and go."""
    for name in owned:
        try:
            _shmkit.remove(name)
        except OSError:
            pass
    os._exit(1)


def _watch_parent(sentinel, owned):
    _mpconn.wait([sentinel])  # readable once the pool's process has died
    _orphaned(owned)


def _on_sigterm(sentinel, owned):
    """SIGTERM: from the pool's terminate(), or sent to the whole process group with the
    pool's process (`timeout`, `kill -TERM -PGID`, a service manager). In the second case
    nobody else will unlink the pool's objects: if the parent dies within a moment, do it."""
    def handler(signum, frame):
        if sentinel is not None and _mpconn.wait([sentinel], 0.2):
            _orphaned(owned)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # die of it, so the exit code says so
    return handler


def _worker_main(inbox, results, slots_name, pos, initializer, initargs, maxtasks, flavour,
                 owned):
    # Ctrl-C goes to the whole foreground group: the parent decides the workers' fate (it
    # terminates them), a task is not interrupted half-way by the terminal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None else None
    if sentinel is not None:
        threading.Thread(target=_watch_parent, args=(sentinel, owned),
                         name="shmkit-pool-parent-watch", daemon=True).start()
    signal.signal(signal.SIGTERM, _on_sigterm(sentinel, owned))
    block = _shmkit.Block(slots_name, False)
    slots = memoryview(block).cast("q")
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            results.put(("init", pos, traceback.format_exc()))
            return
    # The remote traceback each API's users expect as __cause__.
    ExceptionWithTraceback = _PoolWithTraceback if flavour == "pool" else _FuturesWithTraceback
    done = 0
    mv_slot, mv_start = 2 * pos, 2 * pos + 1
    loads = pickle.loads
    while maxtasks is None or done < maxtasks:
        try:
            data = inbox.get()
        except EOFError:
            # EOF without a stop message: the parent (the inbox's only writer) died.
            _orphaned(owned)
        if not data:
            return  # stop message
        mv = memoryview(data)
        off, end = 0, len(data)
        while off < end:
            n, tid = FRAME.unpack_from(mv, off)
            body = mv[off + FRAME.size:off + FRAME.size + n]
            off += FRAME.size + n
            t0 = time.monotonic_ns()
            slots[mv_start] = t0
            slots[mv_slot] = tid  # from here a death is this task's
            try:
                kind, func, args, kwargs = loads(body)
                if kind == CALL:
                    value = func(*args, **kwargs)
                elif kind == MAPCHUNK:
                    value = list(map(func, args))
                else:
                    value = list(itertools.starmap(func, args))
                ok = True
            except Exception as e:
                value, ok = ExceptionWithTraceback(e, e.__traceback__), False
            elapsed = time.monotonic_ns() - t0
            try:
                results.put((pos, tid, ok, value, elapsed))
            except Exception as e:
                if flavour == "pool":
                    err = MaybeEncodingError(e, value)
                else:
                    err = ExceptionWithTraceback(e, e.__traceback__)
                try:
                    results.put((pos, tid, False, err, elapsed))
                except Exception:
                    results.put((pos, tid, False, RuntimeError(
                        "the task's result and its error could not be pickled: %r" % e),
                        elapsed))
            done += 1


# ---- the parent's side -----------------------------------------------------------------------

class Task:
    """One unit of work: a call, or one chunk of a map. sink(task, ok, value) gets its outcome
    exactly once; start(task) is asked before it is first dispatched (False: skip it)."""
    __slots__ = ("tid", "frame", "sink", "index", "retries", "timeout", "started", "start",
                 "cancel")

    def __init__(self, tid, frame, sink, index, retries, timeout, start=None, cancel=None):
        self.tid, self.frame, self.sink, self.index = tid, frame, sink, index
        self.retries, self.timeout, self.start, self.cancel = retries, timeout, start, cancel
        self.started = False


class Source:
    """Tasks made lazily from an iterable (imap, map): pulled when a worker has room.
    make() returns the next Task (its frame None when it could not be pickled: its sink has
    been told), or None when the iterable is exhausted (or raised: make told the sink);
    abort(exc) ends it, telling its sink that what is left failed with exc."""
    __slots__ = ("make", "abort")

    def __init__(self, make, abort):
        self.make, self.abort = make, abort


class _Worker:
    __slots__ = ("proc", "inbox", "outstanding", "budget", "killed_for", "pos")

    def __init__(self, pos):
        self.pos = pos
        self.proc = None
        self.inbox = None
        self.outstanding = collections.OrderedDict()  # tid -> Task, in dispatch order
        self.budget = None
        self.killed_for = None


RUN, CLOSE, TERMINATE, BROKEN = 0, 1, 2, 3


class Engine:
    def __init__(self, processes, initializer, initargs, maxtasks, ctx, flavour, retries=0,
                 timeout=None):
        self.ctx = ctx
        self.n = processes
        self.initializer, self.initargs, self.maxtasks = initializer, initargs, maxtasks
        self.flavour = flavour
        self.retries, self.timeout = retries, timeout
        self.tag = "pool%d" % os.getpid()
        self.lock = threading.RLock()
        self.state = RUN
        self.broken = None
        self.pending = collections.deque()
        self.ids = itertools.count(1)
        self.avg_ns = None
        self.names = []
        self.results = self._queue("results", RESULTS_CAPACITY, RESULTS_SLOT)
        # The manager thread gets from `results`; other threads wake it through their own
        # handle (a Queue handle is one thread's at a time).
        self.waker = Queue.attach(self.results.name)
        self.waker_lock = threading.Lock()
        self.slots_name = _registry.new_name(self.tag + "-slots")
        _registry.own(self.slots_name)
        self.names.append(self.slots_name)
        self.slots_block = _shmkit.Block(self.slots_name, True, 16 * processes)
        self.slots = memoryview(self.slots_block).cast("q")
        self.workers = [_Worker(i) for i in range(processes)]
        self.dead_started = 0
        try:
            for w in self.workers:
                self._start(w)
        except BaseException:
            self._kill_all()
            self._unlink_all()
            raise
        self.thread = threading.Thread(target=self._manage, name="shmkit-pool-manager",
                                       daemon=True)
        self.thread.start()
        # Before multiprocessing terminates daemonic children at exit (its priority-0
        # finalizers run first), so the manager does not see them die and replace them.
        self._finalizer = util.Finalize(self, Engine._at_exit, args=(weakref.ref(self),),
                                        exitpriority=15)

    # -- objects ------------------------------------------------------------------------------
    def _queue(self, what, capacity, slot):
        name = _registry.new_name("%s-%s" % (self.tag, what))
        # Bounded (puts go straight into the ring, never through a feeder thread's buffer:
        # the manager's record of what each inbox holds must be what the ring holds), with
        # slots of `slot` bytes; a longer message (a large task or result) spans slots.
        q = Queue(capacity, name=name, slot_size=slot)
        _registry.own(name)
        self.names.append(name)
        return q

    def _start(self, w):
        if w.inbox is not None:
            self._drop_queue(w.inbox)
        w.inbox = self._queue("in%d" % w.pos, INBOX_CAPACITY, INBOX_SLOT)
        self.slots[2 * w.pos] = 0
        self.slots[2 * w.pos + 1] = 0
        w.budget = self.maxtasks
        w.killed_for = None
        owned = (w.inbox.name, self.results.name, self.slots_name)
        p = self.ctx.Process(target=_worker_main, name="shmkit-pool-%s-%d" % (self.tag, w.pos),
                             args=(w.inbox, self.results, self.slots_name, w.pos,
                                   self.initializer, self.initargs, self.maxtasks,
                                   self.flavour, owned),
                             daemon=True)
        p.start()
        w.proc = p

    def _drop_queue(self, q):
        try:
            q.close()
        except Exception:
            pass
        try:
            q.unlink()
        except OSError:
            pass
        if q.name in self.names:
            self.names.remove(q.name)

    def _unlink_all(self):
        for q in [self.results, self.waker] + [w.inbox for w in self.workers if w.inbox]:
            try:
                q.close()
            except Exception:
                pass
        for name in self.names:
            _registry.disown(name)
            try:
                _shmkit.remove(name)
            except OSError:
                pass
        self.names = []

    # -- submitting ---------------------------------------------------------------------------
    def check_running(self):
        if self.state == BROKEN:
            raise self.broken
        if self.state != RUN:
            raise ValueError("Pool not running")

    def make_task(self, kind, func, args, kwargs, sink, index=0, retries=None, timeout=None,
                  start=None, cancel=None):
        """A Task, or None when (kind, func, args, kwargs) cannot be pickled: then the sink
        has been told."""
        tid = next(self.ids)
        try:
            body = pickle.dumps((kind, func, args, kwargs), pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            sink(Task(tid, None, sink, index, 0, None, start), False, e)
            return None
        return Task(tid, FRAME.pack(len(body), tid) + body, sink, index,
                    self.retries if retries is None else retries,
                    self.timeout if timeout is None else timeout, start, cancel)

    def cancel_pending(self):
        """Cancel every task not yet given to a worker (cancel_futures=True)."""
        with self.lock:
            keep, dropped = collections.deque(), []
            for item in self.pending:
                if isinstance(item, Task) and not item.started and item.cancel is not None:
                    dropped.append(item)
                else:
                    keep.append(item)
            self.pending = keep
        for t in dropped:
            t.cancel(t)

    def submit(self, items):
        """Queue Tasks/Sources (in order) and dispatch what fits now."""
        with self.lock:
            self.check_running()
            self.pending.extend(items)
            done = self._dispatch()
        self._deliver(done)

    # -- dispatching (under self.lock) --------------------------------------------------------
    def _quota(self):
        a = self.avg_ns
        if a is None:
            return 2
        if a >= 50_000_000:
            return 2  # one running, one ready (stealing evens out the rest)
        return max(4, min(QUOTA_MAX, QUEUED_WORK_NS // max(a, 1)))

    def _next_task(self):
        while self.pending:
            item = self.pending[0]
            if isinstance(item, Source):
                try:
                    t = item.make()
                except Exception:
                    traceback.print_exc()
                    t = None
                if t is None:
                    self.pending.popleft()
                    continue
                if t.frame is None:
                    continue
                return t
            self.pending.popleft()
            if not item.started and item.start is not None:
                if not item.start(item):
                    continue  # cancelled
            item.started = True
            return item
        return None

    def _dispatch(self):
        """Give pending tasks to the workers with room (under self.lock); then, if a worker
        is idle while another has tasks queued, move some. Returns the outcomes to deliver
        (none: kept for the callers' symmetry)."""
        if self.state not in (RUN, CLOSE):
            return []
        self._deal()
        if not self.pending and self._steal():
            self._deal()
        return []

    def _steal(self):
        """Work stealing: an idle worker while another has tasks waiting in its inbox. The
        parent takes the next message from the busy worker's inbox (a queue: the message is
        the parent's or the worker's, never both), so its tasks never started there, and
        they are dealt again. True if anything moved."""
        live = [w for w in self.workers if w.proc is not None and w.killed_for is None]
        if not any(not w.outstanding for w in live):
            return False
        for w in sorted(live, key=lambda w: -len(w.outstanding)):
            if len(w.outstanding) < 2:
                return False
            try:
                data = w.inbox.get(False)
            except Exception:
                continue
            off, moved = 0, []
            while off < len(data):
                n, tid = FRAME.unpack_from(data, off)
                off += FRAME.size + n
                t = w.outstanding.pop(tid, None)
                if t is not None:
                    moved.append(t)
            if w.budget is not None:
                w.budget += len(moved)
            self.pending.extend(moved)
            return bool(moved)
        return False

    def _deal(self):
        if not self.pending:
            return
        quota = self._quota()
        deal = []  # [worker, room left, tasks taken, their bytes]
        for w in sorted(self.workers, key=lambda w: len(w.outstanding)):
            if w.proc is None or w.killed_for is not None:
                continue
            room = quota - len(w.outstanding)
            if w.budget is not None:
                room = min(room, w.budget)
            if room > 0:
                deal.append([w, room, [], 0])
        # One task at a time to each worker in turn, the least busy first: a burst spreads
        # over every worker rather than filling the first one's quota.
        while deal:
            for entry in list(deal):
                t = self._next_task()
                if t is None:
                    deal.append(None)  # marks "nothing left"
                    break
                entry[1] -= 1
                entry[2].append(t)
                entry[3] += len(t.frame)
                if entry[3] >= MESSAGE_TARGET or entry[1] == 0:
                    ok = self._send(entry[0], entry[2])
                    entry[2], entry[3] = [], 0
                    if not ok or entry[1] == 0:
                        deal.remove(entry)
            if deal and deal[-1] is None:
                deal.pop()
                break
        for w, _, tasks, _ in deal:
            if tasks:
                self._send(w, tasks)

    def _send(self, w, tasks):
        try:
            w.inbox.put(b"".join([t.frame for t in tasks]), False)
        except _queue.Full:
            self.pending.extendleft(reversed(tasks))
            return False
        for t in tasks:
            w.outstanding[t.tid] = t
        if w.budget is not None:
            w.budget -= len(tasks)
        return True

    # -- delivering (outside the lock: sinks run user callbacks) ------------------------------
    @staticmethod
    def _deliver(done):
        # Each outcome is dropped as soon as it is handed over: a caller may already hold
        # (and then drop) the result while the rest are still being delivered.
        done.reverse()
        while done:
            t, ok, value = done.pop()
            try:
                t.sink(t, ok, value)
            except Exception:
                traceback.print_exc()
            del t, ok, value

    # -- the manager thread -------------------------------------------------------------------
    def _wake(self):
        with self.waker_lock:
            try:
                self.waker.put(None, False)
            except Exception:
                pass

    def _manage(self):
        try:
            self.last_look = time.monotonic()
            while self._step():
                pass
        except BaseException:
            # Never expected; the pool cannot go on without its manager: say so, and fail
            # what is pending rather than leave callers waiting.
            traceback.print_exc()
            with self.lock:
                self.state = TERMINATE
        finally:
            self._finish()

    def _step(self):
        """One round: take results, look at the workers, dispatch. False when finished.
        (A method of its own so that no task, argument or result stays referenced by the
        manager while it waits: callers expect them freed.)"""
        busy = bool(self.pending) or any(w.outstanding for w in self.workers)
        msgs = []
        try:
            msgs.append(self.results.get(True, TICK if busy else 0.5))
            while len(msgs) < 256:
                msgs.append(self.results.get(False))
        except _queue.Empty:
            pass
        done = []
        with self.lock:
            for m in msgs:
                self._take(m, done)
            msgs.clear()
            m = None
            now = time.monotonic()
            if now - self.last_look >= TICK or not msgs:
                self.last_look = now
                self._look(done)
            if self.state == TERMINATE:
                finished = True
            else:
                done.extend(self._dispatch())
                finished = (self.state in (CLOSE, BROKEN) and not self.pending
                            and not any(w.outstanding for w in self.workers))
        self._deliver(done)
        return not finished

    def _take(self, m, done):
        if m is None:
            return  # a wake-up
        if m[0] == "init":
            _, pos, text = m
            self._break("A process in the process pool failed in its initializer:\n" + text,
                        done)
            return
        pos, tid, ok, value, elapsed = m
        w = self.workers[pos]
        t = w.outstanding.pop(tid, None)
        if t is None:
            return
        a = self.avg_ns
        self.avg_ns = elapsed if a is None else (a * 7 + elapsed) >> 3
        done.append((t, ok, value))

    def _break(self, text, done):
        if self.state in (RUN, CLOSE):
            self.broken = BrokenProcessPool(text)
            self.state = BROKEN
            self._fail_all(self.broken, done)

    def _fail_all(self, exc, done):
        for w in self.workers:
            for t in w.outstanding.values():
                done.append((t, False, exc))
            w.outstanding.clear()
        while self.pending:
            item = self.pending.popleft()
            if isinstance(item, Source):
                try:
                    item.abort(exc)
                except Exception:
                    traceback.print_exc()
            elif item.started or item.start is None or item.start(item):
                done.append((item, False, exc))

    def _look(self, done):
        """Deaths and timeouts (under the lock)."""
        now_ns = time.monotonic_ns()
        for w in self.workers:
            if w.proc is None or w.killed_for is not None:
                continue
            tid = self.slots[2 * w.pos]
            t = w.outstanding.get(tid)
            if t is not None and t.timeout is not None:
                if now_ns - self.slots[2 * w.pos + 1] > t.timeout * 1e9:
                    w.killed_for = tid
                    try:
                        os.kill(w.proc.pid, signal.SIGKILL)
                    except OSError:
                        pass
        sentinels = {w.proc.sentinel: w for w in self.workers if w.proc is not None}
        dead = [sentinels[s] for s in _mpconn.wait(list(sentinels), 0)]
        if not dead:
            return
        # Every result a dead worker published is in the queue now: take them all first.
        while True:
            try:
                m = self.results.get(False)
            except _queue.Empty:
                break
            self._take(m, done)
        for w in dead:
            self._bury(w, done)

    def _bury(self, w, done):
        p = w.proc
        p.join()
        running = self.slots[2 * w.pos]
        back = []
        for tid, t in w.outstanding.items():
            if tid != running:
                back.append(t)  # never started
            elif w.killed_for is not None and w.killed_for != tid:
                back.append(t)  # killed for another task's timeout, by a race: not its fault
            elif t.retries > 0:
                t.retries -= 1
                back.append(t)
            else:
                if w.killed_for == tid:
                    err = TaskTimeout("task ran longer than its timeout of %gs: %s"
                                      % (t.timeout, _death_text(p.pid, p.exitcode)),
                                      p.pid, p.exitcode)
                else:
                    err = WorkerDied(_death_text(p.pid, p.exitcode) + " while running this task",
                                     p.pid, p.exitcode)
                done.append((t, False, err))
        w.outstanding.clear()
        self.pending.extendleft(reversed(back))
        w.proc = None
        if self.state in (RUN, CLOSE):
            try:
                self._start(w)
            except Exception as e:
                self._break("cannot start a replacement worker: %r" % e, done)

    def _finish(self):
        """The manager's last act: stop the workers, unlink everything."""
        try:
            with self.lock:
                terminate = self.state == TERMINATE
            workers = [w for w in self.workers if w.proc is not None]
            if not terminate:
                for w in workers:
                    try:
                        w.inbox.put(b"", True, 5)  # stop (an empty message)
                    except Exception:
                        pass
                deadline = time.monotonic() + 10
                for w in workers:
                    w.proc.join(max(0, deadline - time.monotonic()))
            self._kill_all()
        finally:
            with self.lock:
                done = []
                self._fail_all(BrokenProcessPool("the pool was terminated"), done)
            self._deliver(done)
            self._unlink_all()

    def _kill_all(self):
        procs = [w.proc for w in self.workers if w.proc is not None]
        for p in procs:
            if p.exitcode is None:
                p.terminate()
        deadline = time.monotonic() + 2
        for p in procs:
            p.join(max(0, deadline - time.monotonic()))
            if p.exitcode is None:
                p.kill()
                p.join()

    # -- ending -------------------------------------------------------------------------------
    def close(self):
        with self.lock:
            if self.state == RUN:
                self.state = CLOSE
        self._wake()

    def terminate(self):
        with self.lock:
            self.state = TERMINATE
        self._wake()
        if threading.current_thread() is not self.thread:
            self.thread.join()

    def join(self, timeout=None):
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    def processes(self):
        return [w.proc for w in self.workers if w.proc is not None]

    @staticmethod
    def _at_exit(ref):
        # A Pool is terminated at exit (as multiprocessing's); an executor finishes its work
        # first (as concurrent.futures' does).
        self = ref()
        if self is None:
            return
        # ... unless the program is ending on Ctrl-C: then nobody waits for the work.
        if self.flavour == "executor" and not isinstance(getattr(sys, "last_value", None),
                                                         KeyboardInterrupt):
            self.close()
            self.join()
        self.terminate()
