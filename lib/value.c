/*
 * Value and Array: int64_t cells plus one Lock, the way multiprocessing.Value/Array are.
 * A Value is an Array of one cell with its own kind, so the two share every operation.
 */
#include "config.h"

#include <stdlib.h>

#include "kinds.h"
#include "lease.h"
#include "mutex.h"
#include "region.h"
#include "wait.h"

#define ARRAY_MAX SHMKIT_ARRAY_LEN_MAX

struct cells_region {
	struct shmkit__hdr hdr;
	struct shmkit__lk lk;
	_Alignas(SHMKIT__CACHELINE) _Atomic int64_t cell[];
};

struct shmkit_array {
	struct shmkit__region r;
	struct shmkit_lock lock; /* borrowed: points into the region */
	_Atomic int64_t *cell;
	size_t len; /* process-local copy, validated against the region size at open */
};

/* The public Value type is the same handle. */
struct shmkit_value {
	struct shmkit_array a;
};

static size_t region_size(size_t len)
{
	return sizeof(struct cells_region) + len * sizeof(int64_t);
}

static void bind(struct shmkit_array *a, size_t len)
{
	struct cells_region *cr = (struct cells_region *)a->r.hdr;

	a->len = len;
	a->cell = cr->cell;
	a->lock.reg = &a->r;
	a->lock.borrowed = true;
}

static int cells_create(const char *name, uint32_t kind, size_t len, int64_t initial,
			unsigned mode, struct shmkit_array **out)
{
	struct shmkit_array *a;
	int err;

	if (!out || len == 0 || len > ARRAY_MAX)
		return -EINVAL;
	if (!(a = shmkit__handle_new(sizeof(struct shmkit_value))))
		return -ENOMEM;
	err = shmkit__region_create(name, kind, 0, region_size(len), SHMKIT__SEATS_DEFAULT, mode,
				    &a->r);
	if (err)
		goto fail;
	a->r.hdr->param[0] = len;
	bind(a, len);
	atomic_store_explicit(&a->cell[0], initial, memory_order_relaxed);
	shmkit__region_set_lock(&a->r, &((struct cells_region *)a->r.hdr)->lk);
	shmkit__region_ready(&a->r);
	*out = a;
	return 0;
fail:
	free(a);
	return err;
}

static int cells_open(const char *name, uint32_t kind, struct shmkit_array **out)
{
	struct shmkit_array *a;
	uint64_t len;
	int err;

	if (!out)
		return -EINVAL;
	if (!(a = shmkit__handle_new(sizeof(struct shmkit_value))))
		return -ENOMEM;
	if ((err = shmkit__region_open(name, kind, &a->r))) {
		free(a);
		return err;
	}
	len = a->r.hdr->param[0];
	if (len == 0 || len > ARRAY_MAX || (kind == SHMKIT_KIND_VALUE && len != 1) ||
	    !shmkit__obj_size_is(&a->r, region_size(len)) || a->r.hdr->flags ||
	    a->r.lk != &((struct cells_region *)a->r.hdr)->lk) {
		shmkit__region_close(&a->r);
		free(a);
		return -EBADMSG;
	}
	bind(a, len);
	*out = a;
	return 0;
}

static int cells_close(struct shmkit_array *a)
{
	if (!a)
		return 0;
	shmkit__region_close(&a->r);
	free(a);
	return 0;
}

/* a + b wrapping around, as the atomic add does: a cell may hold anything, even INT64_MAX
 * written by a peer, and signed overflow would be undefined. */
