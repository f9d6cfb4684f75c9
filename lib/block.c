/*
 * Block: a shared block of bytes with its own robust Lock, the kind behind Python's
 * multiprocessing.shared_memory.SharedMemory, RawArray and ctypes-typed Value/Array.
 *
 * The library never interprets the bytes: callers lay out what they like (ctypes objects,
 * numpy arrays, a pickle spilled from a queue). The Lock is recursive, as the RLock a
 * multiprocessing Value or Array gets by default.
 */
#include "config.h"

#include <stdlib.h>

#include "kinds.h"
#include "lease.h"
#include "mutex.h"
#include "region.h"

/* 1 TiB: far beyond any machine's /dev/shm, small enough that no size arithmetic overflows. */
#define BLOCK_MAX (1ULL << 40)

struct block_region {
	struct shmkit__hdr hdr; /* param[0]: data bytes */
	struct shmkit__lk lk;
	/* Cache-line aligned: a block holding doubles or SIMD data needs no realignment. */
	_Alignas(SHMKIT__CACHELINE) unsigned char data[];
};

struct shmkit_block {
	struct shmkit__region r;
	struct shmkit_lock lock; /* borrowed: points into the region */
	size_t size;             /* process-local copy, validated against fstat at open */
};

static size_t region_size(uint64_t size)
{
	return sizeof(struct block_region) + (size_t)size;
}

static void bind(struct shmkit_block *b, uint64_t size)
{
	b->size = (size_t)size;
	b->lock.reg = &b->r;
	b->lock.borrowed = true;
}

SHMKIT__API int shmkit_block_create(const char *name, size_t size, unsigned mode,
				    shmkit_block **out)
{
	struct shmkit_block *b;
	int err;

	if (!out || (uint64_t)size > BLOCK_MAX)
		return -EINVAL;
	if (!(b = shmkit__handle_new(sizeof(*b))))
		return -ENOMEM;
	err = shmkit__region_create(name, SHMKIT_KIND_BLOCK, SHMKIT_RECURSIVE, region_size(size),
				    SHMKIT__SEATS_DEFAULT, mode, &b->r);
	if (err)
		goto fail;
	b->r.hdr->param[0] = size;
	bind(b, size);
	/* The data is zero already: a new shm object and a new memfd both read 0. */
	shmkit__region_set_lock(&b->r, &((struct block_region *)b->r.hdr)->lk);
	shmkit__region_ready(&b->r);
	*out = b;
	return 0;
fail:
	free(b);
	return err;
}

/* The region's parameters add up: what both open and info check. */
static int check_region(const struct shmkit__region *r)
{
	uint64_t size;

	if (r->obj_size < sizeof(struct block_region))
		return -EBADMSG;
	size = r->hdr->param[0];
	if (size > BLOCK_MAX || !shmkit__obj_size_is(r, region_size(size)) ||
	    r->hdr->flags != SHMKIT_RECURSIVE || r->lk != &((struct block_region *)r->hdr)->lk)
		return -EBADMSG;
	return 0;
}

SHMKIT__API int shmkit_block_open(const char *name, shmkit_block **out)
{
	struct shmkit_block *b;
	int err;

	if (!out)
		return -EINVAL;
	if (!(b = shmkit__handle_new(sizeof(*b))))
		return -ENOMEM;
	if ((err = shmkit__region_open(name, SHMKIT_KIND_BLOCK, &b->r))) {
		free(b);
		return err;
	}
	if ((err = check_region(&b->r))) {
		shmkit__region_close(&b->r);
		free(b);
		return err;
	}
	bind(b, b->r.hdr->param[0]);
	*out = b;
	return 0;
}

SHMKIT__API int shmkit_block_close(shmkit_block *b)
{
	if (!b)
		return 0;
	shmkit__region_close(&b->r);
	free(b);
	return 0;
}

SHMKIT__API int shmkit_block_unlink(const char *name)
{
	return shmkit__region_unlink(name);
}

SHMKIT__API void *shmkit_block_data(shmkit_block *b)
{
	return ((struct block_region *)b->r.hdr)->data;
}

SHMKIT__API size_t shmkit_block_size(shmkit_block *b)
{
	return b->size;
}

SHMKIT__API shmkit_lock *shmkit_block_lock(shmkit_block *b)
{
	return &b->lock;
}

int shmkit__block_info(const struct shmkit__region *r, struct shmkit_info *info)
{
	const struct block_region *br = (const struct block_region *)r->hdr;
	int err = check_region(r);

	if (err)
		return err;
	info->len = r->hdr->param[0];
	shmkit__lk_info(r, &br->lk, info);
	return 0;
}
