/*
 * shmkit: Python multiprocessing's primitives for C processes, in POSIX shared memory.
 *
 * Every object lives in its own region: a named shm_open object ("/name") that unrelated
 * processes open by name, or, when the name is NULL, an anonymous shared mapping that forked
 * children inherit.
 *
 * Conventions, for every function below unless its comment says otherwise:
 *  - Success is 0 or a non-negative count/length; failure is a negative errno value
 *    (-EINVAL, -ETIMEDOUT, ...). shmkit_strerror() explains one. No global error state.
 *  - Names are "/" followed by 1..200 characters of [A-Za-z0-9._-], not starting with "sem."
 *    (that prefix belongs to POSIX named semaphores). Any other name is -EINVAL before anything
 *    is created.
 *  - create is exclusive (-EEXIST if the name is taken, which is never adopted) and applies
 *    `mode` exactly, whatever the umask; mode 0 means 0600.
 *  - open validates the region (magic, layout version, kind, sizes against fstat, ownership) and
 *    refuses anything else: -ENOENT missing, -EPROTOTYPE another kind of shmkit object,
 *    -EBADMSG a foreign, corrupt or truncated region, -EPROTO a newer layout version,
 *    -EACCES owned by another user and writable by others, -ENOTRECOVERABLE a region whose
 *    creator died while initialising it, -EAGAIN one still being initialised after a second.
 *  - close unmaps and frees the handle (NULL is accepted); it never removes the name.
 *    unlink removes the name and everything the object owns; processes that have it open keep
 *    using it until they close.
 *  - Blocking calls come in three forms: blocking (`f`), non-blocking (`f_try`, -EAGAIN when it
 *    would block) and timed (`f_timeout`, -ETIMEDOUT once `timeout_ns` nanoseconds have passed
 *    on CLOCK_MONOTONIC). Signals do not restart the timeout.
 *  - Threads: a Queue or Pipe handle is used by one thread at a time (its claims are the
 *    handle's); open one handle per thread. Lock, Value, Array, Semaphore, Event, Condition
 *    and Barrier handles may be shared by threads: a lock belongs to the thread that took it,
 *    through whichever handle. Handles survive fork: the child may keep using what the parent
 *    opened (it becomes a participant of its own; see "Liveness" below).
 *  - Handles: every function taking a handle requires a valid one. NULL is accepted by the
 *    close functions only (they return 0); any other call with NULL, and any call with a handle
 *    already closed (double close included), is undefined behaviour, as with free(): the
 *    handle's memory is gone. Each handle keeps one file descriptor open (close-on-exec).
 *
 * Seats: each handle that takes part in an object (a queue producer or consumer, a pipe end,
 * a barrier party, a lock holder) sits in one of the object's seats, a fixed table of
 * participants made at create (SHMKIT_USERS_MAX seats for Lock, Value, Array, Condition,
 * Semaphore and Barrier; SHMKIT_QUEUE_WRITERS_MAX for a Queue). A seat is what names a holder,
 * a claim or a pipe end in shared memory; -EUSERS means every seat is held by a live process.
 *
 * Liveness: a handle in a seat holds a kernel lease on it: an OFD lock (fcntl F_OFD_SETLK) on
 * a byte of the object's file that the kernel releases when the process dies, in any pid
 * namespace. A process is dead when its lease is gone -- never judged by pid -- so a stopped
 * process is alive, a reused pid is a different process, and processes in different pid
 * namespaces (containers sharing /dev/shm) see each other correctly. A death is noticed within
 * a second by those waiting on the object (lock waiters look every 200 ms). Closing a handle
 * gives its lease up, like a death: a lock it held is recovered by the next acquirer with
 * SHMKIT_OWNER_DIED. Processes that lock those bytes of a shmkit object's file themselves
 * confuse this (do not).
 *
 * Shared memory outlives processes. shmkit survives participants killed with SIGKILL (see each
 * object), but not a peer that truncates a region under a live mapping: touching the lost pages
 * raises SIGBUS, which no library can prevent. Only give write access to processes you trust
 * not to do that; open refuses regions that are already short.
 */
#ifndef SHMKIT_H
#define SHMKIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "shmkit_version.h" /* SHMKIT_VERSION, written once in configure.ac */

/* The version of the library actually loaded ("0.1.0"), which may be newer than the header a
 * program was built with (SHMKIT_VERSION); never NULL. */
const char *shmkit_version(void);

