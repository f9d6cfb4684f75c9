/*
 * The receiving bridge: binds ENDPOINT (a ROUTER socket: several send bridges), takes each
 * sender's messages strictly in sequence into the staging queue, acknowledges, and once every
 * sender that ever connected has forwarded EOF, has the keeper leave the far queue and exits.
 *
 * Order of a message's steps, and what a SIGKILL between them does:
 *   put into staging -> record last = seq -> ack.
 *   Killed before the put completes: nothing staged (a claimed slot of a dead producer is
 *   skipped, never half-read), nothing recorded, not acked: the sender resends it.
 *   Killed after the put, before the record: staged and resent; the keeper drops the copy.
 *   Killed after the record, before the ack: the sender resends, we see seq <= last and ack.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bridge/bridge.h"
#include "util.h"

#define STAGE_CAPACITY 1024
#define LINGER_S 2.0 /* after the end, answer late EOFs this long (an EOFACK may be lost) */

struct recv {
	const struct bridge_opts *o;
	void *ctx, *sock, *zap;
	shmkit_queue *stage;
	struct bridge_rstate rs;
	char stage_name[SHMKIT_NAME_MAX + 2], lock_name[SHMKIT_NAME_MAX + 2];
	uint32_t far_max;
	unsigned char *buf; /* staging message being built */
	uint64_t received, duplicates, malformed;
	unsigned foreign_notes;
};

static void reply(struct recv *r, zmq_msg_t *rid, const void *frame, size_t len)
{
	zmq_msg_t id;

	zmq_msg_init(&id);
	zmq_msg_copy(&id, rid);
	/* DONTWAIT: a sender that stopped reading must not stop us; it resends what it
	 * misses. */
	if (zmq_msg_send(&id, r->sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&id);
		return;
	}
	zmq_send(r->sock, frame, len, ZMQ_DONTWAIT);
}

static void refuse(struct recv *r, zmq_msg_t *rid, uint64_t id, int code, const char *why)
{
	unsigned char frame[300];

	if (!r->o->quiet)
		fprintf(stderr, "shmkit: %s: refused a sender: %s\n", r->o->cmd, why);
	reply(r, rid, frame, bridge_encode_refuse(frame, sizeof(frame), id ? id : 1, code, why));
}

/* Put one message into staging, waiting while it is full (backpressure: we stop reading the
 * socket, ZeroMQ's buffers fill, the sender stops sending and then taking). */
static int stage_put(struct recv *r, uint64_t id, uint64_t seq, const unsigned char *msg,
		     uint32_t len)
{
	int rc;

	bridge_put64(r->buf, id);
	bridge_put64(r->buf + 8, seq);
	memcpy(r->buf + BRIDGE_STAGE_HDR, msg, len);
	for (;;) {
		rc = shmkit_queue_put_timeout(r->stage, r->buf, BRIDGE_STAGE_HDR + (size_t)len,
					      500 * 1000000LL);
		if (rc != -ETIMEDOUT)
			return rc;
		if (bridge_stop)
			return -EINTR;
		if (!bridge_keeper_alive(r->lock_name))
			return -ECHILD;
	}
}

static int on_data(struct recv *r, zmq_msg_t *rid, const struct bridge_frame *f)
{
	unsigned char ack[64];
	const unsigned char *msg;
	uint64_t last, seq = f->b;
	uint32_t flags = 0, len;
	size_t pos = 0;
	int slot, rc;

	if ((slot = bridge_rstate_slot(&r->rs, f->id, false)) < 0) {
		refuse(r, rid, f->id, EPROTO, "data before hello");
		return 0;
	}
	last = (uint64_t)bridge_rstate_get(&r->rs, slot, RS_LAST);
	for (; bridge_next_record(f, &pos, &msg, &len); seq++) {
		/* The sender no longer holds anything below `floor` (it lost its window in a
		 * crash and counted the loss): the sequence may resume there. */
		uint64_t base = last > f->a - 1 || f->a == 0 ? last : f->a - 1;

		if (seq <= last) {
			r->duplicates++;
			continue;
		}
		if (seq != base + 1) {
			flags |= BA_GAP; /* a frame went missing in a cut connection: ask again */
			break;
		}
		if (len > r->far_max) {
			refuse(r, rid, f->id, EMSGSIZE, "message longer than the far queue's maximum");
			return 0;
		}
		if ((rc = stage_put(r, f->id, seq, msg, len)))
			return rc;
		last = seq;
		bridge_rstate_set(&r->rs, slot, RS_LAST, (int64_t)last);
		r->received++;
	}
	reply(r, rid, ack, bridge_encode(ack, BT_ACK, f->id, last, flags));
	return 0;
}

