/*
 * What lives in shared memory. Private to the library.
 *
 * Every region starts with struct shmkit__hdr. Regions hold offsets and counters, never
 * pointers, because each process maps them at its own address. Everything here may be written
 * by a buggy or hostile peer: the immutable layout (sizes, capacities, offsets) is copied into
 * the process-local handle at open and validated against fstat there, and every index read
 * back from the region later is bounds-checked before use.
 */
#ifndef SHMKIT_LAYOUT_H
#define SHMKIT_LAYOUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define SHMKIT__MAGIC 0x31544b4d48535fULL /* "_SHMKT1" little-endian */
#define SHMKIT__LAYOUT_VERSION 1u
#define SHMKIT__CACHELINE 64

enum { SHMKIT__STATE_INIT = 0, SHMKIT__STATE_READY = 0x52454459 /* "REDY" */ };

struct shmkit__hdr {
	uint64_t magic;             /* SHMKIT__MAGIC, written last at create (release) */
	uint32_t version;           /* SHMKIT__LAYOUT_VERSION */
	uint32_t kind;              /* enum shmkit_kind */
	uint64_t size;              /* bytes in the region, checked against fstat */
	_Atomic uint32_t state;     /* SHMKIT__STATE_INIT until the creator finished */
	uint32_t flags;             /* SHMKIT_RECURSIVE, SHMKIT_BOUNDED, ... */
	int32_t creator_pid;        /* with creator_start: who is initialising it */
	uint32_t reserved0;
	uint64_t creator_start;     /* start time of creator_pid, see proc.c */
	uint64_t param[4];          /* kind-specific immutable parameters */
	uint8_t reserved[48];
};
_Static_assert(sizeof(struct shmkit__hdr) == 128, "header is two cache lines");

/* A robust process-shared mutex with the bookkeeping shmkit reports. */
struct shmkit__lk {
	pthread_mutex_t m;
	_Atomic int32_t holder;        /* pid of the holder, 0 when free */
	_Atomic int32_t holder_tid;    /* its thread id: release checks it before unlocking */
	uint32_t depth;                /* recursion depth, written by the holder only */
	uint32_t reserved;
	_Atomic uint64_t owner_deaths; /* acquisitions that recovered from a dead holder */
};

/* A process's identity that survives pid reuse: pid plus its start time (see proc.c). */
struct shmkit__ident {
	_Atomic int32_t pid; /* 0: free */
	uint32_t reserved;
	_Atomic uint64_t start;
};

#endif /* SHMKIT_LAYOUT_H */
