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
 *
 * Where a sender starts is decided here, once: its hello says the last sequence number it
 * ever gave out (`got`); whatever of it we do not have by then died in a killed sender's
 * window, and we skip to `got` and add the difference to the sender's lost count in one
 * idempotent step (bridge_rstate_skip). The welcome carries that count, which the sender puts
 * into its queue's stats. Frames of the dead sender still on their way arrive after the skip
 * and are dropped as duplicates: a message is either delivered or counted, never both.
 *
 * The end phase is decided from the state, not from an incoming frame: whenever every sender
 * known has forwarded EOF (or was forgotten) -- at start, after any frame, or on a timer -- the
 * leave marker goes to the keeper. A receiver restarted at any point of the end finishes it.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bridge/bridge.h"
#include "util.h"

#define STAGE_CAPACITY 1024
#define STAGE_SLOT_MAX (1u << 24) /* the largest slot a queue has */
#define STAGE_BYTES (64ull << 20)
#define LINGER_S 2.0 /* after the end, answer late EOFs this long (an EOFACK may be lost) */
#define NOTE_EVERY_S 10.0 /* reports of one kind of bad traffic at most this often */

struct recv {
	const struct bridge_opts *o;
	void *ctx, *sock, *zap, *mon;
	shmkit_queue *stage;
	shmkit_queue *far; /* held as a writer when the far queue counts no writers (see below) */
	struct bridge_rstate rs;
	char stage_name[SHMKIT_NAME_MAX + 2], lock_name[SHMKIT_NAME_MAX + 2];
	char rname[SHMKIT_NAME_MAX + 2];
	double next_keeper_check;
	uint32_t far_max;
	unsigned char *buf; /* staging message being built */
	uint64_t received, duplicates, malformed;
	struct note { /* one kind of report, rate-limited */
		double last;
		uint64_t held; /* reports not printed since the last one */
		char text[160]; /* the last one printed: another text is not held back */
	} notes[4];
};
enum { NOTE_FOREIGN, NOTE_REFUSED, NOTE_KEEPER, NOTE_HANDSHAKE };

/* A report on stderr, at most one per kind every NOTE_EVERY_S (a peer sending garbage in a
 * loop must not flood the log); the next one says how many were held back. */
static void note(struct recv *r, int kind, const char *fmt, const char *arg)
{
	struct note *n = &r->notes[kind];
	double t = now_seconds();
	char text[sizeof(n->text)];

	if (r->o->quiet)
		return;
	snprintf(text, sizeof(text), fmt, arg);
	if (n->last && t - n->last < NOTE_EVERY_S && !strcmp(text, n->text)) {
		n->held++;
		return;
	}
	memcpy(n->text, text, sizeof(text));
	fprintf(stderr, "shmkit: %s: %s", r->o->cmd, text);
	if (n->held)
		fprintf(stderr, " (and %llu more like it in the last %.0f s)",
			(unsigned long long)n->held, t - n->last);
	fputc('\n', stderr);
	n->last = t;
	n->held = 0;
}

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

	note(r, NOTE_REFUSED, "refused a sender: %s", why);
	reply(r, rid, frame, bridge_encode_refuse(frame, sizeof(frame), id ? id : 1, code, why));
}

/* The far queue's size, and whether it is closed for writing. */
static int far_info(const char *name, uint32_t *max, bool *closed)
{
	struct shmkit_queue_stats st;
	shmkit_queue *far;
	int rc;

	if ((rc = shmkit_queue_open(name, &far)))
		return rc;
	*max = shmkit_queue_max_size(far);
	rc = shmkit_queue_stats(far, &st);
	*closed = rc == 0 && st.eof;
	shmkit_queue_close(far); /* the keeper writes; we only needed to look */
	return rc;
}

/* A dead keeper is replaced (its successor accounts for what it held, keeper.c); -ECHILD when
 * no successor can start (the far queue closed for writing, say). */
static int keeper_check(struct recv *r)
{
	uint32_t max;
	bool closed;

	r->next_keeper_check = now_seconds() + 1.0;
	/* Alive first, then the end: a keeper that left recorded it before letting its lock go. */
	if (bridge_keeper_alive(r->lock_name) || bridge_rstate_hdr(&r->rs, RH_END) == RE_LEFT)
		return 0;
	if (bridge_rstate_hdr(&r->rs, RH_END) == RE_LEAVING &&
	    far_info(r->o->queue, &max, &closed) == 0 && closed) {
		/* It left and was killed before it could say so. */
		bridge_rstate_set_hdr(&r->rs, RH_END, RE_LEFT);
		return 0;
	}
	note(r, NOTE_KEEPER, "the keeper of %s died: starting another", r->o->queue);
	return bridge_keeper_ensure(r->o->cmd, r->o->queue, r->stage_name, r->lock_name, r->rname)
		       ? -ECHILD
		       : 0;
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
		if ((rc = keeper_check(r)))
			return rc;
	}
}

