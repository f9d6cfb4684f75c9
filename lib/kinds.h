/*
 * What info.c and remove.c ask of each kind, one function in each object's file.
 */
#ifndef SHMKIT_KINDS_H
#define SHMKIT_KINDS_H

#include "region.h"

/* Per-kind parts of shmkit_info() (info.c), one in each object's file: fill the kind's fields
 * of *info from an open region (possibly mapped read-only), treating everything in it as
 * untrusted: -EBADMSG when sizes or parameters do not add up. */
int shmkit__value_info(const struct shmkit__region *r, struct shmkit_info *info); /* + array */
int shmkit__lock_info(const struct shmkit__region *r, struct shmkit_info *info);
int shmkit__sem_info(const struct shmkit__region *r, struct shmkit_info *info);
int shmkit__sem_orphan_remove(const char *name, bool dry); /* dry: 0 if there is one */

/* Per-kind fill of shmkit_info from a mapped region (read-only, untrusted contents). */
int shmkit__queue_info(const struct shmkit__region *r, struct shmkit_info *info);
int shmkit__pipe_info(const struct shmkit__region *r, struct shmkit_info *info);

/* event.c, cond.c, barrier.c: fill the kind-specific fields of *info (event: value; cond:
 * holder; barrier: len, value, flags) from a mapped region, possibly read-only, whose contents
 * are untrusted. 0, or -EBADMSG when the region is not a well-formed object of that kind. */
int shmkit__event_info(const struct shmkit__region *r, struct shmkit_info *info);
int shmkit__cond_info(const struct shmkit__region *r, struct shmkit_info *info);
int shmkit__barrier_info(const struct shmkit__region *r, struct shmkit_info *info);
/* block.c: info->len (data bytes) and the lock's fields. */
int shmkit__block_info(const struct shmkit__region *r, struct shmkit_info *info);

/* barrier.c, for the Python binding (which compiles the library in): shmkit_barrier_wait_timeout
 * (timeout_ns < 0: for ever) asking intr(arg) after each signal and slice whether to stop;
 * stopping breaks the barrier and returns -EINTR. */
typedef struct shmkit_barrier shmkit_barrier;
int shmkit__barrier_wait_intr(shmkit_barrier *b, int64_t timeout_ns, int (*intr)(void *),
			      void *arg);

#endif /* SHMKIT_KINDS_H */
