/* Lock and RLock objects: a region holding one lock (mutex.c) and its seats. */
#include "config.h"

#include <stdlib.h>

#include "deadlock.h"
#include "kinds.h"
#include "lease.h"
#include "mutex.h"
#include "wait.h"

struct lock_region {
	struct shmkit__hdr hdr;
	struct shmkit__lk lk;
};

SHMKIT__API int shmkit_lock_create(const char *name, unsigned flags, unsigned mode,
				   shmkit_lock **out)
{
	struct shmkit_lock *l;
	int err;

	if (!out || (flags & ~SHMKIT_RECURSIVE))
		return -EINVAL;
	if (!(l = shmkit__handle_new(sizeof(*l))))
		return -ENOMEM;
	err = shmkit__region_create(name, SHMKIT_KIND_LOCK, flags, sizeof(struct lock_region),
				    SHMKIT__SEATS_DEFAULT, mode, &l->r);
	if (err)
		goto fail;
	shmkit__region_set_lock(&l->r, &((struct lock_region *)l->r.hdr)->lk);
	l->reg = &l->r;
	shmkit__region_ready(&l->r);
	*out = l;
	return 0;
fail:
	free(l);
	return err;
}

/* A Lock region holds one lock, as the header says, and no flags but RLock's. */
static int check_region(const struct shmkit__region *r)
{
	return shmkit__obj_size_is(r, sizeof(struct lock_region)) &&
			       r->lk == &((struct lock_region *)r->hdr)->lk &&
			       !(r->hdr->flags & ~SHMKIT_RECURSIVE)
		       ? 0
		       : -EBADMSG;
}

SHMKIT__API int shmkit_lock_open(const char *name, shmkit_lock **out)
{
	int err = shmkit__handle_open(name, SHMKIT_KIND_LOCK, sizeof(**out), check_region, out);

	if (!err)
		(*out)->reg = &(*out)->r;
	return err;
}

SHMKIT__API int shmkit_lock_close(shmkit_lock *l)
{
	if (!l)
		return 0;
	if (l->borrowed)
		return -EINVAL;
	shmkit__region_close(&l->r);
	free(l);
	return 0;
}

SHMKIT__API int shmkit_lock_unlink(const char *name)
{
	return shmkit__region_unlink(name);
}

SHMKIT__API int shmkit_lock_acquire(shmkit_lock *l)
{
	return shmkit__lk_acquire(l->reg, SHMKIT__FOREVER, true);
}

SHMKIT__API int shmkit_lock_acquire_try(shmkit_lock *l)
{
	return shmkit__lk_acquire(l->reg, 0, false);
}

SHMKIT__API int shmkit_lock_acquire_timeout(shmkit_lock *l, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(shmkit__lk_acquire(l->reg, deadline, true));
}

SHMKIT__API int shmkit_lock_release(shmkit_lock *l)
{
	return shmkit__lk_release(l->reg);
}

/* The holder's pid, negated when its seat's lease is gone (it died holding the lock, which the
 * next acquire recovers): liveness as the library judges it, read-only. */
static pid_t live_holder(const struct shmkit__region *r, const struct shmkit__lk *lk)
{
	uint32_t w = atomic_load_explicit(&((struct shmkit__lk *)lk)->word, memory_order_relaxed);
	uint32_t seat = w & SHMKIT__LK_SEAT_MASK;
	pid_t pid = shmkit__lk_holder(r, lk);

	return pid && seat && !shmkit__seat_alive(r, seat - 1) ? -pid : pid;
}

SHMKIT__API pid_t shmkit_lock_holder(shmkit_lock *l)
{
	pid_t pid = live_holder(l->reg, l->reg->lk);

	return pid < 0 ? 0 : pid; /* a dead holder holds nothing: the next acquire takes it */
}

/* What the lock's holder is itself waiting for, from the wait-for graph: how `shmkit stat`
 * names a deadlock. */
void shmkit__lk_info(const struct shmkit__region *r, const struct shmkit__lk *lk,
		     struct shmkit_info *info)
{
	uint32_t k;

	info->holder = live_holder(r, lk);
	info->owner_deaths = atomic_load_explicit(&((struct shmkit__lk *)lk)->owner_deaths,
						  memory_order_relaxed);
	for (k = 0; k < r->nseats; k++)
		if (atomic_load_explicit(&r->seats[k].state, memory_order_relaxed) ==
			    SHMKIT__SEAT_TAKEN &&
		    atomic_load_explicit(&r->seats[k].waiting, memory_order_relaxed) &&
		    shmkit__seat_alive(r, k))
			info->lock_waiters++;
	if (info->holder > 0)
		shmkit__wfg_waits(atomic_load_explicit(&((struct shmkit__lk *)lk)->holder_tgid,
						       memory_order_relaxed),
				  info->holder_waits_for, sizeof(info->holder_waits_for), NULL);
}

int shmkit__lock_info(const struct shmkit__region *r, struct shmkit_info *info)
{
	const struct lock_region *lr = (const struct lock_region *)r->hdr;

	if (check_region(r))
		return -EBADMSG;
	info->flags = r->hdr->flags & SHMKIT_RECURSIVE;
	shmkit__lk_info(r, &lr->lk, info);
	return 0;
}
