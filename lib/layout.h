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
#define SHMKIT__LAYOUT_VERSION 6u /* 2: seats and leases, our own lock word; 3: wake-one word,
				     fd bits, batch counts; 4: fragments, streams, slot size;
				     5: pipe holds and per-process use entries, cond grants;
				     6: leases in a file only writers open */
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
	uint64_t seats_off;         /* offset of the seat table (the end of the object) */
	uint32_t nseats;            /* entries in it */
	uint32_t lk_off;            /* offset of the region's lock (struct shmkit__lk), 0: none */
	uint64_t lease_key;         /* names the region's lease file (lease.c), 0: anonymous */
	uint8_t reserved[24];
};
_Static_assert(sizeof(struct shmkit__hdr) == 128, "header is two cache lines");

/*
 * A seat: one handle's place in a region (see lease.c). Seat k is held by whoever holds the
 * kernel lease on byte SHMKIT__LEASE_BASE + k of the region's file; these fields only say who
 * that is, for display and for the deadlock detector, and are never trusted for liveness.
 */
struct shmkit__seat {
	_Atomic uint32_t state;   /* SHMKIT__SEAT_FREE or _TAKEN */
	_Atomic int32_t pid;      /* its pid in its own pid namespace: for display only */
	_Atomic uint64_t start;   /* its start time (/proc), for display only */
	_Atomic uint64_t ns;      /* its pid namespace inode, 0 unknown: for display only */
	_Atomic uint32_t waiting; /* 1 while it sleeps on the region's lock */
	/* Bumped by each process that takes the seat: who records a seat (a pipe end, a barrier
	 * party, a queue entry) records its gen too, so a seat taken again after its holder
	 * died does not make that holder look alive. */
	_Atomic uint32_t gen;
};
_Static_assert(sizeof(struct shmkit__seat) == 32, "seat size is part of the layout");
/* Leases (lease.c) are OFD locks on single bytes of the region's lease file (the creator's on
 * the region's file itself), far past their ends: part of the layout, since every process must
 * lock the same bytes. */
#define SHMKIT__LEASE_BASE (1ULL << 52)                /* seat k's lease is byte BASE + k */
#define SHMKIT__LEASE_CREATOR (SHMKIT__LEASE_BASE - 1) /* held by a creator until READY */
#define SHMKIT__LEASE_HOLD (SHMKIT__LEASE_BASE - 2)    /* read-held by every open handle */

enum { SHMKIT__SEAT_FREE = 0, SHMKIT__SEAT_TAKEN = 0x53454154 /* "SEAT" */ };

/*
 * The lock behind Lock, RLock, Value, Array, Condition and the internal state locks. Not a
 * pthread mutex: glibc's robust mutex names its holder by thread id, and thread ids repeat
 * across pid namespaces (see mutex.c).
 */
struct shmkit__lk {
	_Atomic uint32_t word;         /* futex: holder seat + 1 | SHMKIT__LK_* bits; 0 free */
	uint32_t depth;                /* recursion depth, written by the holder only */
	int32_t reserved0;             /* who holds it is the word's seat (its pid is there) */
	int32_t reserved1;
	_Atomic uint64_t holder_tgid;  /* its thread's global id (proc.c): who holds it, for
					  recursion, release and the deadlock detector */
	_Atomic uint64_t owner_deaths; /* acquisitions that recovered from a dead holder */
};

/* Who arrived (a barrier party): pid plus start time for display, and the seat whose lease
 * says whether it lives. */
struct shmkit__ident {
	_Atomic int32_t pid; /* 0: free */
	int32_t seat;        /* the seat whose lease says whether it lives */
	_Atomic uint64_t start;
	uint32_t seat_gen;   /* that seat's gen when it arrived */
	uint32_t reserved;
};

#endif /* SHMKIT_LAYOUT_H */