/* Limits, for programs (and the shmkit tool) that check arguments before calling. */
#define SHMKIT_QUEUE_CAPACITY_MAX (1u << 20) /* messages a queue or pipe direction holds */
#define SHMKIT_MESSAGE_MAX 0x7fffffffu       /* bytes in one message (a get returns an int) */
#define SHMKIT_MESSAGE_DEFAULT (1u << 30)    /* largest message when max_size is 0: 1 GiB */
#define SHMKIT_SLOT_MAX (1u << 24)           /* bytes in one slot of a queue or pipe */
#define SHMKIT_SLOT_DEFAULT 4096u            /* slot bytes when slot_size is 0 and messages
						may be larger */
#define SHMKIT_QUEUE_WRITERS_MAX 256u        /* shmkit_queue_attr.writers; also live handles */
#define SHMKIT_ARRAY_LEN_MAX (1u << 24)      /* cells in an Array */
#define SHMKIT_BARRIER_PARTIES_MAX 1024u     /* parties of a Barrier */
#define SHMKIT_USERS_MAX 1024u               /* live handles using one Lock, Value, Array,
						Condition, Semaphore or Barrier */

/* Longest name, "/" excluded. */
#define SHMKIT_NAME_MAX 200

/* Returned (positive) by a lock acquire that got the lock after its holder died holding it.
 * The caller holds the lock; the data it protects may be half-updated. */
#define SHMKIT_OWNER_DIED 1

/* Explain a shmkit result: 0, SHMKIT_OWNER_DIED, or a negative errno (other positive values are
 * read as errno values). Never NULL. */
const char *shmkit_strerror(int err);

/* ------------------------------------------------------------------------------------------- */
/* Value and Array (multiprocessing.Value / Array): shared int64_t cells.                      */

typedef struct shmkit_value shmkit_value;
typedef struct shmkit_array shmkit_array;
typedef struct shmkit_lock shmkit_lock;

/* How an add reaches memory: the three ways the lessons compare. */
enum shmkit_add_mode {
	SHMKIT_ADD_RACY = 0,   /* a separate load and store: loses updates when processes race */
	SHMKIT_ADD_ATOMIC = 1, /* one atomic read-modify-write */
	SHMKIT_ADD_LOCKED = 2, /* load and store under the object's own Lock */
};

/* Create a Value holding `initial`. */
int shmkit_value_create(const char *name, int64_t initial, unsigned mode, shmkit_value **out);
int shmkit_value_open(const char *name, shmkit_value **out);
int shmkit_value_close(shmkit_value *v);
int shmkit_value_unlink(const char *name);
/* The current value (an atomic load). */
int64_t shmkit_value_load(shmkit_value *v);
/* Set the value (an atomic store); 0. */
int shmkit_value_store(shmkit_value *v, int64_t x);
/* If the value equals *expected, set it to `desired` and return 0; otherwise store the value
 * seen in *expected and return -EAGAIN. Never blocks. */
int shmkit_value_cas(shmkit_value *v, int64_t *expected, int64_t desired);
/* Add `delta` the way `how` says; the new value goes to *result when result is not NULL.
 * Returns 0, SHMKIT_OWNER_DIED (locked mode after a holder died), or -EINVAL for a bad mode.
 * Only SHMKIT_ADD_LOCKED blocks (on the Value's Lock). */
int shmkit_value_add(shmkit_value *v, int64_t delta, enum shmkit_add_mode how, int64_t *result);
/* The Value's own Lock (Value.get_lock()); owned by the Value, valid until it is closed. */
shmkit_lock *shmkit_value_lock(shmkit_value *v);

/* Create an Array of `len` (1..2^24) cells, all zero. */
int shmkit_array_create(const char *name, size_t len, unsigned mode, shmkit_array **out);
int shmkit_array_open(const char *name, shmkit_array **out);
int shmkit_array_close(shmkit_array *a);
int shmkit_array_unlink(const char *name);
/* Number of cells. */
size_t shmkit_array_len(shmkit_array *a);
/* Element operations, as for Value; an index >= len is -ERANGE. */
int shmkit_array_load(shmkit_array *a, size_t i, int64_t *out);
int shmkit_array_store(shmkit_array *a, size_t i, int64_t x);
int shmkit_array_cas(shmkit_array *a, size_t i, int64_t *expected, int64_t desired);
int shmkit_array_add(shmkit_array *a, size_t i, int64_t delta, enum shmkit_add_mode how,
		     int64_t *result);
/* The Array's single Lock, shared by all cells; owned by the Array. */
shmkit_lock *shmkit_array_lock(shmkit_array *a);

/* ------------------------------------------------------------------------------------------- */
/* Lock and RLock: process-shared, robust.                                                     */

#define SHMKIT_RECURSIVE 0x1 /* lock flag: the holder may acquire again (RLock) */

