/*
 * The shmkit transports of `shmkit bench`, through the public API only, the way a program
 * would use them: blocking put/get and send/recv, EOF when the writers are done.
 *
 * Both are anonymous (name NULL): the children inherit them across fork, and nothing is left in
 * /dev/shm if the bench is interrupted.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "shmkit.h"

unsigned bench_capacity(unsigned size)
{
	unsigned cap = 1024;

	while (cap > 16 && (uint64_t)cap * size > bench_machine.shmkit_bytes)
		cap /= 2;
	return cap;
}

/* ------------------------------------------------------------------------------------------- */
/* Queue: direction d is queue q[d]; EOF once its `writers` producers have attached and left.   */

struct qlink {
	shmkit_queue *q[2];
	int side;
};

static bool q_supported(const struct bench_link_cfg *cfg, char *why, size_t n)
{
	return true;
}

static unsigned capacity(const struct bench_link_cfg *cfg)
{
	return cfg->slot ? LARGE_SLOTS : bench_capacity(cfg->size);
}

static void q_describe(const struct bench_link_cfg *cfg, char *note, size_t n)
{
	if (cfg->slot)
		snprintf(note, n, "%u slots of %u B: %u per message", LARGE_SLOTS, cfg->slot,
			 (cfg->size + cfg->slot - 1) / cfg->slot);
	else
		snprintf(note, n, "capacity %u", bench_capacity(cfg->size));
}

static void q_close(void *link)
{
	struct qlink *l = link;

	if (!l)
		return;
	shmkit_queue_close(l->q[0]);
	shmkit_queue_close(l->q[1]);
	free(l);
}

static int q_open(const struct bench_link_cfg *cfg, void **out)
{
	struct shmkit_queue_attr a = { 0 };
	struct qlink *l = calloc(1, sizeof(*l));
	int err, d;

	if (!l)
		return -ENOMEM;
	a.capacity = capacity(cfg);
	a.max_size = cfg->size;
	a.slot_size = cfg->slot ? cfg->slot : cfg->size; /* else one slot per message */
	for (d = 0; d < (cfg->duplex ? 2 : 1); d++) {
		/* Writers expected: EOF cannot come early from a producer that finishes before
		 * another has attached. */
		a.writers = d == 0 ? cfg->senders : cfg->receivers;
		if ((err = shmkit_queue_create(NULL, &a, &l->q[d])) < 0) {
			q_close(l);
			return err;
		}
	}
	*out = l;
	return 0;
}

static int q_attach(void *link, int side, unsigned idx)
{
	struct qlink *l = link;
	char c;
	int rc;

	l->side = side;
	if (l->q[side] && (rc = shmkit_queue_attach_writer(l->q[side])) < 0)
		return rc;
	/* Register as a consumer now rather than in the first timed get; nothing is sent
	 * before the gate opens, so this cannot take a message. */
	if (l->q[1 - side]) {
		rc = shmkit_queue_get_try(l->q[1 - side], &c, 0);
		if (rc != -EAGAIN)
			return rc < 0 ? rc : -EPROTO;
	}
	return 0;
}

static int q_send(void *link, const void *msg, size_t len)
{
	struct qlink *l = link;

	return shmkit_queue_put(l->q[l->side], msg, len);
}

static int q_recv(void *link, void *buf, size_t len)
{
	struct qlink *l = link;
	int rc = shmkit_queue_get(l->q[1 - l->side], buf, len);

	return rc == -EPIPE ? 0 : rc;
}

static void q_sender_done(void *link)
{
	struct qlink *l = link;

	shmkit_queue_detach_writer(l->q[l->side]);
}

static void q_forked(void *link)
{
}

static int q_senders_gone(void *link, unsigned receivers)
{
	return 0;
}

const struct bench_xport bench_xport_queue = {
	.name = "shmkit",
	.supported = q_supported,
	.describe = q_describe,
	.open = q_open,
	.attach = q_attach,
	.send = q_send,
	.recv = q_recv,
	.sender_done = q_sender_done,
	.forked = q_forked,
	.senders_gone = q_senders_gone,
	.close = q_close,
};

/* ------------------------------------------------------------------------------------------- */
/* Pipe: end 0 is side 0; simplex unless round trips need both directions.                     */

struct plink {
	shmkit_pipe *p;
};

static bool p_supported(const struct bench_link_cfg *cfg, char *why, size_t n)
{
	if (cfg->senders == 1 && cfg->receivers == 1)
		return true;
	snprintf(why, n, "a Pipe has two ends: 1->1 only");
	return false;
}

static int p_open(const struct bench_link_cfg *cfg, void **out)
{
	struct plink *l = calloc(1, sizeof(*l));
	int err;

	if (!l)
		return -ENOMEM;
	/* A Pipe's slots are 4096 B for messages above that (shmkit_pipe_create). */
	err = shmkit_pipe_create(NULL, capacity(cfg), cfg->size,
				 cfg->duplex ? 0 : SHMKIT_SIMPLEX, 0, &l->p);
	if (err < 0) {
		free(l);
		return err;
	}
	*out = l;
	return 0;
}

static int p_attach(void *link, int side, unsigned idx)
{
	struct plink *l = link;

	return shmkit_pipe_attach(l->p, side);
}

static int p_send(void *link, const void *msg, size_t len)
{
	struct plink *l = link;

	return shmkit_pipe_send(l->p, msg, len);
}

static int p_recv(void *link, void *buf, size_t len)
{
	struct plink *l = link;
	int rc = shmkit_pipe_recv(l->p, buf, len);

	return rc == -EPIPE ? 0 : rc;
}

static void p_sender_done(void *link)
{
	struct plink *l = link;

	/* Giving up the end is what tells the peer EOF. */
	shmkit_pipe_close(l->p);
	l->p = NULL;
}

static void p_close(void *link)
{
	struct plink *l = link;

	if (!l)
		return;
	shmkit_pipe_close(l->p);
	free(l);
}

const struct bench_xport bench_xport_spipe = {
	.name = "shmkit-pipe",
	.supported = p_supported,
	.describe = q_describe,
	.open = p_open,
	.attach = p_attach,
	.send = p_send,
	.recv = p_recv,
	.sender_done = p_sender_done,
	.forked = q_forked,
	.senders_gone = q_senders_gone,
	.close = p_close,
};
