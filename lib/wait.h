/*
 * wait.c: the one module that waits. CLOCK_MONOTONIC time and deadlines, the _timeout forms'
 * deadline and result mapping, futex wait and wake, and the asymmetric fence between wakers and
 * sleepers. Every sleeper in lib/ sleeps through shmkit__futex_wait, in slices of at most
 * SHMKIT__SLICE_NS so that it can look for dead peers.
 */
#ifndef SHMKIT_WAIT_H
#define SHMKIT_WAIT_H

#include "common.h"

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
/*
 * An asymmetric Dekker fence. Wakers run on every put and get, sleepers rarely, so the full
 * fence a waker needs between publishing and reading the sleepers' flag is moved to the
 * sleeper: each process registers for MEMBARRIER_CMD_GLOBAL_EXPEDITED, wakers use only a
 * compiler barrier (shmkit__light_fence), and a sleeper, after arming, calls membarrier, which
 * puts a full barrier on every CPU running a registered process. Without membarrier (old
 * kernel, seccomp), both are full fences.
 */
extern int shmkit__membarrier_ok;
/* Register this process (again in a fork child: a new mm) for the expedited membarrier. */
void shmkit__fence_register(void);
/* The sleeper's side: a full barrier on every CPU running a registered process. Pairs with
 * shmkit__light_fence in every waker. */
void shmkit__heavy_fence(void);
static inline void shmkit__light_fence(void)
{
	if (shmkit__likely(shmkit__membarrier_ok))
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
}

#endif /* SHMKIT_WAIT_H */