/* Create a Lock; `flags` 0 or SHMKIT_RECURSIVE. */
int shmkit_lock_create(const char *name, unsigned flags, unsigned mode, shmkit_lock **out);
int shmkit_lock_open(const char *name, shmkit_lock **out);
/* Close a Lock opened with create/open (not one borrowed from a Value, Array or Condition). */
int shmkit_lock_close(shmkit_lock *l);
int shmkit_lock_unlink(const char *name);
/* Acquire; blocks while another thread or process holds it. 0, or SHMKIT_OWNER_DIED when the
 * previous holder died holding it (or closed its handle holding it): the lock is now yours,
 * and the data it protects may be half-updated.
 * -EDEADLK if this thread already holds a non-recursive lock, or when sleeping would close a
 * cycle of threads each waiting for a lock the next one holds (the lessons' two processes
 * taking two locks in opposite order): nothing is taken; release what you hold and retry, and
 * the others proceed. Cycles are found through locks this process has mapped or can open by
 * name, among processes of the same user; the try form never reports one.
 * Ownership belongs to the thread (whichever of its handles took it) and no thread of another
 * process or pid namespace ever matches it. -EUSERS when 1024 live processes already use the
 * lock. The blocking and timed forms look every 200 ms whether the holder still lives. */
int shmkit_lock_acquire(shmkit_lock *l);
int shmkit_lock_acquire_try(shmkit_lock *l);
int shmkit_lock_acquire_timeout(shmkit_lock *l, int64_t timeout_ns);
/* Release; -EPERM if the calling thread does not hold it (nothing changes). */
int shmkit_lock_release(shmkit_lock *l);
/* Pid of the process holding the lock, 0 when free (a snapshot; the pid in the holder's own
 * pid namespace). */
pid_t shmkit_lock_holder(shmkit_lock *l);

/* ------------------------------------------------------------------------------------------- */
/* Semaphore and BoundedSemaphore: a named POSIX semaphore (sem_open) plus a small region.     */

typedef struct shmkit_sem shmkit_sem;

#define SHMKIT_BOUNDED 0x2 /* semaphore flag: release beyond the initial value is -EOVERFLOW */

/* Create a semaphore with value `initial` (0..SEM_VALUE_MAX); flags 0 or SHMKIT_BOUNDED. */
int shmkit_sem_create(const char *name, unsigned initial, unsigned flags, unsigned mode,
		      shmkit_sem **out);
int shmkit_sem_open(const char *name, shmkit_sem **out);
int shmkit_sem_close(shmkit_sem *s);
/* Removes the region and its named semaphore. */
int shmkit_sem_unlink(const char *name);
/* Decrement; blocks while the value is 0. */
int shmkit_sem_acquire(shmkit_sem *s);
int shmkit_sem_acquire_try(shmkit_sem *s);
int shmkit_sem_acquire_timeout(shmkit_sem *s, int64_t timeout_ns);
/* Increment. A bounded semaphore already at its initial value returns -EOVERFLOW and stays. */
int shmkit_sem_release(shmkit_sem *s);
/* The current value (>= 0), a snapshot. */
int shmkit_sem_value(shmkit_sem *s);

/* ------------------------------------------------------------------------------------------- */
/* Queue and JoinableQueue: a bounded multi-producer multi-consumer queue of byte messages.    */

typedef struct shmkit_queue shmkit_queue;

#define SHMKIT_JOINABLE 0x4 /* queue flag: task_done()/join() are available */

/*
 * A queue holds `capacity` slots of `slot_size` bytes; a message takes one slot, or as many
 * consecutive slots as its length needs (ceil(len / slot_size)). A message larger than the
 * whole ring streams through it: the producer fills slots while one consumer empties them, so
 * any message up to max_size passes while memory stays capacity x slot_size. Messages that fit
 * one slot cost what they always did.
 */
struct shmkit_queue_attr {
	uint32_t capacity;  /* slots (1..2^20) */
	uint32_t max_size;  /* largest message in bytes (1..SHMKIT_MESSAGE_MAX); 0: 1 GiB */
	uint32_t writers;   /* 0: EOF once the last attached writer detaches; N: once N have
			       attached and all have detached */
	uint32_t flags;     /* 0 or SHMKIT_JOINABLE */
	unsigned mode;      /* permission bits; 0 means 0600 */
	uint32_t slot_size; /* bytes in a slot (1..2^24, at most max_size); 0: max_size when
			       that is at most 4096 (one slot per message, as before), else 4096 */
	uint32_t reserved[6]; /* zero */
};

