/* Lock and RLock objects: a region holding one robust mutex. */
#include "config.h"

#include <stdlib.h>

#include "internal.h"

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
				    mode, &l->r);
	if (err)
		goto fail;
	l->lk = &((struct lock_region *)l->r.hdr)->lk;
	if ((err = shmkit__lk_init(l->lk, flags & SHMKIT_RECURSIVE))) {
		shmkit__region_abort(&l->r);
		goto fail;
	}
	shmkit__region_ready(&l->r);
	*out = l;
	return 0;
fail:
	free(l);
	return err;
}

SHMKIT__API int shmkit_lock_open(const char *name, shmkit_lock **out)
{
	struct shmkit_lock *l;
	int err;

	if (!out)
		return -EINVAL;
	if (!(l = shmkit__handle_new(sizeof(*l))))
		return -ENOMEM;
	err = shmkit__region_open(name, SHMKIT_KIND_LOCK, &l->r);
	if (!err && l->r.size != sizeof(struct lock_region)) {
		shmkit__region_close(&l->r);
		err = -EBADMSG;
	}
	if (err) {
		free(l);
		return err;
	}
	l->lk = &((struct lock_region *)l->r.hdr)->lk;
	*out = l;
	return 0;
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
	return shmkit__lk_acquire(l->lk, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_lock_acquire_try(shmkit_lock *l)
{
	return shmkit__lk_acquire(l->lk, 0);
}

SHMKIT__API int shmkit_lock_acquire_timeout(shmkit_lock *l, int64_t timeout_ns)
{
	int rc;

	if (timeout_ns < 0)
		return -EINVAL;
	rc = shmkit__lk_acquire(l->lk, shmkit__deadline(timeout_ns));
	/* -EAGAIN is the deadline passing before the first attempt failed: still a timeout. */
	return rc == -EAGAIN ? -ETIMEDOUT : rc;
}

SHMKIT__API int shmkit_lock_release(shmkit_lock *l)
{
	return shmkit__lk_release(l->lk);
}

SHMKIT__API pid_t shmkit_lock_holder(shmkit_lock *l)
{
	return atomic_load_explicit(&l->lk->holder, memory_order_relaxed);
}

int shmkit__lock_info(const struct shmkit__region *r, struct shmkit_info *info)
{
	const struct lock_region *lr = (const struct lock_region *)r->hdr;

	if (r->size != sizeof(struct lock_region))
		return -EBADMSG;
	info->flags = r->hdr->flags & SHMKIT_RECURSIVE;
	info->holder = atomic_load_explicit(&lr->lk.holder, memory_order_relaxed);
	info->owner_deaths = atomic_load_explicit(&lr->lk.owner_deaths, memory_order_relaxed);
	return 0;
}
