/* Library-private declarations shared between lib/ files. */
#ifndef SHMKIT_INTERNAL_H
#define SHMKIT_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <stdatomic.h>

#include "layout.h"
#include "shmkit.h"

#define SHMKIT__API __attribute__((visibility("default")))
#define SHMKIT__FOREVER INT64_MAX
/* Internal state locks (registration, a barrier's count, a bounded semaphore's guard) are held
 * for microseconds. Waiting this long means a stopped holder or a scribbled mutex: give up
 * with -ETIMEDOUT rather than block for ever. */
#define SHMKIT__STATE_LOCK_NS (5 * 1000000000LL)
/* How long any sleeper sleeps at most before it looks for dead peers (and, in a lock, for a
 * deadlock): a death is noticed within this, and an idle sleeper wakes once per slice. */
#define SHMKIT__SLICE_NS (1000000000LL)

#define shmkit__likely(x) __builtin_expect(!!(x), 1)
#define shmkit__unlikely(x) __builtin_expect(!!(x), 0)

/* A mapped region, process-local. */
struct shmkit__region {
	struct shmkit__hdr *hdr; /* == base */
	size_t size;             /* mapped bytes, from fstat at open or the size at create */
	size_t obj_size;         /* bytes before the seat table: what the kind's checks compare */
	char name[SHMKIT_NAME_MAX + 2];
	bool named;
	bool rdonly;
	int fd;                  /* this handle's own open file description: it holds our leases */
	uint64_t dev, ino;       /* the file's identity, for the deadlock detector */
	struct shmkit__seat *seats; /* the seat table, nseats validated at open */
	uint32_t nseats;
	int seat;                /* this handle's seat, -1 before the first need */
	unsigned seat_gen;       /* fork generation the seat was taken in */
	struct shmkit__lk *lk;   /* the region's lock, if it has one (one at most) */
	bool lk_recursive;
	/* Called when this handle takes a seat a dead process held, before anything else uses
	 * it: the kind cleans up what the dead one left there (queue: its claims). */
	void (*seat_reclaim)(struct shmkit__region *r, uint32_t seat, void *arg);
	void *seat_reclaim_arg;
	struct shmkit__region *next, *prev; /* every region this process has mapped (lease.c) */
};

/* Whether the object part of r (what precedes its seats) is what `size` bytes of object make:
 * the seats start at the next cache line. */
static inline bool shmkit__obj_size_is(const struct shmkit__region *r, size_t size)
{
	return r->obj_size == ((size + SHMKIT__CACHELINE - 1) & ~(size_t)(SHMKIT__CACHELINE - 1));
}

/* region.c */
/* Create a region of `size` bytes for `kind`, header written with state INIT. The caller fills
 * the object, then calls shmkit__region_ready(), or shmkit__region_abort() on failure. */
int shmkit__region_create(const char *name, uint32_t kind, uint32_t flags, size_t size,
			  uint32_t nseats, unsigned mode, struct shmkit__region *r);
void shmkit__region_ready(struct shmkit__region *r);
/* Creator: the region's one lock is `lk` (recursive when the region's flags say
 * SHMKIT_RECURSIVE); initialises it and records where it is for every opener. */
void shmkit__region_set_lock(struct shmkit__region *r, struct shmkit__lk *lk);
void shmkit__region_abort(struct shmkit__region *r);
/* Open and validate the header; kind 0 accepts any kind. The caller validates params. */
int shmkit__region_open(const char *name, uint32_t kind, struct shmkit__region *r);
/* The same, or with `inspect` mapped read-only and without waiting for a creator still at
 * work (for looking at objects one may not write, or many of them, as `shmkit ls` does). */
int shmkit__region_open_mode(const char *name, uint32_t kind, bool inspect,
			     struct shmkit__region *r);
void shmkit__region_close(struct shmkit__region *r);
int shmkit__region_unlink(const char *name);
/* Derived name of an object's POSIX named semaphore; buf holds NAME_MAX + 1. */
int shmkit__sem_name(const char *name, char *buf, size_t size);
/* Allocate a zeroed handle of `size` bytes. */
void *shmkit__handle_new(size_t size);

