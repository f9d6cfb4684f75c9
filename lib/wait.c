/*
 * The one place shmkit makes futex system calls (FUTEX_WAIT, FUTEX_WAKE): futex words in shared
 * memory with CLOCK_MONOTONIC deadlines, and the fence that pairs wakers with sleepers. Every
 * sleep on a shared word goes through here; the other pauses are not sleeps on shared state:
 * sched_yield in spin loops and short nanosleeps while something else finishes.
 * Other waits (checked by tests/orderings_check.sh): hold.c region.c remove.c ring.c
 *
 * FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so a signal (EINTR) or a spurious
 * wake-up followed by another wait keeps the original deadline instead of restarting the
 * timeout, and setting the wall clock changes nothing. No FUTEX_PRIVATE_FLAG: the words are
 * shared between processes.
 */
#include "config.h"

#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "wait.h"

int64_t shmkit__now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t shmkit__deadline(int64_t timeout_ns)
{
	int64_t now;

	if (timeout_ns < 0)
		return SHMKIT__FOREVER;
	now = shmkit__now();
	return timeout_ns > SHMKIT__FOREVER - now ? SHMKIT__FOREVER : now + timeout_ns;
}

int shmkit__futex_wait(_Atomic uint32_t *word, uint32_t expect, int64_t deadline)
{
	struct timespec ts, *tsp = NULL;
	long r;

	if (deadline != SHMKIT__FOREVER) {
		if (shmkit__now() >= deadline)
			return -ETIMEDOUT;
		shmkit__deadline_ts(deadline, &ts);
		tsp = &ts;
	}
	r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expect, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (r == 0 || errno == EAGAIN || errno == EINTR)
		return 0;
	if (errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return -errno;
}

void shmkit__futex_wake(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

int shmkit__membarrier_ok;

/* Let sleepers' shmkit__heavy_fence() reach this process (see wait.h). */
void shmkit__fence_register(void)
{
	shmkit__membarrier_ok =
		syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
}

void shmkit__heavy_fence(void)
{
	if (!shmkit__membarrier_ok ||
	    syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) != 0)
		atomic_thread_fence(memory_order_seq_cst);
}
