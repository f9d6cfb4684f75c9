/*
 * mutex.c: the lock behind Lock, RLock, Value, Array, Condition and the internal state locks:
 * the one in r->lk, held by seats of r. A robust process-shared mutex of shmkit's own (see
 * mutex.c for why not glibc's).
 */
#ifndef SHMKIT_MUTEX_H
#define SHMKIT_MUTEX_H

#include "region.h"

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

/* The lock fields of *info (holder, owner deaths, waiters, what the holder waits for). */
void shmkit__lk_info(const struct shmkit__region *r, const struct shmkit__lk *lk,
		     struct shmkit_info *info);

struct shmkit_lock {
	struct shmkit__region r;    /* unused when borrowed */
	struct shmkit__region *reg; /* the region holding the lock: &r, or the owner's */
	bool borrowed;              /* embedded in another object, closed with it */
};

#endif /* SHMKIT_MUTEX_H */
