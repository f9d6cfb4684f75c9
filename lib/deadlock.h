/*
 * deadlock.c: the wait-for graph that lets a lock acquire see a deadlock instead of sleeping.
 */
#ifndef SHMKIT_DEADLOCK_H
#define SHMKIT_DEADLOCK_H

#include "region.h"

/* About to sleep on r's lock held by the thread `holder_tgid`: publish the wait and look for a
 * cycle back to us. -EDEADLK when there is one (nothing is left published), else 0. */
int shmkit__wfg_enter(struct shmkit__region *r, uint64_t holder_tgid);
/* No longer waiting (acquired, gave up). */
void shmkit__wfg_leave(void);
/* 0 while detection works in this process, else why it is off (-ENOSPC: /dev/shm full;
 * -EEXIST: no graph of ours could be found or made; ...). */
int shmkit__wfg_status(void);
/* For display: what the thread with global id tgid waits for (a region name, "" when
 * anonymous), 1 if it waits, 0 if not or unknown. */
int shmkit__wfg_waits(uint64_t tgid, char *name, size_t size, int32_t *pid);

#endif /* SHMKIT_DEADLOCK_H */
