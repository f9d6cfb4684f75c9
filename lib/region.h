/*
 * region.c: a mapped region (create, open and validate, close, unlink) and the process-local
 * handle part every object embeds.
 */
#ifndef SHMKIT_REGION_H
#define SHMKIT_REGION_H

#include <pthread.h>

#include "common.h"

/* A mapped region, process-local. */
struct shmkit__region {
	struct shmkit__hdr *hdr; /* == base */
	size_t size;             /* mapped bytes, from fstat at open or the size at create */
	size_t obj_size;         /* bytes before the seat table: what the kind's checks compare */
	char name[SHMKIT_NAME_MAX + 2];
	bool named;
	bool rdonly;
	int fd;                  /* this handle's own open file description of the lease file (a
				    named region's) or of the region's file (an anonymous one's):
				    it holds our leases; -1 when we may not open it (a reader) */
	int cfd;                 /* the creator's descriptor of the region's file, holding the
				    creator's lease until the object is READY; -1 otherwise */
	char lease_name[40];     /* the lease file's name, "" for an anonymous region */
	/* What only the region's writers know (read from the lease file, or drawn at an
	 * anonymous create and inherited by fork): the unpredictable part of the notification
	 * sockets' paths (notify.c). has_secret false for a reader. */
	uint8_t secret[16];
	bool has_secret;
	uint64_t dev, ino;       /* the file's identity, for the deadlock detector */
	struct shmkit__seat *seats; /* the seat table, nseats validated at open */
	uint32_t nseats;
	/* This handle's seat: (fork generation << 32) | (seat + 1), 0 before the first need; one
	 * word so that threads sharing a handle read both at once. seat_mu orders the takers. */
	_Atomic uint64_t seat_word;
	pthread_mutex_t seat_mu;
	struct shmkit__lk *lk;   /* the region's lock, if it has one (one at most) */
	/* Threads of this process sleeping through this handle, and close's word to them: a
	 * close wakes them, they fail with -EBADF, and only then is the region unmapped. */
	_Atomic uint32_t sleepers;
	_Atomic uint32_t closing;
	bool lk_recursive;
	struct shmkit__region *next, *prev; /* every region this process has mapped (lease.c) */
};

/* Whether the object part of r (what precedes its seats) is what `size` bytes of object make:
 * the seats start at the next cache line. */
static inline bool shmkit__obj_size_is(const struct shmkit__region *r, size_t size)
{
	return r->obj_size == ((size + SHMKIT__CACHELINE - 1) & ~(size_t)(SHMKIT__CACHELINE - 1));
}

/* A thread about to sleep through r: false (nothing counted) when r is being closed. Seq_cst
 * both sides: the count is published before closing is read, and close sets closing before
 * it reads the count (shmkit__region_quiesce), so one of the two sees the other. */
static inline bool shmkit__sleep_begin(struct shmkit__region *r)
{
	atomic_fetch_add_explicit(&r->sleepers, 1, memory_order_seq_cst);
	if (shmkit__likely(!atomic_load_explicit(&r->closing, memory_order_seq_cst)))
		return true;
	atomic_fetch_sub_explicit(&r->sleepers, 1, memory_order_seq_cst);
	return false;
}
/* The last touch of r by a sleeper: close may unmap and free right after. */
static inline void shmkit__sleep_end(struct shmkit__region *r)
{
	atomic_fetch_sub_explicit(&r->sleepers, 1, memory_order_seq_cst);
}
static inline bool shmkit__closing(struct shmkit__region *r)
{
	return atomic_load_explicit(&r->closing, memory_order_seq_cst);
}
/* Close's part: mark r closing and wake its sleepers on `word` (again and again: one may be
 * between its last look and its sleep) until none is left. Idempotent. */
void shmkit__region_quiesce(struct shmkit__region *r, _Atomic uint32_t *word);

/* Create a region of `size` bytes for `kind`, header written with state INIT. The caller fills
 * the object, then calls shmkit__region_ready(), or shmkit__region_abort() on failure. */
int shmkit__region_create(const char *name, uint32_t kind, uint32_t flags, size_t size,
			  uint32_t nseats, unsigned mode, struct shmkit__region *r);
void shmkit__region_ready(struct shmkit__region *r);
/* Creator: the region's one lock is `lk` (recursive when the region's flags say
 * SHMKIT_RECURSIVE); initialises it and records where it is for every opener. */
void shmkit__region_set_lock(struct shmkit__region *r, struct shmkit__lk *lk);
void shmkit__region_abort(struct shmkit__region *r);
/* Open and validate the header; kind 0 accepts any kind. The caller validates params. */
int shmkit__region_open(const char *name, uint32_t kind, struct shmkit__region *r);
/* The same, or with `inspect` mapped read-only and without waiting for a creator still at
 * work (for looking at objects one may not write, or many of them, as `shmkit ls` does). */
int shmkit__region_open_mode(const char *name, uint32_t kind, bool inspect,
			     struct shmkit__region *r);
void shmkit__region_close(struct shmkit__region *r);
int shmkit__region_unlink(const char *name);
/* Open `name` as `kind` into a new zeroed handle of `size` bytes whose first member is its
 * struct shmkit__region, and let `check` validate the kind's parameters (0, or -EBADMSG):
 * *(void **)out is the handle, or nothing is left behind. What every kind's open shares. */
int shmkit__handle_open(const char *name, uint32_t kind, size_t size,
			int (*check)(const struct shmkit__region *r), void *out);
/* Allocate a zeroed handle of `size` bytes. */
void *shmkit__handle_new(size_t size);

#endif /* SHMKIT_REGION_H */