/* lease.c: liveness from kernel-held OFD locks on the region's file (see lease.c). */
#define SHMKIT__SEATS_DEFAULT SHMKIT_USERS_MAX /* seats of a region whose users are not counted */
#define SHMKIT__SEATS_MAX 4096u
/* 0 taken, -EAGAIN another description holds it, else -errno. */
int shmkit__lease_take(int fd, uint64_t byte);
void shmkit__lease_drop(int fd, uint64_t byte);
/* 1 if another open file description holds the lease (or we cannot tell), 0 if free. */
int shmkit__lease_held(int fd, uint64_t byte);
void shmkit__region_track(struct shmkit__region *r);
void shmkit__region_untrack(struct shmkit__region *r);
/* Call fn on the region this process has mapped with that file identity; -ENOENT if none. */
int shmkit__region_lookup(uint64_t dev, uint64_t ino,
			  int (*fn)(struct shmkit__region *, void *), void *arg);
/* This handle's seat (taken on first need, again in a fork child): index, or -EUSERS when
 * every seat is held by a live process, -ENOLCK when this handle cannot hold leases. */
int shmkit__seat_take(struct shmkit__region *r);
/* Give the seat up (handle close). */
void shmkit__seat_leave(struct shmkit__region *r);
/* Whether seat k is held by a live process (ours included). */
bool shmkit__seat_alive(const struct shmkit__region *r, uint32_t k);
/* Take the lease of seat k, which must not be ours, so nobody can sit there while we clean
 * up after its dead holder: 0, or -EAGAIN when someone alive holds it. thaw lets go. */
int shmkit__seat_freeze(struct shmkit__region *r, uint32_t k);
void shmkit__seat_thaw(struct shmkit__region *r, uint32_t k);

/* time.c / wait.c: CLOCK_MONOTONIC nanoseconds and the one place that sleeps. */
int64_t shmkit__now(void);
/* Absolute deadline for a timeout: <0 forever, 0 now (try), >0 now + timeout. */
int64_t shmkit__deadline(int64_t timeout_ns);
/* Sleep while *word == expect, until woken or the deadline passes. 0 when woken or the value
 * differs or a signal arrived (recheck and call again), -ETIMEDOUT past the deadline. */
int shmkit__futex_wait(_Atomic uint32_t *word, uint32_t expect, int64_t deadline);
/* Wake up to n sleepers on word. */
void shmkit__futex_wake(_Atomic uint32_t *word, int n);
/* The _timeout forms of the public API: a negative timeout is -EINVAL (*deadline untouched);
 * 0 is one try (deadline 0); and a try that would block reports -ETIMEDOUT, not -EAGAIN. */
static inline int shmkit__timeout_deadline(int64_t timeout_ns, int64_t *deadline)
{
	if (timeout_ns < 0)
		return -EINVAL;
	*deadline = timeout_ns ? shmkit__deadline(timeout_ns) : 0;
	return 0;
}
static inline int shmkit__timed(int rc)
{
	return rc == -EAGAIN ? -ETIMEDOUT : rc;
}
/* One pause instruction for spin loops. */
static inline void shmkit__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* proc.c: liveness that survives pid reuse. */
/* This process's pid and start time (cached; refreshed in a fork child). */
void shmkit__self(int32_t *pid, uint64_t *start);
/* This process's pid namespace (the inode of /proc/self/ns/pid), 0 when unknown. */
uint64_t shmkit__pidns(void);
/* The calling thread's id (cached per thread, refreshed in a fork child). */
int32_t shmkit__tid(void);
/* Inline fast paths of the two for the lock's hot path (caches cleared in a fork child). */
extern _Atomic int32_t shmkit__self_pid;
extern __thread int32_t shmkit__tls_tid __attribute__((tls_model("initial-exec")));
int32_t shmkit__pid_slow(void);
static inline int32_t shmkit__pid(void)
{
	int32_t p = atomic_load_explicit(&shmkit__self_pid, memory_order_relaxed);

	return shmkit__likely(p) ? p : shmkit__pid_slow();
}
static inline int32_t shmkit__tid_fast(void)
{
	int32_t t = shmkit__tls_tid;

	return shmkit__likely(t) ? t : shmkit__tid();
}
/*
 * An asymmetric Dekker fence. Wakers run on every put and get, sleepers rarely, so the full
 * fence a waker needs between publishing and reading the sleepers' flag is moved to the
 * sleeper: each process registers for MEMBARRIER_CMD_GLOBAL_EXPEDITED, wakers use only a
 * compiler barrier (shmkit__light_fence), and a sleeper, after arming, calls membarrier, which
 * puts a full barrier on every CPU running a registered process. Without membarrier (old
 * kernel, seccomp), both are full fences.
 */
extern int shmkit__membarrier_ok;
void shmkit__heavy_fence(void);
static inline void shmkit__light_fence(void)
{
	if (shmkit__likely(shmkit__membarrier_ok))
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
}
/* Install the fork hook behind shmkit__fork_generation (idempotent). */
void shmkit__proc_init(void);
/* Bumped in every fork child: handles compare it to notice they changed process. */
unsigned shmkit__fork_generation(void);