/* One frame from the socket: 1 when the last sender forwarded EOF, 0 to go on, < 0 to fail. */
static int on_frame(struct recv *r, zmq_msg_t *rid, const void *data, size_t len)
{
	struct bridge_frame f;
	unsigned char out[64];
	int rc, slot;

	rc = bridge_decode(data, len, &f);
	if (rc == -EPROTO) {
		/* Not ours to answer in a language the peer does not speak; say it here. */
		if (!r->o->quiet && r->foreign_notes++ < 5)
			fprintf(stderr, "shmkit: %s: a peer sent something that is not the shmkit "
					"bridge protocol (ignored)\n", r->o->cmd);
		r->malformed++;
		return 0;
	}
	if (rc) {
		r->malformed++;
		refuse(r, rid, 0, EBADMSG, "malformed frame");
		return 0;
	}
	switch (f.type) {
	case BT_HELLO:
		if (f.a > r->far_max) {
			char why[160];

			snprintf(why, sizeof(why), "its queue takes messages up to %" PRIu64
				 " bytes, the far queue only %u", f.a, r->far_max);
			refuse(r, rid, f.id, EMSGSIZE, why);
			return 0;
		}
		if ((slot = bridge_rstate_slot(&r->rs, f.id, true)) < 0) {
			refuse(r, rid, f.id, ENOSPC, "too many send bridges for one receiver");
			return 0;
		}
		reply(r, rid, out, bridge_encode(out, BT_WELCOME, f.id,
						 (uint64_t)bridge_rstate_get(&r->rs, slot, RS_LAST),
						 r->far_max));
		return 0;
	case BT_DATA:
		return on_data(r, rid, &f);
	case BT_EOF:
		if ((slot = bridge_rstate_slot(&r->rs, f.id, false)) < 0) {
			refuse(r, rid, f.id, EPROTO, "EOF before hello");
			return 0;
		}
		if ((uint64_t)bridge_rstate_get(&r->rs, slot, RS_LAST) < f.a) {
			/* It thinks we have more than we do: have it resend. */
			reply(r, rid, out, bridge_encode(out, BT_ACK, f.id,
							 (uint64_t)bridge_rstate_get(&r->rs, slot, RS_LAST),
							 BA_GAP));
			return 0;
		}
		bridge_rstate_set(&r->rs, slot, RS_EOF, 1);
		reply(r, rid, out, bridge_encode(out, BT_EOFACK, f.id, 0, 0));
		return bridge_rstate_all_eof(&r->rs);
	default:
		refuse(r, rid, f.id, EPROTO, "unexpected frame type");
		return 0;
	}
}

/* Read one ROUTER message: routing id, then exactly one frame. */
static int read_one(struct recv *r)
{
	zmq_msg_t rid, body;
	int more, rc = 0;
	size_t sz = sizeof(more);

	zmq_msg_init(&rid);
	zmq_msg_init(&body);
	if (zmq_msg_recv(&rid, r->sock, ZMQ_DONTWAIT) < 0) {
		rc = errno == EAGAIN || errno == EINTR ? 0 : -errno;
		goto out;
	}
	zmq_getsockopt(r->sock, ZMQ_RCVMORE, &more, &sz);
	if (!more)
		goto out;
	if (zmq_msg_recv(&body, r->sock, 0) < 0) {
		rc = -errno;
		goto out;
	}
	if (zmq_msg_more(&body)) {
		/* Extra frames: drain them, refuse the lot. */
		do {
			zmq_msg_close(&body);
			zmq_msg_init(&body);
			if (zmq_msg_recv(&body, r->sock, 0) < 0)
				break;
		} while (zmq_msg_more(&body));
		r->malformed++;
		refuse(r, &rid, 0, EBADMSG, "a message of several frames");
		goto out;
	}
	rc = on_frame(r, &rid, zmq_msg_data(&body), zmq_msg_size(&body));
out:
	zmq_msg_close(&rid);
	zmq_msg_close(&body);
	return rc;
}