/* What shmkit_queue_stats() reports; every figure is a snapshot. */
struct shmkit_queue_stats {
	uint32_t capacity, max_size; /* slots; the largest message in bytes */
	uint32_t depth;             /* slots in use (a message longer than a slot uses several) */
	uint32_t writers_expected;  /* attr.writers */
	uint32_t writers_attached;  /* writers attached now */
	uint32_t writers_total;     /* writers that ever attached */
	uint32_t producers_waiting; /* blocked in put */
	uint32_t consumers_waiting; /* blocked in get */
	uint32_t participants;      /* handles registered (producers and consumers) */
	int eof;                    /* 1 once closed for writing */
	int joinable;
	uint64_t put_total, get_total; /* messages put and got since creation */
	uint64_t unfinished;           /* joinable: put but not yet task_done */
	uint64_t slots_reclaimed;      /* slots claimed by producers that died, skipped */
	uint64_t lost_dead_consumer;   /* messages taken by consumers that died before finishing */
	uint64_t participants_reaped;  /* dead producers/consumers cleaned up */
	uint32_t slot_size;            /* bytes in a slot */
	uint32_t reserved0;
	uint64_t reserved[7];          /* zero */
};

/* A handle registers itself on its first put or get, and attach/detach/close update the
 * writer table, under an internal lock held for microseconds; should that lock stay taken for
 * 5 s (a stopped holder, a corrupt region), those calls return -ETIMEDOUT instead of blocking. */
int shmkit_queue_create(const char *name, const struct shmkit_queue_attr *attr,
			shmkit_queue **out);
int shmkit_queue_open(const char *name, shmkit_queue **out);
/* Detaches this handle as a writer if it was one, then unmaps. */
int shmkit_queue_close(shmkit_queue *q);
int shmkit_queue_unlink(const char *name);

/* Attach this handle as a writer (put does it on first use). -EPIPE once the queue is closed
 * for writing; -EDQUOT when the queue was created for `writers` writers and that many have
 * attached (a forked child putting through its parent's handle is a writer of its own);
 * -EUSERS when 256 live handles already take part in the queue. */
int shmkit_queue_attach_writer(shmkit_queue *q);
/* Detach this handle as a writer; when it was the last, the queue reaches EOF as
 * shmkit_queue_attr.writers says. 0 also when it was not attached. */
int shmkit_queue_detach_writer(shmkit_queue *q);
/* Close the queue for writing for everyone now: puts fail with -EPIPE, gets drain what is
 * queued and then return -EPIPE. */
int shmkit_queue_shutdown(shmkit_queue *q);

/* Put one message of `len` bytes; blocks while the queue is full. -EMSGSIZE when len exceeds
 * max_size (nothing is queued); -EPIPE when the queue is closed for writing. A message longer
 * than a slot is put whole or not at all: the deadline bounds the wait for room (a _try puts
 * it only when it fits now); a timed put that must stream a message larger than the free room
 * and runs out of time withdraws what it wrote, and no consumer ever receives part of it. */
int shmkit_queue_put(shmkit_queue *q, const void *msg, size_t len);
int shmkit_queue_put_try(shmkit_queue *q, const void *msg, size_t len);
int shmkit_queue_put_timeout(shmkit_queue *q, const void *msg, size_t len, int64_t timeout_ns);

/* Get the oldest message into buf; returns its length. Blocks while the queue is empty and
 * not at EOF. -EPIPE at EOF (closed and drained); -EMSGSIZE when the message is longer than
 * `size` (it stays queued: see shmkit_queue_next_size, shmkit_queue_get_alloc). -EBADMSG when
 * the region is corrupt. The deadline bounds the wait for a message to begin: once this get
 * has taken the start of a message larger than the ring, it receives the rest as its producer
 * writes it (a producer that dies or withdraws meanwhile: that message is dropped, never
 * returned in part, and the get goes on to the next one). */
int shmkit_queue_get(shmkit_queue *q, void *buf, size_t size);
int shmkit_queue_get_try(shmkit_queue *q, void *buf, size_t size);
int shmkit_queue_get_timeout(shmkit_queue *q, void *buf, size_t size, int64_t timeout_ns);
/* The length of the oldest message (the next get's, unless another consumer takes it first),
 * without taking it; never blocks. -EAGAIN when none has begun arriving, -EPIPE at EOF. */
int shmkit_queue_next_size(shmkit_queue *q);
/* Get the oldest message into a buffer the call allocates (free() it): *msg points at it,
 * the length is returned. Waits and errors as shmkit_queue_get; -ENOMEM (the message stays
 * queued) when it cannot be allocated. */