/* lk.c: the lock behind Lock, Value, Array, Condition and the internal state locks: the one
 * in r->lk, held by seats of r (see lk.c). */
#define SHMKIT__LK_SEAT_MASK 0x00ffffffu
#define SHMKIT__LK_DIED 0x20000000u  /* free, and its last holder died holding it */
#define SHMKIT__LK_WAITERS 0x40000000u /* someone may sleep on the word */
void shmkit__lk_init(struct shmkit__lk *lk);
/* Acquire r's lock by the deadline (0: try; SHMKIT__FOREVER). 0, SHMKIT_OWNER_DIED, -EAGAIN
 * (a try, or a deadline already past), -ETIMEDOUT, -EDEADLK (this thread holds a
 * non-recursive lock, or sleeping would close a cycle of waiting processes, when `detect`),
 * -EUSERS/-ENOLCK (no seat), -EBADMSG (a lock word no shmkit wrote). */
int shmkit__lk_acquire(struct shmkit__region *r, int64_t deadline, bool detect);
/* 0, or -EPERM when the calling thread does not hold it (nothing changes then). */
int shmkit__lk_release(struct shmkit__region *r);
/* 1 if the calling thread holds r's lock. */
int shmkit__lk_held(struct shmkit__region *r);
/* Seat k's holder died (its lease is ours or frozen): free r's lock if k held it. */
void shmkit__lk_reclaim_seat(struct shmkit__region *r, uint32_t k);
/* Holder pid of a lock for display, 0 when free: from the word's seat, read-only safe. */
int32_t shmkit__lk_holder(const struct shmkit__region *r, const struct shmkit__lk *lk);

/* wfg.c: the wait-for graph that lets a lock acquire see a deadlock instead of sleeping. */
/* About to sleep on r's lock held by the thread `holder_tgid`: publish the wait and look for a
 * cycle back to us. -EDEADLK when there is one (nothing is left published), else 0. */
int shmkit__wfg_enter(struct shmkit__region *r, uint64_t holder_tgid);
/* No longer waiting (acquired, gave up). */
void shmkit__wfg_leave(void);
/* This thread's global id: random, 64-bit, new in every thread and fork child. */
uint64_t shmkit__tgid(void);
/* For display: what the thread with global id tgid waits for (a region name, "" when
 * anonymous), 1 if it waits, 0 if not or unknown. */
int shmkit__wfg_waits(uint64_t tgid, char *name, size_t size, int32_t *pid);

/* Per-kind parts of shmkit_info() (info.c), one in each object's file: fill the kind's fields
 * of *info from an open region (possibly mapped read-only), treating everything in it as
 * untrusted: -EBADMSG when sizes or parameters do not add up. */
int shmkit__value_info(const struct shmkit__region *r, struct shmkit_info *info); /* + array */
int shmkit__lock_info(const struct shmkit__region *r, struct shmkit_info *info);
/* The lock fields of *info (holder, owner deaths, waiters, what the holder waits for). */
void shmkit__lk_info(const struct shmkit__region *r, const struct shmkit__lk *lk,
		     struct shmkit_info *info);
int shmkit__sem_info(const struct shmkit__region *r, struct shmkit_info *info);
int shmkit__sem_orphan_remove(const char *name);

/* Per-kind fill of shmkit_info from a mapped region (read-only, untrusted contents). */
int shmkit__queue_info(const struct shmkit__region *r, struct shmkit_info *info);
int shmkit__pipe_info(const struct shmkit__region *r, struct shmkit_info *info);

/* event.c, cond.c, barrier.c: fill the kind-specific fields of *info (event: value; cond:
 * holder; barrier: len, value, flags) from a mapped region, possibly read-only, whose contents
 * are untrusted. 0, or -EBADMSG when the region is not a well-formed object of that kind. */
int shmkit__event_info(const struct shmkit__region *r, struct shmkit_info *info);
int shmkit__cond_info(const struct shmkit__region *r, struct shmkit_info *info);
int shmkit__barrier_info(const struct shmkit__region *r, struct shmkit_info *info);

struct shmkit_lock {
	struct shmkit__region r;    /* unused when borrowed */
	struct shmkit__region *reg; /* the region holding the lock: &r, or the owner's */
	bool borrowed;              /* embedded in another object, closed with it */
};

#endif /* SHMKIT_INTERNAL_H */
