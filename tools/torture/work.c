/*
 * The participants of `shmkit torture`, each a forked process that the supervisor may SIGKILL at
 * any instant. Every wait has a deadline (ctx.stall_ns): a call that times out is a stall and
 * fails the run, as does any message that is not exactly what some producer stamped.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "torture/torture.h"

static const char *const role_names[T_NROLES] = { "producer", "consumer", "lock worker",
						  "pipe end 0", "pipe end 1" };

/* Report why this participant fails and return the status that says so. */
static int fail(const struct t_slot *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const struct t_slot *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "shmkit: torture: %s #%u (pid %d): %s\n", role_names[s->role], s->id,
		(int)getpid(), msg);
	return T_EXIT_FAIL;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A hash of everything but the sum itself, a word at a time (messages are long, and the
 * time goes into the queue, not into stamping). */
static uint64_t msg_sum(const struct t_msg *m, size_t len)
{
	const unsigned char *p = (const unsigned char *)m;
	uint64_t h = 0x243f6a8885a308d3ULL, w;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		if (i == offsetof(struct t_msg, sum))
			continue;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h ^ len;
}

void t_msg_make(struct t_msg *m, uint32_t len, uint32_t producer, uint64_t seq, uint64_t gid)
{
	uint64_t w = gid * 0x9e3779b97f4a7c15ULL;
	size_t i, n = len - sizeof(*m);

	m->magic = T_MSG_MAGIC;
	m->len = len;
	m->producer = producer;
	m->reserved = 0;
	m->seq = seq;
	m->gid = gid;
	for (i = 0; i + 8 <= n; i += 8) {
		w += 0xbf58476d1ce4e5b9ULL;
		memcpy(m->payload + i, &w, 8);
	}
	for (; i < n; i++)
		m->payload[i] = (unsigned char)(w >> (8 * (i % 8)));
	m->sum = msg_sum(m, len);
}

const char *t_msg_check(const struct t_msg *m, size_t len)
{
	if (len < sizeof(*m) || len > T_MAX_MSG)
		return "impossible length";
	if (m->magic != T_MSG_MAGIC)
		return "bad magic";
	if (m->len != len)
		return "length differs from the stamped one";
	if (m->sum != msg_sum(m, len))
		return "checksum mismatch (torn or corrupt message)";
	if (m->gid >= T_MAX_GIDS || m->producer >= T_MAX_IDS || m->seq == 0)
		return "stamp out of range";
	return NULL;
}

/* ------------------------------------------------------------------------------------------ */

int t_producer(struct t_ctx *c, struct t_slot *s)
{
	_Alignas(16) unsigned char buf[T_MAX_MSG];
	struct t_msg *m = (struct t_msg *)buf;
	struct t_board *b = c->b;
	uint64_t seq = 0, gid, r = s->seed;
	shmkit_queue *q;
	uint32_t len;
	int rc;

	if ((rc = shmkit_queue_open(c->qname, &q)))
		return fail(s, "queue open: %s", shmkit_strerror(rc));
	for (;;) {
		gid = atomic_fetch_add(&b->next_gid, 1);
		if (gid >= T_MAX_GIDS) {
			/* Out of ids: stay a (blocked-looking) writer until killed. */
			atomic_store(&b->gids_exhausted, 1);
			for (;;)
				nap_ms(100);
		}
		len = T_MIN_MSG + (uint32_t)(t_rand(&r) % (T_MAX_MSG - T_MIN_MSG + 1));
		t_msg_make(m, len, s->id, ++seq, gid);
		/* Said before the put: killed from here until it is cleared, this message may or
		 * may not have been delivered. */
		atomic_store(&s->attempting, gid);
		rc = shmkit_queue_put_timeout(q, m, len, c->stall_ns);
		if (rc)
			return fail(s, "put of message %llu: %s", (unsigned long long)gid,
				    shmkit_strerror(rc));
		t_bit_set(b->acked, gid);
		atomic_store(&s->attempting, T_NONE);
	}
}