int shmkit_queue_get_alloc(shmkit_queue *q, void **msg);
int shmkit_queue_get_alloc_try(shmkit_queue *q, void **msg);
int shmkit_queue_get_alloc_timeout(shmkit_queue *q, void **msg, int64_t timeout_ns);

/* Batches (one update of the queue's index per batch): put up to n messages, msgs[i] being
 * message i; block while the queue is full, then put as many as fit at once (in order) and
 * return how many (1..n; 0 when n is 0). -EMSGSIZE when any message exceeds max_size (nothing
 * is queued). A producer that dies during a batch leaves its unpublished slots skipped. A
 * message longer than a slot ends a batch: first in it, it is put alone (as by put). */
struct iovec;
int shmkit_queue_put_many(shmkit_queue *q, const struct iovec *msgs, unsigned n);
int shmkit_queue_put_many_try(shmkit_queue *q, const struct iovec *msgs, unsigned n);
int shmkit_queue_put_many_timeout(shmkit_queue *q, const struct iovec *msgs, unsigned n,
				  int64_t timeout_ns);
/* Get up to n messages: bufs[i].iov_base receives message i, bufs[i].iov_len is its size on
 * entry and the message's length on return. Blocks while the queue is empty, then takes the
 * messages ready now (at most n) and returns how many (>= 1). -EPIPE at EOF, -EMSGSIZE when
 * the oldest message does not fit bufs[0] (a later one that does not fit its buffer ends the
 * batch early and stays queued). A consumer that dies during a batch loses what it had taken
 * (counted in lost_dead_consumer); nobody else waits for it. A message longer than a slot
 * ends a batch; first in it, it is got alone (as by get). */
int shmkit_queue_get_many(shmkit_queue *q, struct iovec *bufs, unsigned n);
int shmkit_queue_get_many_try(shmkit_queue *q, struct iovec *bufs, unsigned n);
int shmkit_queue_get_many_timeout(shmkit_queue *q, struct iovec *bufs, unsigned n,
				  int64_t timeout_ns);

/* Zero-copy loans, one slot each. shmkit_queue_reserve claims the next free slot (blocking
 * while the queue is full) and points *buf at its slot_size bytes: write the message there,
 * then shmkit_queue_commit publishes its first len bytes (-EMSGSIZE over slot_size: the loan
 * stays). A peek whose oldest message is longer than a slot returns -EMSGSIZE (it stays
 * queued: get it).
 * shmkit_queue_peek claims the oldest message (blocking while the queue is empty) and points
 * *msg at it in place, returning its length; shmkit_queue_release gives the slot back. One
 * reserve and one peek at a time per handle: a second one, or a put/get on the handle while
 * the loan of that side is out, gives -EBUSY; commit/release without a loan -EINVAL. Messages
 * behind an open loan wait for it (the queue stays FIFO), so hold loans briefly. A loan never
 * outlives its handle: close skips a reserved slot and releases a peeked message; a holder
 * that dies is treated as a producer/consumer that died mid-message (the slot is skipped, the
 * message counted in lost_dead_consumer). Errors otherwise as put / get (-EPIPE...). On a
 * joinable queue a peek counts as a get (task_done it). */
int shmkit_queue_reserve(shmkit_queue *q, void **buf);
int shmkit_queue_reserve_try(shmkit_queue *q, void **buf);
int shmkit_queue_reserve_timeout(shmkit_queue *q, void **buf, int64_t timeout_ns);
int shmkit_queue_commit(shmkit_queue *q, size_t len);
int shmkit_queue_peek(shmkit_queue *q, const void **msg);
int shmkit_queue_peek_try(shmkit_queue *q, const void **msg);
int shmkit_queue_peek_timeout(shmkit_queue *q, const void **msg, int64_t timeout_ns);
int shmkit_queue_release(shmkit_queue *q);

/* A file descriptor for poll/epoll/select (libuv's uv_poll_t, asyncio's add_reader), owned by
 * the handle (do not close it; shmkit_queue_close does; the same one on every call). Level-
 * triggered: it is readable whenever a get on this handle may not block (a message is queued,
 * or EOF), and may also be readable spuriously: at first, once a second (so that the next _try
 * call looks for dead peers, as a sleeper would), and after another consumer took the message.
 * On readiness call the _try forms (get_try, get_many_try, peek_try) until one returns -EAGAIN:
 * that return is what empties and re-arms the descriptor; nothing else does (a blocking get
 * does not). Producers may be any processes, also ones that never saw the descriptor; they pay
 * for it only while it is armed (one datagram each time, to a socket the handle binds in
 * /dev/shm with the object's permission bits, removed at close). Returns the descriptor, or
 * -EUSERS (no seat), -ENOTSUP, or another negative errno. A fork child gets its own. */