/* The slot of a sender that said hello and was not forgotten; refused otherwise (-1). */
static int known(struct recv *r, zmq_msg_t *rid, uint64_t id, const char *what)
{
	char why[80];
	int slot = bridge_rstate_slot(&r->rs, id, false);

	if (slot >= 0 && bridge_rstate_get(&r->rs, slot, RS_EOF) == 2) {
		refuse(r, rid, id, ESTALE, "this sender was forgotten (shmkit bridge forget)");
		return -1;
	}
	if (slot < 0) {
		snprintf(why, sizeof(why), "%s before hello", what);
		refuse(r, rid, id, EPROTO, why);
	}
	return slot;
}

/* A slot for a new sender: a free one, else one the operator made us forget whose messages
 * have all been moved on. */
static int new_slot(struct recv *r, uint64_t id)
{
	int slot = bridge_rstate_slot(&r->rs, id, true), i;

	if (slot != -ENOSPC)
		return slot;
	for (i = 0; i < BRIDGE_MAX_SENDERS; i++) {
		if (bridge_rstate_get(&r->rs, i, RS_EOF) == 2 &&
		    bridge_rstate_get(&r->rs, i, RS_KEPT) == bridge_rstate_get(&r->rs, i, RS_LAST)) {
			bridge_rstate_set(&r->rs, i, RS_ID, 0);
			return bridge_rstate_slot(&r->rs, id, true);
		}
	}
	return -ENOSPC;
}