/* Wait for the socket (and the ZAP handler) at most ms; then read what came. */
static int serve(struct recv *r, long ms)
{
	zmq_pollitem_t it[2] = { { r->sock, 0, ZMQ_POLLIN, 0 }, { r->zap ? bridge_zap_socket(r->zap) : NULL, 0, ZMQ_POLLIN, 0 } };
	int n, i, rc;

	n = zmq_poll(it, r->zap ? 2 : 1, ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (r->zap && (it[1].revents & ZMQ_POLLIN))
		bridge_zap_handle(r->zap);
	if (!(it[0].revents & ZMQ_POLLIN))
		return 0;
	for (i = 0; i < 256; i++) { /* a burst, then look at the ZAP socket and signals again */
		rc = read_one(r);
		if (rc != 0)
			return rc;
		if (!(zmq_poll(it, 1, 0) > 0))
			break;
	}
	return 0;
}

static int open_stage(struct recv *r)
{
	struct shmkit_queue_attr a = { .capacity = STAGE_CAPACITY,
				       .max_size = r->far_max + BRIDGE_STAGE_HDR,
				       .writers = 0, .mode = 0600 };
	int rc = shmkit_queue_create(r->stage_name, &a, &r->stage);

	if (rc == -EEXIST && (rc = shmkit_queue_open(r->stage_name, &r->stage)) == 0 &&
	    shmkit_queue_max_size(r->stage) != a.max_size) {
		shmkit_queue_close(r->stage);
		r->stage = NULL;
		return -EBADMSG;
	}
	return rc;
}

int bridge_recv(const struct bridge_opts *o)
{
	struct recv r = { .o = o };
	char rname[SHMKIT_NAME_MAX + 2], why[200];
	shmkit_queue *far = NULL;
	int rc, status = 1;
	double until;

	if (bridge_endpoint_check(o->endpoint, why, sizeof(why)))
		return usage_error(o->cmd, "bad endpoint '%s': %s", o->endpoint, why);
	if ((rc = shmkit_queue_open(o->queue, &far)))
		return runtime_error(o->queue, rc);
	r.far_max = shmkit_queue_max_size(far);
	shmkit_queue_close(far); /* the keeper writes; we only needed its size */
	if (bridge_name(r.stage_name, sizeof(r.stage_name), o->queue, ".bridge-q") ||
	    bridge_name(r.lock_name, sizeof(r.lock_name), o->queue, ".bridge-l") ||
	    bridge_name(rname, sizeof(rname), o->state ? o->state : o->queue,
			o->state ? "" : ".bridge-r"))
		return usage_error(o->cmd, "'%s': name too long to add the bridge's suffixes",
				   o->queue);
	/* Staging made (and let go) before the keeper is forked, the rest opened after: a forked
	 * child shares its parent's open files, and with them the kernel leases that say the
	 * parent is alive, so the keeper must inherit none of ours. */
	if ((rc = open_stage(&r))) {
		runtime_error(r.stage_name, rc);
		return 1;
	}
	shmkit_queue_close(r.stage);
	r.stage = NULL;
	if (!(r.buf = malloc(BRIDGE_STAGE_HDR + (size_t)r.far_max)))
		return runtime_error(o->cmd, -ENOMEM);
	if (bridge_keeper_ensure(o->cmd, o->queue, r.stage_name, r.lock_name, rname))
		goto out;
	if ((rc = bridge_rstate_open(&r.rs, rname, true))) {
		if (rc == -EBUSY)
			fprintf(stderr, "shmkit: %s: %s: another receiving bridge is running for %s\n",
				o->cmd, rname, o->queue);
		else
			runtime_error(rname, rc);
		goto out;
	}
	if ((rc = shmkit_queue_open(r.stage_name, &r.stage))) {
		runtime_error(r.stage_name, rc);
		goto out;
	}
	if ((rc = shmkit_queue_attach_writer(r.stage))) {
		runtime_error(r.stage_name, rc);
		goto out;
	}
	r.ctx = zmq_ctx_new();
	r.sock = r.ctx ? zmq_socket(r.ctx, ZMQ_ROUTER) : NULL;
	if (!r.sock) {
		fprintf(stderr, "shmkit: %s: zeromq: %s\n", o->cmd, zmq_strerror(errno));
		goto out;
	}
	{
		int zero = 0;

		zmq_setsockopt(r.sock, ZMQ_LINGER, &zero, sizeof(zero));
	}
	if (bridge_curve_server(r.sock, o))
		goto out;
	if (o->curve_allow && !(r.zap = bridge_zap_open(r.ctx, o)))
		goto out;
	if (zmq_bind(r.sock, o->endpoint)) {
		rc = errno;
		if (rc == EINVAL || rc == EPROTONOSUPPORT || rc == ENODEV || rc == ENOENT) {
			status = usage_error(o->cmd, "bad endpoint '%s': %s", o->endpoint,
					     zmq_strerror(rc));
			goto out;
		}
		fprintf(stderr, "shmkit: %s: %s: %s\n", o->cmd, o->endpoint, zmq_strerror(rc));
		goto out;
	}
	for (;;) {
		rc = serve(&r, 200);
		if (rc == 1)
			break;
		if (rc == -ECHILD) {
			fprintf(stderr, "shmkit: %s: the keeper (the writer of %s) died: its "
					"consumers saw a writer leave\n", o->cmd, o->queue);
			goto out;
		}
		if (rc < 0 && rc != -EINTR) {
			runtime_error(r.stage_name, rc);
			goto out;
		}
		if (bridge_stop) { /* state kept: a restart resumes */
			status = 0;
			goto out;
		}
	}
	/* Every sender forwarded EOF: the keeper drains staging, detaches from the far queue and
	 * goes; then what was ours is removed. */
	bridge_put64(r.buf, 0);
	bridge_put64(r.buf + 8, 0);
	if ((rc = shmkit_queue_put(r.stage, r.buf, BRIDGE_STAGE_HDR))) {
		runtime_error(r.stage_name, rc);
		goto out;
	}
	until = now_seconds() + LINGER_S;
	while (bridge_keeper_alive(r.lock_name) || now_seconds() < until) {
		serve(&r, 50);
		if (bridge_stop)
			break;
	}
	shmkit_queue_close(r.stage);
	r.stage = NULL;
	shmkit_queue_unlink(r.stage_name);
	shmkit_lock_unlink(r.lock_name);
	shmkit_array_unlink(rname);
	status = 0;
	if (o->json)
		printf("{\"received\": %" PRIu64 ", \"duplicates\": %" PRIu64 ", \"malformed\": %" PRIu64
		       "}\n", r.received, r.duplicates, r.malformed);
	else if (!o->quiet)
		fprintf(stderr, "shmkit: %s: EOF from every sender; %" PRIu64 " messages put into "
				"%s this run (%" PRIu64 " duplicates dropped)\n",
			o->cmd, r.received, o->queue, r.duplicates);
out:
	if (r.zap)
		bridge_zap_close(r.zap);
	if (r.sock)
		zmq_close(r.sock);
	if (r.ctx)
		zmq_ctx_term(r.ctx);
	if (r.stage)
		shmkit_queue_close(r.stage);
	bridge_rstate_close(&r.rs);
	free(r.buf);
	return status;
}
