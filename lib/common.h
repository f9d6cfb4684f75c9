/*
 * What every lib/ file needs: the export marker, branch hints, the time constants every waiting
 * part shares, and a CPU pause for spin loops. Private to the library. The private headers,
 * one per layer, from the bottom:
 *   common.h   this                     layout.h  what lives in shared memory
 *   proc.h     this process and thread  wait.h    clocks, futexes, fences, deadlines
 *   region.h   a mapped region          lease.h   seats: who is alive, from the kernel
 *   mutex.h    the lock in a region     deadlock.h  the wait-for graph behind -EDEADLK
 *   notify.h   pollable descriptors     ec.h      the eventcount the ring's waiters use
 *   ring.h     the message ring         kinds.h   per-kind hooks for info and remove
 */
#ifndef SHMKIT_COMMON_H
#define SHMKIT_COMMON_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/*
 * Sequentially consistent, on purpose: for bookkeeping off the hot paths (registration,
 * reaping, stats, pipe ends, under an admin lock or read as snapshots), where no weaker
 * ordering is worth its argument and a reader should not have to make one. The hot paths
 * (ring.c, mutex.c, the Event word) spell out their orderings with atomic_*_explicit.
 */
#define shmkit__sc_load(p) atomic_load_explicit((p), memory_order_seq_cst)
#define shmkit__sc_store(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define shmkit__sc_fetch_add(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define shmkit__sc_fetch_or(p, v) atomic_fetch_or_explicit((p), (v), memory_order_seq_cst)
#define shmkit__sc_fetch_and(p, v) atomic_fetch_and_explicit((p), (v), memory_order_seq_cst)
#define shmkit__sc_exchange(p, v) atomic_exchange_explicit((p), (v), memory_order_seq_cst)
#define shmkit__sc_cas(p, e, d)                                                              \
	atomic_compare_exchange_strong_explicit((p), (e), (d), memory_order_seq_cst,          \
						memory_order_seq_cst)

#define shmkit__likely(x) __builtin_expect(!!(x), 1)
#define shmkit__unlikely(x) __builtin_expect(!!(x), 0)

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

#endif /* SHMKIT_COMMON_H */