int shmkit_queue_fd(shmkit_queue *q);

/* JoinableQueue: mark one message got by this handle as processed. -EINVAL when called more
 * often than messages were got; -ENOTSUP on a queue created without SHMKIT_JOINABLE. */
int shmkit_queue_task_done(shmkit_queue *q);
/* Block until every message put has been task_done'd (or its consumer died). */
int shmkit_queue_join(shmkit_queue *q);
int shmkit_queue_join_try(shmkit_queue *q);
int shmkit_queue_join_timeout(shmkit_queue *q, int64_t timeout_ns);

/* Snapshots: messages queued, 1 if empty / full, else 0. */
size_t shmkit_queue_size(shmkit_queue *q);
int shmkit_queue_empty(shmkit_queue *q);
int shmkit_queue_full(shmkit_queue *q);
/* The largest message (attr.max_size) and the bytes in a slot (attr.slot_size), as created. */
uint32_t shmkit_queue_max_size(shmkit_queue *q);
uint32_t shmkit_queue_slot_size(shmkit_queue *q);
/* Fill *st; looks for dead participants first so the figures are current. */
int shmkit_queue_stats(shmkit_queue *q, struct shmkit_queue_stats *st);
/* Count n messages got from this queue as lost with a dead consumer (stats.lost_dead_consumer):
 * for a relay (shmkit bridge) whose predecessor died holding messages it had got but not yet
 * delivered, so the loss is counted, never silent. Returns 0; never blocks. */
int shmkit_queue_count_lost(shmkit_queue *q, uint64_t n);

/* ------------------------------------------------------------------------------------------- */
/* Pipe (multiprocessing.Pipe): two connected ends; each end is attached by one process.      */

typedef struct shmkit_pipe shmkit_pipe;

#define SHMKIT_SIMPLEX 0x8 /* pipe flag: end 0 only sends, end 1 only receives */

/* Create a pipe whose directions each hold `capacity` slots, for messages of up to `max_size`
 * bytes (0: 1 GiB); slots are sized as a queue's with slot_size 0 (max_size when at most 4096,
 * else 4096 bytes), and a longer message takes several, or streams through them (see
 * shmkit_queue_attr). */
int shmkit_pipe_create(const char *name, uint32_t capacity, uint32_t max_size, unsigned flags,
		       unsigned mode, shmkit_pipe **out);
int shmkit_pipe_open(const char *name, shmkit_pipe **out);
/* Take end 0 or 1 for this process. -EBUSY when a live process holds that end; -EPIPE when it
 * was used and closed before (ends are not reused). */
int shmkit_pipe_attach(shmkit_pipe *p, int end);
/* Give up this handle's end (the peer sees EOF) and unmap. */
int shmkit_pipe_close(shmkit_pipe *p);
int shmkit_pipe_unlink(const char *name);
/* Send one message to the other end; blocks while its direction is full. -EPIPE when the
 * other end has closed or died; -EMSGSIZE when too long; -EBADF without an end or on the
 * receive-only end of a simplex pipe. */
int shmkit_pipe_send(shmkit_pipe *p, const void *msg, size_t len);
int shmkit_pipe_send_try(shmkit_pipe *p, const void *msg, size_t len);
int shmkit_pipe_send_timeout(shmkit_pipe *p, const void *msg, size_t len, int64_t timeout_ns);
/* Receive one message; returns its length. -EPIPE (EOF) once the other end has closed or died
 * and everything it sent was received; -EMSGSIZE when longer than `size` (it stays queued).
 * Large messages wait and stream as with shmkit_queue_put / shmkit_queue_get. */
int shmkit_pipe_recv(shmkit_pipe *p, void *buf, size_t size);
int shmkit_pipe_recv_try(shmkit_pipe *p, void *buf, size_t size);
int shmkit_pipe_recv_timeout(shmkit_pipe *p, void *buf, size_t size, int64_t timeout_ns);
/* As shmkit_queue_next_size and shmkit_queue_get_alloc, for this end's incoming messages. */
int shmkit_pipe_next_size(shmkit_pipe *p);
int shmkit_pipe_recv_alloc(shmkit_pipe *p, void **msg);
int shmkit_pipe_recv_alloc_try(shmkit_pipe *p, void **msg);
int shmkit_pipe_recv_alloc_timeout(shmkit_pipe *p, void **msg, int64_t timeout_ns);
/* The largest message and the bytes in a slot, as created. */
uint32_t shmkit_pipe_max_size(shmkit_pipe *p);
uint32_t shmkit_pipe_slot_size(shmkit_pipe *p);
/* A pollable descriptor for the attached end's incoming messages, as shmkit_queue_fd: level-
 * triggered, readable when a recv may not block (a message, or EOF once the peer closed or
 * died), spuriously too; recv_try returning -EAGAIN empties and re-arms it. Owned by the
 * handle. -EBADF when not attached or the end only sends (simplex end 0). */
