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

#define shmkit__likely(x) __builtin_expect(!!(x), 1)
#define shmkit__unlikely(x) __builtin_expect(!!(x), 0)

/* A mapped region, process-local. */
struct shmkit__region {
	struct shmkit__hdr *hdr; /* == base */
	size_t size;             /* mapped bytes, from fstat at open or the size at create */
	char name[SHMKIT_NAME_MAX + 2];
	bool named;
};

/* region.c */
/* Create a region of `size` bytes for `kind`, header written with state INIT. The caller fills
 * the object, then calls shmkit__region_ready(), or shmkit__region_abort() on failure. */
int shmkit__region_create(const char *name, uint32_t kind, uint32_t flags, size_t size,
			  unsigned mode, struct shmkit__region *r);
void shmkit__region_ready(struct shmkit__region *r);
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
/* 1 if pid is alive and started at `start`, 0 if it is gone (exited, zombie, or reused). */
int shmkit__alive(int32_t pid, uint64_t start);
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

/* lk.c: the robust mutex behind Lock, Value, Array, Condition and the queue's admin lock. */
int shmkit__lk_init(struct shmkit__lk *lk, bool recursive);
/* 0, SHMKIT_OWNER_DIED, -ETIMEDOUT, -EAGAIN (deadline already past), -EDEADLK, ... */
int shmkit__lk_acquire(struct shmkit__lk *lk, int64_t deadline);
int shmkit__lk_release(struct shmkit__lk *lk);
/* 1 if the calling thread holds lk. */
int shmkit__lk_held(struct shmkit__lk *lk);

/* Per-kind parts of shmkit_info() (info.c), one in each object's file: fill the kind's fields
 * of *info from an open region (possibly mapped read-only), treating everything in it as
 * untrusted: -EBADMSG when sizes or parameters do not add up. */
int shmkit__value_info(const struct shmkit__region *r, struct shmkit_info *info); /* + array */
int shmkit__lock_info(const struct shmkit__region *r, struct shmkit_info *info);
int shmkit__sem_info(const struct shmkit__region *r, struct shmkit_info *info);

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
	struct shmkit__region r; /* unused when borrowed */
	struct shmkit__lk *lk;
	bool borrowed;           /* embedded in another object, closed with it */
};

#endif /* SHMKIT_INTERNAL_H */
