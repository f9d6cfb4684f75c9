/*
 * `shmkit torture`: what the supervisor (supervisor.h and its files) and the participants it forks
 * and kills (work.c) share.
 *
 * The board is an anonymous shared mapping made before the first fork. Participants record
 * there, before each step that a SIGKILL could cut in two, what they are about to do, so the
 * supervisor can tell after a death what may have happened: a producer names the message it is
 * putting (maybe delivered), a consumer receives straight into its board slot (so a message it
 * got but never recorded can still be found), a lock worker says whether it holds the Lock.
 */
#ifndef SHMKIT_TOOLS_TORTURE_H
#define SHMKIT_TOOLS_TORTURE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "shmkit.h"

#define T_MSG_MAGIC 0x4d545254u  /* "TRTM" */
#define T_MAX_MSG 2048           /* queue max_size; messages are 40..T_MAX_MSG bytes */
#define T_MIN_MSG 40
#define T_QUEUE_CAP 50           /* not a power of two: the ring has 64 slots */
#define T_PIPE_CAP 4
#define T_PIPE_MSG 64
#define T_MAX_GIDS (1u << 28)    /* message ids: three bitmaps of 32 MiB (touched as used) */
#define T_MAX_IDS (1u << 20)     /* participant incarnations */
#define T_NONE UINT64_MAX

/* Exit statuses of participants. */
#define T_EXIT_OK 0
#define T_EXIT_FAIL 3      /* a check failed or a call failed; the reason went to stderr */
#define T_EXIT_PEER_GONE 10 /* pipe end: the other end closed or died, EOF seen */

enum t_role { T_PRODUCER, T_CONSUMER, T_LOCKER, T_PINGER, T_ECHOER, T_NROLES };

/* Lock worker states (slot.lstate), for telling after its death whether it held the Lock. */
enum { L_IDLE, L_ACQUIRING, L_HOLDING, L_RELEASING };
/* Consumer states (slot.cstate). */
enum { C_IDLE, C_GETTING, C_EOF };

/* A stamped message: who, which, and a checksum over all of it. */
struct t_msg {
	uint32_t magic;
	uint32_t len;      /* whole message */
	uint32_t producer; /* incarnation id: a restarted producer is a new producer */
	uint32_t reserved;
	uint64_t seq;      /* 1, 2, ... per producer */
	uint64_t gid;      /* unique over the run, from board.next_gid */
	uint64_t sum;      /* t_msg_sum() */
	unsigned char payload[];
};

/* One participant's shared state; the supervisor reads it after the participant's death. */
struct t_slot {
	uint32_t id;   /* incarnation, set by the supervisor before the fork */
	uint32_t role;
	uint64_t seed;
	_Atomic uint64_t attempting; /* producer: gid being put, T_NONE */
	_Atomic uint32_t cstate;     /* consumer */
	_Atomic uint32_t lstate;     /* lock worker */
	_Atomic uint32_t vpending;   /* lock worker: inside a locked Value add */
	_Atomic uint32_t ready;      /* pipe end: attached */
	_Alignas(16) unsigned char buf[T_MAX_MSG]; /* consumer: get target */
};

#define T_SLOTS 16

struct t_board {
	_Atomic uint32_t stop;     /* lock workers and the pinger finish and exit */
	_Atomic uint32_t gids_exhausted;
	_Atomic uint64_t next_gid;
	_Atomic uint64_t got;            /* messages consumers took (progress) */
	_Atomic uint64_t lk_confirmed;   /* Lock updates completed and released */
	_Atomic uint64_t lk_od_seen;     /* SHMKIT_OWNER_DIED from the Lock, seen by workers */
	_Atomic uint64_t lk_repaired;    /* half-done updates found and completed */
	_Atomic uint64_t val_confirmed;  /* locked Value adds that returned */
	_Atomic uint64_t val_od_seen;
	_Atomic uint64_t pipe_trips;     /* ping-pong round trips checked */
	struct t_slot slot[T_SLOTS];
	_Atomic uint64_t acked[T_MAX_GIDS / 64];    /* put returned 0 */
	_Atomic uint64_t maybe[T_MAX_GIDS / 64];    /* being put when its producer died */
	_Atomic uint64_t received[T_MAX_GIDS / 64]; /* taken by a consumer */
};

/* What a participant needs to find the objects; copied into each child by fork. */
struct t_ctx {
	struct t_board *b;
	char qname[64], lname[64], aname[64], vname[64];
	shmkit_pipe *pipe; /* current pipe generation, attached by the child */
	int64_t stall_ns;  /* any wait longer than this is a failure */
};

/* Bitmaps: set and return the old bit, or test. */
static inline bool t_bit_set(_Atomic uint64_t *map, uint64_t i)
{
	uint64_t m = 1ULL << (i % 64);

	return atomic_fetch_or(&map[i / 64], m) & m;
}

static inline bool t_bit(_Atomic uint64_t *map, uint64_t i)
{
	return atomic_load_explicit(&map[i / 64], memory_order_relaxed) & (1ULL << (i % 64));
}

static inline uint64_t t_rand(uint64_t *s)
{
	/* xorshift64*: quick, and good enough to pick lengths, victims and moments. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* Fill a message of len bytes (T_MIN_MSG..T_MAX_MSG) and stamp it. */
void t_msg_make(struct t_msg *m, uint32_t len, uint32_t producer, uint64_t seq, uint64_t gid);
/* 0 if m, received as len bytes, is whole and stamped right; else a reason. */
const char *t_msg_check(const struct t_msg *m, size_t len);

/* The participants; each returns its exit status. */
int t_producer(struct t_ctx *c, struct t_slot *s);
int t_consumer(struct t_ctx *c, struct t_slot *s);
int t_locker(struct t_ctx *c, struct t_slot *s);
int t_pinger(struct t_ctx *c, struct t_slot *s);
int t_echoer(struct t_ctx *c, struct t_slot *s);

#endif