int t_consumer(struct t_ctx *c, struct t_slot *s)
{
	struct t_msg *m = (struct t_msg *)s->buf;
	struct t_board *b = c->b;
	uint64_t *last;
	shmkit_queue *q;
	const char *why;
	int rc;

	/* Highest seq seen from each producer: one producer's messages sit at increasing
	 * positions and a consumer claims increasing positions, so they must arrive in order. */
	if (!(last = calloc(T_MAX_IDS, sizeof(*last))))
		return fail(s, "out of memory");
	if ((rc = shmkit_queue_open(c->qname, &q)))
		return fail(s, "queue open: %s", shmkit_strerror(rc));
	for (;;) {
		m->magic = 0;
		atomic_store(&s->cstate, C_GETTING);
		rc = shmkit_queue_get_timeout(q, s->buf, sizeof(s->buf), c->stall_ns);
		if (rc == -EPIPE)
			break;
		if (rc < 0)
			return fail(s, "get: %s", shmkit_strerror(rc));
		atomic_fetch_add(&b->got, 1);
		if ((why = t_msg_check(m, (size_t)rc)))
			return fail(s, "message of %d bytes: %s", rc, why);
		if (m->gid >= atomic_load(&b->next_gid))
			return fail(s, "message %llu was never stamped",
				    (unsigned long long)m->gid);
		if (m->seq <= last[m->producer])
			return fail(s, "producer #%u: message seq %llu after seq %llu (order)",
				    m->producer, (unsigned long long)m->seq,
				    (unsigned long long)last[m->producer]);
		last[m->producer] = m->seq;
		if (t_bit_set(b->received, m->gid))
			return fail(s, "message %llu (producer #%u seq %llu) delivered twice",
				    (unsigned long long)m->gid, m->producer,
				    (unsigned long long)m->seq);
		m->magic = 0;
		atomic_store(&s->cstate, C_IDLE);
	}
	atomic_store(&s->cstate, C_EOF);
	shmkit_queue_close(q);
	free(last);
	return T_EXIT_OK;
}

/*
 * The Lock guards an invariant over two Array cells: they are equal whenever the Lock is free.
 * The holder adds to one cell, yields (so a kill lands in the middle now and then), then to the
 * other. Whoever acquires after a holder died must see SHMKIT_OWNER_DIED, and then either equal
 * cells or the first one ahead by exactly one, which it completes; without an owner death the
 * cells must be equal.
 */