int shmkit_pipe_fd(shmkit_pipe *p);

/* ------------------------------------------------------------------------------------------- */
/* Event, Condition, Barrier.                                                                  */

typedef struct shmkit_event shmkit_event;
typedef struct shmkit_cond shmkit_cond;
typedef struct shmkit_barrier shmkit_barrier;

int shmkit_event_create(const char *name, unsigned mode, shmkit_event **out);
int shmkit_event_open(const char *name, shmkit_event **out);
int shmkit_event_close(shmkit_event *e);
int shmkit_event_unlink(const char *name);
/* Set the flag and wake every waiter. */
int shmkit_event_set(shmkit_event *e);
/* Reset the flag. */
int shmkit_event_clear(shmkit_event *e);
/* 1 if set, 0 if not (and, on a handle with a descriptor, 0 also re-arms it). */
int shmkit_event_is_set(shmkit_event *e);
/* A pollable descriptor, owned by the handle: level-triggered, readable while the flag is set
 * (and spuriously at first, or when it was cleared again since); shmkit_event_is_set()
 * returning 0 empties and re-arms it. Any process's set() wakes it. -ENOLCK for an event
 * created by an older shmkit (no seats), -EUSERS when 64 handles already have one. */
int shmkit_event_fd(shmkit_event *e);
/* Block until the flag is set; 0 once it is. */
int shmkit_event_wait(shmkit_event *e);
int shmkit_event_wait_try(shmkit_event *e);
int shmkit_event_wait_timeout(shmkit_event *e, int64_t timeout_ns);

/* A Condition owns a recursive Lock (as Python's Condition() owns an RLock). */
int shmkit_cond_create(const char *name, unsigned mode, shmkit_cond **out);
int shmkit_cond_open(const char *name, shmkit_cond **out);
int shmkit_cond_close(shmkit_cond *c);
int shmkit_cond_unlink(const char *name);
/* The Condition's Lock; acquire it before wait/notify. Owned by the Condition. */
shmkit_lock *shmkit_cond_lock(shmkit_cond *c);
/* Release the lock, sleep until notified, reacquire. The caller must hold the lock (-EPERM).
 * Returns 0 (or SHMKIT_OWNER_DIED from reacquiring); the timed form returns -ETIMEDOUT, still
 * with the lock held. Wake-ups may be spurious: recheck the condition, or use wait_for. */
int shmkit_cond_wait(shmkit_cond *c);
/* Let go of the lock and take it back at once (waiters for the lock get their turn): 0 when
 * notified meanwhile, else -EAGAIN, the lock held again either way. */
int shmkit_cond_wait_try(shmkit_cond *c);
int shmkit_cond_wait_timeout(shmkit_cond *c, int64_t timeout_ns);
/* Wait until pred(arg) returns non-zero (checked with the lock held), at most timeout_ns
 * (INT64_MAX: forever; negative: -EINVAL, as every timed call). 1 when the predicate became
 * true, 0 when time ran out. */
int shmkit_cond_wait_for(shmkit_cond *c, int (*pred)(void *arg), void *arg,
			 int64_t timeout_ns);
/* Wake up to n waiters (at least n when n are waiting); the caller must hold the lock. */
int shmkit_cond_notify(shmkit_cond *c, int n);
int shmkit_cond_notify_all(shmkit_cond *c);

/* A Barrier for `parties` (1..1024) processes. */
int shmkit_barrier_create(const char *name, unsigned parties, unsigned mode,
			  shmkit_barrier **out);
int shmkit_barrier_open(const char *name, shmkit_barrier **out);
int shmkit_barrier_close(shmkit_barrier *b);
int shmkit_barrier_unlink(const char *name);
/* Wait until `parties` callers are waiting; returns this caller's arrival index
 * (0..parties-1). -ECANCELED when the barrier is broken: a party timed out, died while
 * waiting, or reset was called while parties waited. A timed-out wait breaks the barrier. */
int shmkit_barrier_wait(shmkit_barrier *b);
/* Arrive without waiting: the index when this arrival completes the barrier; otherwise the
 * barrier breaks (as a timed-out wait breaks it) and the result is -EAGAIN. */
