/*
 * proc.c: this process and this thread: pid and start time (for display), the pid namespace,
 * thread ids, the thread's global id, and the fork generation that lets handles notice they
 * changed process. Liveness of others is lease.h's business, never a pid's.
 */
#ifndef SHMKIT_PROC_H
#define SHMKIT_PROC_H

#include "common.h"

/* This process's pid and start time (cached; refreshed in a fork child). */
void shmkit__self(int32_t *pid, uint64_t *start);
/* This process's pid namespace (the inode of /proc/self/ns/pid), 0 when unknown. */
uint64_t shmkit__pidns(void);
/* Inline fast path of the pid for the lock's hot path (cache cleared in a fork child). */
extern _Atomic int32_t shmkit__self_pid;
int32_t shmkit__pid_slow(void);
static inline int32_t shmkit__pid(void)
{
	int32_t p = atomic_load_explicit(&shmkit__self_pid, memory_order_relaxed);

	return shmkit__likely(p) ? p : shmkit__pid_slow();
}
/* This thread's global id: random, 64-bit, new in every thread and fork child. */
uint64_t shmkit__tgid(void);
/* Install the fork hook behind shmkit__fork_generation (idempotent). */
void shmkit__proc_init(void);
/* Bumped in every fork child: handles compare it to notice they changed process. */
unsigned shmkit__fork_generation(void);

#endif /* SHMKIT_PROC_H */