int t_locker(struct t_ctx *c, struct t_slot *s)
{
	struct t_board *b = c->b;
	shmkit_lock *l;
	shmkit_array *a;
	shmkit_value *v;
	int64_t x0, x1;
	int rc;

	if ((rc = shmkit_lock_open(c->lname, &l)) || (rc = shmkit_array_open(c->aname, &a)) ||
	    (rc = shmkit_value_open(c->vname, &v)))
		return fail(s, "open: %s", shmkit_strerror(rc));
	while (!atomic_load(&b->stop)) {
		atomic_store(&s->lstate, L_ACQUIRING);
		rc = shmkit_lock_acquire_timeout(l, c->stall_ns);
		if (rc < 0)
			return fail(s, "lock acquire: %s", shmkit_strerror(rc));
		if (rc == SHMKIT_OWNER_DIED)
			atomic_fetch_add(&b->lk_od_seen, 1);
		atomic_store(&s->lstate, L_HOLDING);
		shmkit_array_load(a, 0, &x0);
		shmkit_array_load(a, 1, &x1);
		if (x0 != x1) {
			if (rc != SHMKIT_OWNER_DIED || x0 != x1 + 1)
				return fail(s, "invariant broken: cells %lld and %lld after an "
					       "acquire that returned %d",
					    (long long)x0, (long long)x1, rc);
			shmkit_array_store(a, 1, x0);
			atomic_fetch_add(&b->lk_repaired, 1);
			x1 = x0;
		}
		shmkit_array_store(a, 0, x0 + 1);
		sched_yield();
		shmkit_array_store(a, 1, x1 + 1);
		atomic_store(&s->lstate, L_RELEASING);
		if ((rc = shmkit_lock_release(l)))
			return fail(s, "lock release: %s", shmkit_strerror(rc));
		atomic_store(&s->lstate, L_IDLE);
		atomic_fetch_add(&b->lk_confirmed, 1);

		/* The Value's own Lock, through a locked add. */
		atomic_store(&s->vpending, 1);
		rc = shmkit_value_add(v, 1, SHMKIT_ADD_LOCKED, NULL);
		if (rc < 0)
			return fail(s, "locked value add: %s", shmkit_strerror(rc));
		if (rc == SHMKIT_OWNER_DIED)
			atomic_fetch_add(&b->val_od_seen, 1);
		atomic_fetch_add(&b->val_confirmed, 1);
		atomic_store(&s->vpending, 0);
	}
	shmkit_value_close(v);
	shmkit_array_close(a);
	shmkit_lock_close(l);
	return T_EXIT_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The pipe pair: end 0 sends seq 1, 2, ... and waits for each to come back from end 1. When
 * either is killed the other must see EOF (-EPIPE) within a bounded time. */

static int pipe_msg_ok(const struct t_msg *m, int len, uint64_t want)
{
	return len >= 0 && !t_msg_check(m, (size_t)len) && m->seq == want;
}

int t_pinger(struct t_ctx *c, struct t_slot *s)
{
	_Alignas(16) unsigned char out[T_PIPE_MSG], in[T_PIPE_MSG];
	struct t_msg *m = (struct t_msg *)out, *r = (struct t_msg *)in;
	uint64_t seq;
	int rc;

	if ((rc = shmkit_pipe_attach(c->pipe, 0)))
		return fail(s, "attach end 0: %s", shmkit_strerror(rc));
	atomic_store(&s->ready, 1);
	for (seq = 1; !atomic_load(&c->b->stop); seq++) {
		t_msg_make(m, T_PIPE_MSG, s->id, seq, 0);
		rc = shmkit_pipe_send_timeout(c->pipe, m, T_PIPE_MSG, c->stall_ns);
		if (rc == -EPIPE)
			return T_EXIT_PEER_GONE;
		if (rc)
			return fail(s, "send: %s", shmkit_strerror(rc));
		rc = shmkit_pipe_recv_timeout(c->pipe, in, sizeof(in), c->stall_ns);
		if (rc == -EPIPE)
			return T_EXIT_PEER_GONE;
		if (rc < 0)
			return fail(s, "recv: %s", shmkit_strerror(rc));
		if (!pipe_msg_ok(r, rc, seq))
			return fail(s, "echo of %llu came back wrong", (unsigned long long)seq);
		atomic_fetch_add(&c->b->pipe_trips, 1);
	}
	shmkit_pipe_close(c->pipe); /* the peer sees EOF */
	return T_EXIT_OK;
}

int t_echoer(struct t_ctx *c, struct t_slot *s)
{
	_Alignas(16) unsigned char in[T_PIPE_MSG];
	struct t_msg *m = (struct t_msg *)in;
	uint64_t want;
	int rc;

	if ((rc = shmkit_pipe_attach(c->pipe, 1)))
		return fail(s, "attach end 1: %s", shmkit_strerror(rc));
	atomic_store(&s->ready, 1);
	for (want = 1;; want++) {
		rc = shmkit_pipe_recv_timeout(c->pipe, in, sizeof(in), c->stall_ns);
		if (rc == -EPIPE)
			return T_EXIT_PEER_GONE;
		if (rc < 0)
			return fail(s, "recv: %s", shmkit_strerror(rc));
		/* One sender, one receiver: nothing may be skipped, repeated or torn. */
		if (!pipe_msg_ok(m, rc, want)) {
			const char *why = t_msg_check(m, (size_t)rc);
			return fail(s, "expected message %llu, got %d bytes: %s, seq %llu",
				    (unsigned long long)want, rc, why ? why : "out of order",
				    (unsigned long long)m->seq);
		}
		rc = shmkit_pipe_send_timeout(c->pipe, in, (size_t)rc, c->stall_ns);
		if (rc == -EPIPE)
			return T_EXIT_PEER_GONE;
		if (rc)
			return fail(s, "send: %s", shmkit_strerror(rc));
	}
}