int shmkit_barrier_wait_try(shmkit_barrier *b);
int shmkit_barrier_wait_timeout(shmkit_barrier *b, int64_t timeout_ns);
/* Return the barrier to its initial state; waiters then see -ECANCELED. */
int shmkit_barrier_reset(shmkit_barrier *b);
/* Mark the barrier broken, as a timeout would. */
int shmkit_barrier_abort(shmkit_barrier *b);
/* Parties, parties waiting now, and 1 if broken. */
int shmkit_barrier_parties(shmkit_barrier *b);
int shmkit_barrier_n_waiting(shmkit_barrier *b);
int shmkit_barrier_broken(shmkit_barrier *b);

/* ------------------------------------------------------------------------------------------- */
/* Any object by name: what `shmkit ls`, `stat` and `rm` use.                                  */

enum shmkit_kind {
	SHMKIT_KIND_VALUE = 1,
	SHMKIT_KIND_ARRAY = 2,
	SHMKIT_KIND_LOCK = 3,
	SHMKIT_KIND_SEM = 4,
	SHMKIT_KIND_QUEUE = 5,
	SHMKIT_KIND_PIPE = 6,
	SHMKIT_KIND_EVENT = 7,
	SHMKIT_KIND_COND = 8,
	SHMKIT_KIND_BARRIER = 9,
	SHMKIT_KIND_BLOCK = 10,
};

/* "value", "array", ... ; "unknown" for anything else. */
const char *shmkit_kind_name(int kind);

/* What a region holds, read without changing it. Fields not of its kind are zero. */
struct shmkit_info {
	int kind;
	uint64_t size;   /* bytes mapped */
	unsigned mode;   /* permission bits */
	uid_t uid;       /* owner */
	pid_t creator;   /* pid that created it */
	unsigned flags;  /* SHMKIT_RECURSIVE, SHMKIT_BOUNDED, SHMKIT_JOINABLE, SHMKIT_SIMPLEX */
	int64_t value;   /* value: the value; sem: its count; event: 1 if set; barrier: waiting */
	uint64_t len;    /* array: cells; barrier: parties; block: data bytes */
	pid_t holder;    /* lock, value, array, cond, block: pid holding the lock, 0 if free
			    (the holder's pid in its own pid namespace) */
	uint64_t owner_deaths; /* lock: acquisitions that recovered a dead holder */
	uint32_t lock_waiters; /* processes sleeping on the lock */
	/* The object the lock's holder is itself waiting for ("" when it is not waiting, or
	 * anonymous): with the holder, how a deadlock is named. */
	char holder_waits_for[SHMKIT_NAME_MAX + 2];
	struct shmkit_queue_stats queue; /* queue; for a pipe, direction 0 -> 1 */
	struct shmkit_queue_stats queue2; /* pipe: direction 1 -> 0 (duplex only) */
	pid_t ends[2];   /* pipe: pids holding end 0 and 1, 0 when free */
	uint64_t reserved[8]; /* zero */
};

/* Open the named region, validate it as any kind and fill *info. */
int shmkit_info(const char *name, struct shmkit_info *info);
/* Remove a named shmkit object of any kind, with what it owns. -EBADMSG (nothing removed) when
 * the name is not a shmkit region. */
int shmkit_remove(const char *name);
/* Check a name without touching anything: 0 or -EINVAL. */
int shmkit_name_check(const char *name);


/* ------------------------------------------------------------------------------------------- */
/* Block: a shared block of bytes with its own Lock (Python's SharedMemory, RawArray, and the  */
/* ctypes-typed Value and Array of the Python binding).                                       */

typedef struct shmkit_block shmkit_block;

/* Create a block of `size` bytes (0..2^40), all zero, with a recursive Lock (an RLock, as a
 * multiprocessing Value gets). The data is 64-byte aligned. -EINVAL for a bigger size;
 * -ENOSPC when /dev/shm cannot hold it (reserved now, never SIGBUS later). */
int shmkit_block_create(const char *name, size_t size, unsigned mode, shmkit_block **out);
int shmkit_block_open(const char *name, shmkit_block **out);
int shmkit_block_close(shmkit_block *b);
int shmkit_block_unlink(const char *name);
/* The first byte of the data, mapped in this process until close; never NULL. */
void *shmkit_block_data(shmkit_block *b);
/* Data bytes, as created (validated against the region's real size at open). */
size_t shmkit_block_size(shmkit_block *b);
/* The block's recursive Lock; owned by the block, valid until it is closed. Nothing in the
 * library takes it: it protects the data only for callers that agree to take it. */
shmkit_lock *shmkit_block_lock(shmkit_block *b);

#ifdef __cplusplus
}
#endif
#endif /* SHMKIT_H */
