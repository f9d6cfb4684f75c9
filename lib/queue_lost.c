/*
 * shmkit_queue_count_lost: a relay's confession. A process that takes messages from a queue and
 * forwards them elsewhere (shmkit bridge) may die holding some it already got: the queue
 * handed them over, so only the relay's successor, learning from the far side what never
 * arrived, can say how many. It records them here, in the same figure the queue keeps for
 * consumers that died holding a message, so the loss shows in stats instead of vanishing.
 */
#include "config.h"

#include "ring.h"

struct shmkit__ring_sh *shmkit__queue_ring_sh(shmkit_queue *h); /* queue.c */

SHMKIT__API int shmkit_queue_count_lost(shmkit_queue *q, uint64_t n)
{
	/* Relaxed: a statistic, read as a snapshot like the reaper's own increments. */
	atomic_fetch_add_explicit(&shmkit__queue_ring_sh(q)->lost_dead_consumer, n,
				  memory_order_relaxed);
	return 0;
}