static int on_data(struct recv *r, zmq_msg_t *rid, const struct bridge_frame *f)
{
	unsigned char ack[64];
	const unsigned char *msg;
	uint64_t last, seq = f->b;
	uint32_t flags = 0, len;
	size_t pos = 0;
	int slot, rc;

	if ((slot = known(r, rid, f->id, "data")) < 0)
		return 0;
	last = (uint64_t)bridge_rstate_get(&r->rs, slot, RS_LAST);
	for (; bridge_next_record(f, &pos, &msg, &len); seq++) {
		if (seq <= last) {
			r->duplicates++;
			continue;
		}
		if (seq != last + 1) {
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
	reply(r, rid, ack, bridge_encode(ack, BT_ACK, f->id, last, flags, 0));
	return 0;
}

/* One frame from the socket: 1 when the last sender forwarded EOF, 0 to go on, < 0 to fail. */
static int on_frame(struct recv *r, zmq_msg_t *rid, const void *data, size_t len)
{
	struct bridge_frame f;
	unsigned char out[64];
	uint64_t lost, last;
	int rc, slot;

	rc = bridge_decode(data, len, &f);
	if (rc == -EPROTO) {
		/* Not ours to answer in a language the peer does not speak; say it here. */
		note(r, NOTE_FOREIGN, "a peer sent something that is not the shmkit bridge protocol "
				      "(ignored)%s", "");
		r->malformed++;
		return 0;
	}
	if (rc == -EPROTONOSUPPORT) {
		r->malformed++;
		refuse(r, rid, 0, EPROTONOSUPPORT, "another version of the shmkit bridge protocol "
						   "(this receiver speaks SKB2)");
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
		if ((slot = bridge_rstate_slot(&r->rs, f.id, false)) >= 0 &&
		    bridge_rstate_get(&r->rs, slot, RS_EOF) == 2) {
			known(r, rid, f.id, "hello");
			return 0;
		}
		if (slot < 0 && (slot = new_slot(r, f.id)) < 0) {
			refuse(r, rid, f.id, ENOSPC, "too many send bridges for one receiver (see "
						     "shmkit bridge forget)");
			return 0;
		}
		/* Where this sender resumes, and what it lost: decided here, once. */
		lost = bridge_rstate_skip(&r->rs, slot, f.c);
		reply(r, rid, out, bridge_encode(out, BT_WELCOME, f.id,
						 (uint64_t)bridge_rstate_get(&r->rs, slot, RS_LAST),
						 r->far_max, lost));
		return 0;
	case BT_PROBE:
		if ((slot = known(r, rid, f.id, "probe")) < 0)
			return 0;
		/* Every frame the sender sent before the probe was read before it (one connection
		 * keeps order): short of what it says it sent, frames were lost with a connection
		 * whose end it may not have seen. A gap. */
		last = (uint64_t)bridge_rstate_get(&r->rs, slot, RS_LAST);
		reply(r, rid, out, bridge_encode(out, BT_ACK, f.id, last, last < f.a ? BA_GAP : 0, 0));
		return 0;
	case BT_DATA:
		return on_data(r, rid, &f);
	case BT_EOF:
		if ((slot = known(r, rid, f.id, "EOF")) < 0)
			return 0;
		if ((uint64_t)bridge_rstate_get(&r->rs, slot, RS_LAST) < f.a) {
			/* It thinks we have more than we do: have it resend. */
			reply(r, rid, out, bridge_encode(out, BT_ACK, f.id,
							 (uint64_t)bridge_rstate_get(&r->rs, slot, RS_LAST),
							 BA_GAP, 0));
			return 0;
		}
		bridge_rstate_set(&r->rs, slot, RS_EOF, 1);
		bridge_killpoint("eof-recorded");
		reply(r, rid, out, bridge_encode(out, BT_EOFACK, f.id, 0, 0, 0));
		bridge_killpoint("eof-acked");
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

/* Connection events: a peer whose handshake fails is told nothing by ZeroMQ, so we say it. */
static void watch(struct recv *r)
{
	uint32_t value;
	const char *why;
	int ev;

	while ((ev = bridge_monitor_read(r->mon, &value)) != -1) {
		if (ev == -EPROTO) {
			why = bridge_handshake_why(value, r->o->curve_key != NULL);
			note(r, NOTE_HANDSHAKE, "a peer's handshake failed: %s",
			     why ? why : "it does not speak ZeroMQ's protocol (ZMTP) as a DEALER");
		} else if (ev == -EACCES) {
			note(r, NOTE_HANDSHAKE, "refused a peer: %s",
			     "its CURVE public key is not in --curve-allow");
		}
	}
}

/* Wait for the socket (and the ZAP handler) at most ms; then read what came. */
static int serve(struct recv *r, long ms)
{
	zmq_pollitem_t it[3] = { { r->sock, 0, ZMQ_POLLIN, 0 }, { r->mon, 0, ZMQ_POLLIN, 0 },
				 { r->zap ? bridge_zap_socket(r->zap) : NULL, 0, ZMQ_POLLIN, 0 } };
	int n, i, rc;

	n = zmq_poll(it, r->zap ? 3 : r->mon ? 2 : 1, ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (r->mon && (it[1].revents & ZMQ_POLLIN))
		watch(r);
	if (r->zap && (it[2].revents & ZMQ_POLLIN))
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
	int rc;

	/* One slot per message where a slot can hold it (the keeper peeks in place, keeper.c),
	 * fewer slots for larger ones: staging stays within about 64 MiB. */
	a.slot_size = a.max_size < STAGE_SLOT_MAX ? a.max_size : STAGE_SLOT_MAX;
	if ((uint64_t)a.slot_size * a.capacity > STAGE_BYTES)
		a.capacity = (uint32_t)(STAGE_BYTES / a.slot_size) < 16 ? 16
			     : (uint32_t)(STAGE_BYTES / a.slot_size);
	rc = shmkit_queue_create(r->stage_name, &a, &r->stage);

	if (rc == -EEXIST && (rc = shmkit_queue_open(r->stage_name, &r->stage)) == 0 &&
	    shmkit_queue_max_size(r->stage) != a.max_size) {
		shmkit_queue_close(r->stage);
		r->stage = NULL;
		return -EBADMSG;
	}
	return rc;
}

/* The leave marker to a live keeper (one is started if none lives). 0, or 1 with a message. */
static int leave(struct recv *r)
{
	int rc;

	if (keeper_check(r))
		return 1;
	if (bridge_rstate_hdr(&r->rs, RH_END) == RE_LEFT)
		return 0;
	bridge_put64(r->buf, 0);
	bridge_put64(r->buf + 8, 0);
	if ((rc = shmkit_queue_put(r->stage, r->buf, BRIDGE_STAGE_HDR))) {
		runtime_error(r->stage_name, rc);
		return 1;
	}
	bridge_rstate_set_hdr(&r->rs, RH_END, RE_LEAVING);
	bridge_killpoint("leave-staged");
	return 0;
}

/* The end: the leave marker to the keeper (again, if a killed receiver put one already: the
 * keeper leaves at the first), the keeper's leaving awaited while late EOFs are answered, and
 * what was ours removed. Returns the exit status. */
static int end_phase(struct recv *r, const char *rname, const char *far)
{
	double until;
	bool closed;
	uint32_t max;
	int rc;

	if (bridge_rstate_hdr(&r->rs, RH_END) != RE_LEFT && (rc = leave(r)))
		return 1;
	until = now_seconds() + LINGER_S;
	while (bridge_keeper_alive(r->lock_name) || now_seconds() < until) {
		serve(r, 50);
		if (bridge_stop)
			return 0; /* state kept: a restart finishes the end */
		/* A keeper killed before it left is replaced and asked again. */
		if (!bridge_keeper_alive(r->lock_name) &&
		    bridge_rstate_hdr(&r->rs, RH_END) != RE_LEFT && leave(r))
			return 1;
	}
	if (r->far) { /* our hold on the far queue goes last: now its consumers see EOF */
		shmkit_queue_close(r->far);
		r->far = NULL;
	}
	if (bridge_rstate_hdr(&r->rs, RH_END) != RE_LEFT &&
	    !(far_info(far, &max, &closed) == 0 && closed)) {
		fprintf(stderr, "shmkit: %s: the keeper of %s ended without leaving it: state kept "
				"for a restart\n", r->o->cmd, far);
		return 1;
	}
	if (r->stage)
		shmkit_queue_close(r->stage);
	r->stage = NULL;
	shmkit_queue_unlink(r->stage_name);
	shmkit_lock_unlink(r->lock_name);
	shmkit_array_unlink(rname);
	if (r->o->json)
		printf("{\"received\": %" PRIu64 ", \"duplicates\": %" PRIu64 ", \"malformed\": %" PRIu64
		       "}\n", r->received, r->duplicates, r->malformed);
	else if (!r->o->quiet)
		fprintf(stderr, "shmkit: %s: EOF from every sender; %" PRIu64 " messages put into "
				"%s this run (%" PRIu64 " duplicates dropped)\n",
			r->o->cmd, r->received, far, r->duplicates);
	return 0;
}

/* Where a previous receiver left off: RE_* (RE_LEFT also when the far queue is closed with
 * the end phase begun), or -1 when there is no state yet. */
static int previous_end(const char *rname, bool far_closed)
{
	struct bridge_rstate rs;
	int end;

	if (shmkit_array_open(rname, &rs.a))
		return -1;
	end = (int)bridge_rstate_hdr(&rs, RH_END);
	shmkit_array_close(rs.a);
	return end == RE_LEAVING && far_closed ? RE_LEFT : end;
}

static int hold_far(struct recv *r)
{
	struct shmkit_queue_stats st;
	int rc;

	if ((rc = shmkit_queue_open(r->o->queue, &r->far)) || (rc = shmkit_queue_stats(r->far, &st)))
		return rc;
	if (st.writers_expected != 0) {
		shmkit_queue_close(r->far);
		r->far = NULL;
		return 0;
	}
	return shmkit_queue_attach_writer(r->far);
}

static int setup_socket(struct recv *r)
{
	const struct bridge_opts *o = r->o;
	int zero = 0, rc;
	/* The largest frame a sender makes for messages the far queue can take (send.c's push):
	 * anything longer is refused by ZeroMQ before it is read into memory. */
	int64_t max = (int64_t)BRIDGE_DATA_HDR + 4 + (int64_t)r->far_max;

	if (max < BRIDGE_DATA_HDR + BRIDGE_BATCH_BYTES)
		max = BRIDGE_DATA_HDR + BRIDGE_BATCH_BYTES;
	r->ctx = zmq_ctx_new();
	r->sock = r->ctx ? zmq_socket(r->ctx, ZMQ_ROUTER) : NULL;
	if (!r->sock) {
		fprintf(stderr, "shmkit: %s: zeromq: %s\n", o->cmd, zmq_strerror(errno));
		return 1;
	}
	zmq_setsockopt(r->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(r->sock, ZMQ_MAXMSGSIZE, &max, sizeof(max));
	if (bridge_curve_server(r->sock, o))
		return 1;
	if (o->curve_allow && !(r->zap = bridge_zap_open(r->ctx, o)))
		return 1;
	r->mon = bridge_monitor_open(r->ctx, r->sock, "recv");
	if (zmq_bind(r->sock, o->endpoint)) {
		rc = errno;
		if (rc == EINVAL || rc == EPROTONOSUPPORT || rc == ENODEV || rc == ENOENT)
			return usage_error(o->cmd, "bad endpoint '%s': %s", o->endpoint,
					   zmq_strerror(rc));
		fprintf(stderr, "shmkit: %s: %s: %s\n", o->cmd, o->endpoint, zmq_strerror(rc));
		return 1;
	}
	return 0;
}

int bridge_recv(const struct bridge_opts *o)
{
	struct recv r = { .o = o };
	char *rname = r.rname, why[200];
	int rc, status = 1, end;
	bool far_closed;

	if (bridge_endpoint_check(o->endpoint, why, sizeof(why)))
		return usage_error(o->cmd, "bad endpoint '%s': %s", o->endpoint, why);
	if ((rc = far_info(o->queue, &r.far_max, &far_closed)))
		return runtime_error(o->queue, rc);
	if (bridge_name(r.stage_name, sizeof(r.stage_name), o->queue, ".bridge-q") ||
	    bridge_name(r.lock_name, sizeof(r.lock_name), o->queue, ".bridge-l") ||
	    bridge_name(rname, sizeof(r.rname), o->state ? o->state : o->queue,
			o->state ? "" : ".bridge-r"))
		return usage_error(o->cmd, "'%s': name too long to add the bridge's suffixes",
				   o->queue);
	end = previous_end(rname, far_closed);
	if (far_closed && end != RE_LEFT) {
		/* Nothing could be put there: say so and make nothing. */
		fprintf(stderr, "shmkit: %s: %s is closed for writing (its writers left): nothing "
				"can be forwarded into it\n", o->cmd, o->queue);
		return 1;
	}
	if (!(r.buf = malloc(BRIDGE_STAGE_HDR + (size_t)r.far_max)))
		return runtime_error(o->cmd, -ENOMEM);
	/* Staging made (or found) before the keeper starts, which may have to make it anew
	 * (keeper.c); opened again after. A receiver restarted after the keeper left (killed in
	 * the end phase) only finishes the end. */
	/* The keeper runs on when we die; so it is reaped by whoever adopts it then, and by
	 * nobody needed while we live. */
	signal(SIGCHLD, SIG_IGN);
	if (end != RE_LEFT) {
		if ((rc = open_stage(&r))) {
			runtime_error(r.stage_name, rc);
			goto out;
		}
		shmkit_queue_close(r.stage);
		r.stage = NULL;
		if (bridge_keeper_ensure(o->cmd, o->queue, r.stage_name, r.lock_name, rname))
			goto out;
	}
	if ((rc = bridge_rstate_open(&r.rs, rname, true))) {
		if (rc == -EBUSY)
			fprintf(stderr, "shmkit: %s: %s: another receiving bridge is running for %s\n",
				o->cmd, rname, o->queue);
		else
			runtime_error(rname, rc);
		goto out;
	}
	if (end == RE_LEFT)
		bridge_rstate_set_hdr(&r.rs, RH_END, RE_LEFT);
	if (end != RE_LEFT && ((rc = shmkit_queue_open(r.stage_name, &r.stage)) ||
			       (rc = shmkit_queue_attach_writer(r.stage)))) {
		runtime_error(r.stage_name, rc);
		goto out;
	}
	/* A far queue made for any number of writers (--writers 0) reaches EOF when its last
	 * writer leaves: held by us as well as by the keeper, it outlives a killed keeper, whose
	 * successor then carries on. (A queue made for N writers lets N - 1 successors attach.) */
	if (end != RE_LEFT && (rc = hold_far(&r))) {
		runtime_error(o->queue, rc);
		goto out;
	}
	if ((rc = setup_socket(&r))) {
		status = rc;
		goto out;
	}
	/* The end phase runs once every known sender has forwarded EOF, whenever that became
	 * true: in a frame just now, or before a previous receiver was killed. */
	while (!bridge_rstate_all_eof(&r.rs) && end != RE_LEFT) {
		rc = serve(&r, 200);
		if (rc >= 0 && now_seconds() >= r.next_keeper_check)
			rc = keeper_check(&r);
		if (rc == -ECHILD) {
			fprintf(stderr, "shmkit: %s: the keeper (the writer of %s) died and no other "
					"could start: state kept\n", o->cmd, o->queue);
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
	status = end_phase(&r, rname, o->queue);
out:
	if (r.zap)
		bridge_zap_close(r.zap);
	if (r.mon)
		zmq_close(r.mon);
	if (r.sock)
		zmq_close(r.sock);
	if (r.ctx)
		zmq_ctx_term(r.ctx);
	if (r.stage)
		shmkit_queue_close(r.stage);
	if (r.far)
		shmkit_queue_close(r.far);
	bridge_rstate_close(&r.rs);
	free(r.buf);
	return status;
}