static inline int64_t wrap_add(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int cell_add(struct shmkit_array *a, size_t i, int64_t delta, enum shmkit_add_mode how,
		    int64_t *result)
{
	_Atomic int64_t *c = &a->cell[i];
	int64_t v;
	int rc = 0;

	switch (how) {
	case SHMKIT_ADD_RACY:
		/* Deliberately two steps: another process may store between them. */
		v = wrap_add(atomic_load_explicit(c, memory_order_relaxed), delta);
		atomic_store_explicit(c, v, memory_order_relaxed);
		break;
	case SHMKIT_ADD_ATOMIC:
		v = wrap_add(atomic_fetch_add_explicit(c, delta, memory_order_seq_cst), delta);
		break;
	case SHMKIT_ADD_LOCKED:
		rc = shmkit__lk_acquire(&a->r, SHMKIT__FOREVER, true);
		if (rc < 0)
			return rc;
		v = wrap_add(atomic_load_explicit(c, memory_order_relaxed), delta);
		atomic_store_explicit(c, v, memory_order_relaxed);
		shmkit__lk_release(&a->r);
		break;
	default:
		return -EINVAL;
	}
	if (result)
		*result = v;
	return rc;
}

static int cell_cas(struct shmkit_array *a, size_t i, int64_t *expected, int64_t desired)
{
	if (!expected)
		return -EINVAL;
	/* seq_cst like Python's: a shared Value is a lesson in visibility, not in orderings. */
	return atomic_compare_exchange_strong_explicit(&a->cell[i], expected, desired,
						       memory_order_seq_cst, memory_order_seq_cst)
		       ? 0
		       : -EAGAIN;
}

/* Array */

SHMKIT__API int shmkit_array_create(const char *name, size_t len, unsigned mode,
				    shmkit_array **out)
{
	return cells_create(name, SHMKIT_KIND_ARRAY, len, 0, mode, out);
}

SHMKIT__API int shmkit_array_open(const char *name, shmkit_array **out)
{
	return cells_open(name, SHMKIT_KIND_ARRAY, out);
}

SHMKIT__API int shmkit_array_close(shmkit_array *a)
{
	return cells_close(a);
}

SHMKIT__API int shmkit_array_unlink(const char *name)
{
	return shmkit__region_unlink(name);
}

SHMKIT__API size_t shmkit_array_len(shmkit_array *a)
{
	return a->len;
}

SHMKIT__API int shmkit_array_load(shmkit_array *a, size_t i, int64_t *out)
{
	if (i >= a->len || !out)
		return i >= a->len ? -ERANGE : -EINVAL;
	*out = atomic_load_explicit(&a->cell[i], memory_order_seq_cst);
	return 0;
}

SHMKIT__API int shmkit_array_store(shmkit_array *a, size_t i, int64_t x)
{
	if (i >= a->len)
		return -ERANGE;
	atomic_store_explicit(&a->cell[i], x, memory_order_seq_cst);
	return 0;
}

SHMKIT__API int shmkit_array_cas(shmkit_array *a, size_t i, int64_t *expected, int64_t desired)
{
	if (i >= a->len)
		return -ERANGE;
	return cell_cas(a, i, expected, desired);
}

SHMKIT__API int shmkit_array_add(shmkit_array *a, size_t i, int64_t delta,
				 enum shmkit_add_mode how, int64_t *result)
{
	if (i >= a->len)
		return -ERANGE;
	return cell_add(a, i, delta, how, result);
}

SHMKIT__API shmkit_lock *shmkit_array_lock(shmkit_array *a)
{
	return &a->lock;
}

/* Value */

SHMKIT__API int shmkit_value_create(const char *name, int64_t initial, unsigned mode,
				    shmkit_value **out)
{
	if (!out)
		return -EINVAL;
	return cells_create(name, SHMKIT_KIND_VALUE, 1, initial, mode, (struct shmkit_array **)out);
}

SHMKIT__API int shmkit_value_open(const char *name, shmkit_value **out)
{
	if (!out)
		return -EINVAL;
	return cells_open(name, SHMKIT_KIND_VALUE, (struct shmkit_array **)out);
}

SHMKIT__API int shmkit_value_close(shmkit_value *v)
{
	return v ? cells_close(&v->a) : 0;
}

SHMKIT__API int shmkit_value_unlink(const char *name)
{
	return shmkit__region_unlink(name);
}

SHMKIT__API int64_t shmkit_value_load(shmkit_value *v)
{
	return atomic_load_explicit(&v->a.cell[0], memory_order_seq_cst);
}

SHMKIT__API int shmkit_value_store(shmkit_value *v, int64_t x)
{
	atomic_store_explicit(&v->a.cell[0], x, memory_order_seq_cst);
	return 0;
}

SHMKIT__API int shmkit_value_cas(shmkit_value *v, int64_t *expected, int64_t desired)
{
	return cell_cas(&v->a, 0, expected, desired);
}

SHMKIT__API int shmkit_value_add(shmkit_value *v, int64_t delta, enum shmkit_add_mode how,
				 int64_t *result)
{
	return cell_add(&v->a, 0, delta, how, result);
}

SHMKIT__API shmkit_lock *shmkit_value_lock(shmkit_value *v)
{
	return &v->a.lock;
}

/* Inspection (shmkit_info) */

int shmkit__value_info(const struct shmkit__region *r, struct shmkit_info *info)
{
	const struct cells_region *cr = (const struct cells_region *)r->hdr;
	uint64_t len;

	if (r->obj_size < region_size(1) || !shmkit__obj_size_is(r, r->obj_size))
		return -EBADMSG;
	len = r->hdr->param[0];
	if (len == 0 || len > ARRAY_MAX || (r->hdr->kind == SHMKIT_KIND_VALUE && len != 1) ||
	    !shmkit__obj_size_is(r, region_size(len)) || r->lk != &cr->lk)
		return -EBADMSG;
	if (r->hdr->kind == SHMKIT_KIND_ARRAY)
		info->len = len;
	if (r->hdr->kind == SHMKIT_KIND_VALUE)
		info->value = atomic_load_explicit(&cr->cell[0], memory_order_relaxed);
	shmkit__lk_info(r, &cr->lk, info);
	return 0;
}
