/*
 * The sending bridge: takes messages from the local queue as a consumer, numbers them, keeps
 * each in the window until the receiver acknowledges it, and sends them in DATA frames of up to
 * BRIDGE_BATCH_MSGS messages (batching is what lets 64-byte messages keep up with ZeroMQ).
 *
 * Crash and cut handling:
 *  - Every message taken is counted in the state object at once (got); acks are recorded as
 *    they come. A bridge restarted after a SIGKILL asks the receiver how far it got (HELLO ->
 *    WELCOME): the difference is what died in the window, counted with
 *    shmkit_queue_count_lost() in the source queue's stats, and the new bridge resumes after
 *    it (its DATA frames say so: floor).
 *  - The window is sent again only when it may have been lost: after a reconnect (ZeroMQ's
 *    monitor says the handshake succeeded again: what was in flight on the old connection may
 *    be gone) or when the receiver reports a gap. On a live connection nothing is lost, only
 *    slow (a slow link, a slow far consumer), so silence is answered with a small probe (the
 *    receiver acks how far it is; acks may be dropped when we do not read), never a resend.
 *    Without a monitor, silence for --resend seconds resends as a last resort.
 *  - The window is bounded: when it is full we stop taking, so the local queue fills and its
 *    producers block (backpressure from the far side).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bridge/bridge.h"
#include "util.h"

#define HELLO_EVERY_S 0.5
#define EOF_EVERY_S 0.2
#define GAP_RESEND_S 0.2 /* at most this often in answer to gap reports */
#define STOP_DRAIN_S 10.0

struct send {
	const struct bridge_opts *o;
	void *ctx, *sock, *mon;
	shmkit_queue *src;
	struct bridge_sstate st;
	struct bridge_window w;
	uint32_t src_max;
	unsigned char *scratch; /* one message from the queue */
	unsigned char *frame;   /* a DATA frame being built */
	size_t frame_cap;
	bool welcomed, eof_src, eof_acked;
	double last_progress, last_gap_resend, eof_since;
	double resend_s; /* silence before resending: doubles while nothing moves (a receiver
			    held up by a full far queue is silent too), back to --resend on an ack */
	uint64_t sent_msgs, resends, lost;
	uint64_t high; /* the highest sequence number ever sent: at or below it is a resend */
	unsigned handshake_failures;
};

static int fail(struct send *s, const char *fmt, const char *arg)
{
	fprintf(stderr, "shmkit: %s: ", s->o->cmd);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return -EPROTO;
}

/* Connection events: a peer that is not a ZeroMQ bridge receiver, or whose CURVE settings do
 * not match ours, fails the handshake; ZeroMQ's monitor says why. */
static int watch(struct send *s)
{
	bool curve = s->o->curve_server != NULL;
	const char *why;
	uint32_t value;
	int ev;

	while (s->mon && (ev = bridge_monitor_read(s->mon, &value)) != -1) {
		if (ev == -EACCES)
			return fail(s, "%s refused our CURVE key (it is not in the receiver's "
				       "--curve-allow)", s->o->endpoint);
		why = ev == -EPROTO ? bridge_handshake_why(value, curve) : NULL;
		if (why) {
			char msg[300];

			/* A moment before we hang up: the receiver reads the same mismatch from
			 * our greeting and reports it (a hang-up first would be all it saw). */
			usleep(300 * 1000);
			snprintf(msg, sizeof(msg), "%s: %s", s->o->endpoint, why);
			return fail(s, "%s", msg);
		}
		if ((ev == -EPROTO || ev == -EPIPE) && ++s->handshake_failures >= 3 && !s->welcomed)
			/* A CURVE server that cannot open our hello (sealed for another key) says
			 * nothing and hangs up: that is what a client with a wrong key sees. */
			return fail(s, curve ? "%s: the receiver hung up during the CURVE handshake "
					       "three times: --curve-server is not its public key, or it "
					       "does not use CURVE"
					     : "%s does not speak ZeroMQ's protocol for a plain bridge "
					       "receiver (handshake failed three times): it may expect "
					       "CURVE (give --curve-server)",
				    s->o->endpoint);
		if (ev == 1) {
			/* (Re)connected: what was in flight on the old connection may be gone. */
			s->handshake_failures = 0;
			if (s->welcomed)
				s->w.sent = s->w.acked;
		}
	}
	return 0;
}

/* Send the window's messages after w.sent in DATA frames until ZeroMQ would block. */
static int push(struct send *s)
{
	while (s->w.sent < s->w.last) {
		uint64_t first = s->w.sent + 1, seq;
		size_t len = BRIDGE_DATA_HDR;
		uint32_t n = 0;

		for (seq = first; seq <= s->w.last && n < BRIDGE_BATCH_MSGS; seq++, n++) {
			const struct bridge_slot *m = bridge_window_at(&s->w, seq);

			if (n > 0 && len + 4 + m->len > BRIDGE_BATCH_BYTES)
				break;
			if (len + 4 + m->len > s->frame_cap) {
				size_t cap = len + 4 + m->len;
				unsigned char *p = realloc(s->frame, cap);

				if (!p)
					return -ENOMEM;
				s->frame = p;
				s->frame_cap = cap;
			}
			len += bridge_put_record(s->frame + len, m->data, m->len);
		}
		bridge_encode_data_hdr(s->frame, s->st.id, s->w.acked + 1, first, n);
		if (zmq_send(s->sock, s->frame, len, ZMQ_DONTWAIT) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0; /* ZeroMQ's buffer is full: later */
			return -errno;
		}
		s->w.sent = first + n - 1;
		/* Every message at or below the highest ever sent is a resend, whatever made it. */
		if (s->w.sent <= s->high) {
			s->resends += n;
		} else {
			s->resends += s->high >= first ? s->high - first + 1 : 0;
			s->sent_msgs += s->w.sent - (s->high >= first ? s->high : first - 1);
			s->high = s->w.sent;
		}
	}
	return 0;
}

/* Take what the local queue has, up to the window and one batch; wait at most wait_ns for the
 * first message (0: do not wait). Returns messages taken or negative errno. */
static int take(struct send *s, int64_t wait_ns)
{
	int n = 0, rc;

	while (!s->eof_src && !bridge_window_full(&s->w) && n < BRIDGE_BATCH_MSGS) {
		unsigned char *p;

		rc = n == 0 && wait_ns > 0
			     ? shmkit_queue_get_timeout(s->src, s->scratch, s->src_max, wait_ns)
			     : shmkit_queue_get_try(s->src, s->scratch, s->src_max);
		if (rc == -EAGAIN || rc == -ETIMEDOUT)
			break;
		if (rc == -EPIPE) {
			s->eof_src = true;
			break;
		}
		if (rc < 0)
			return rc;
		/* Counted before anything else can fail: from here a crash is a counted loss. */
		bridge_sstate_got(&s->st, s->w.last + 1);
		if (!(p = bridge_window_reserve(&s->w, (uint32_t)rc))) {
			/* Out of memory with a message in hand: say so; a restart counts it. */
			return -ENOMEM;
		}
		memcpy(p, s->scratch, (size_t)rc);
		bridge_window_push(&s->w, (uint32_t)rc);
		n++;
	}
	return n;
}

/* Handle one frame from the receiver. */
static int on_frame(struct send *s, const void *data, size_t len)
{
	struct bridge_frame f;
	char why[300];
	int rc = bridge_decode(data, len, &f);

	if (rc == -EPROTO)
		return fail(s, "%s answered in something other than the shmkit bridge protocol",
			    s->o->endpoint);
	if (rc == -EPROTONOSUPPORT)
		return fail(s, "%s speaks another version of the shmkit bridge protocol",
			    s->o->endpoint);
	if (rc)
		return fail(s, "%s sent a malformed frame", s->o->endpoint);
	if (f.id != s->st.id && f.type != BT_REFUSE)
		return 0; /* meant for an earlier identity of ours: stale */
	switch (f.type) {
	case BT_WELCOME:
		if (s->welcomed)
			return 0; /* an answer to a repeated hello */
		if (f.b < s->src_max) {
			snprintf(why, sizeof(why), "%s takes messages up to %" PRIu64 " bytes, %s up "
				 "to %u: some could not be delivered", s->o->endpoint, f.b,
				 s->o->queue, s->src_max);
			return fail(s, "%s", why);
		}
		if (f.a != s->st.got)
			return fail(s, "%s resumes this sender elsewhere than where it stands (a "
				       "state object from elsewhere?)", s->o->endpoint);
		if (f.c < s->st.counted)
			return fail(s, "%s counts fewer losses of this sender than it already "
				       "counted (a state object from elsewhere?)", s->o->endpoint);
		/* The receiver decided what died in a predecessor's window (recv.c): we count
		 * what we have not counted yet, so a loss is counted once however often we
		 * restart. A kill between the count and its record counts it again. */
		s->lost = f.c - s->st.counted;
		if (s->lost) {
			shmkit_queue_count_lost(s->src, s->lost);
			bridge_killpoint("lost-counted");
			bridge_sstate_counted(&s->st, f.c);
			if (!s->o->quiet)
				fprintf(stderr, "shmkit: %s: a previous bridge died with %" PRIu64
						" messages unacknowledged: lost, counted in %s's stats\n",
					s->o->cmd, s->lost, s->o->queue);
		}
		/* Resume after everything taken so far: delivered, or lost and counted. */
		bridge_sstate_acked(&s->st, s->st.got);
		s->w.acked = s->w.last = s->w.sent = s->high = s->st.got;
		s->welcomed = true;
		bridge_killpoint("welcomed");
		return 0;
	case BT_ACK:
		if (!s->welcomed)
			return 0;
		if (!bridge_window_ack(&s->w, f.a))
			return fail(s, "%s acknowledged messages never sent", s->o->endpoint);
		if (f.a > s->st.acked) {
			bridge_sstate_acked(&s->st, f.a);
			s->last_progress = now_seconds();
			s->resend_s = s->o->resend_s;
		}
		if ((f.b & BA_GAP) && now_seconds() - s->last_gap_resend > GAP_RESEND_S) {
			s->last_gap_resend = now_seconds();
			s->w.sent = s->w.acked; /* push() counts what goes again */
		}
		return 0;
	case BT_EOFACK:
		s->eof_acked = true;
		return 0;
	case BT_REFUSE:
		snprintf(why, sizeof(why), "%s refused us: %.*s", s->o->endpoint,
			 (int)(f.body_len > 200 ? 200 : f.body_len), (const char *)f.body);
		return fail(s, "%s", why);
	default:
		return fail(s, "%s sent an unexpected frame", s->o->endpoint);
	}
}

/* Wait at most ms for frames (and monitor events), handle all that came. */
static int listen_for(struct send *s, long ms)
{
	zmq_pollitem_t it[2] = { { s->sock, 0, ZMQ_POLLIN, 0 }, { s->mon, 0, ZMQ_POLLIN, 0 } };
	unsigned char buf[512];
	int n, rc;

	if (s->w.sent < s->w.last && s->welcomed)
		it[0].events |= ZMQ_POLLOUT;
	n = zmq_poll(it, s->mon ? 2 : 1, ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (s->mon && (it[1].revents & ZMQ_POLLIN) && (rc = watch(s)))
		return rc;
	while (it[0].revents & ZMQ_POLLIN) {
		int len = zmq_recv(s->sock, buf, sizeof(buf), ZMQ_DONTWAIT);

		if (len < 0)
			break;
		if ((rc = on_frame(s, buf, len > (int)sizeof(buf) ? sizeof(buf) : (size_t)len)))
			return rc;
	}
	return 0;
}

static int hello(struct send *s)
{
	unsigned char out[64];
	double start = now_seconds(), next = 0;
	int rc;

	while (!s->welcomed) {
		if (bridge_stop)
			return -EINTR;
		if (now_seconds() >= next) {
			zmq_send(s->sock, out,
				 bridge_encode(out, BT_HELLO, s->st.id, s->src_max, s->o->window,
					       s->st.got),
				 ZMQ_DONTWAIT);
			next = now_seconds() + HELLO_EVERY_S;
		}
		if (s->o->connect_s > 0 && now_seconds() - start > s->o->connect_s)
			return fail(s, "no shmkit bridge receiver answered at %s (--connect-timeout)",
				    s->o->endpoint);
		if ((rc = listen_for(s, 100)))
			return rc;
	}
	return 0;
}

/* Every message acknowledged, EOF sent again and again and never acknowledged: the receiver
 * ended (it ends once every sender's EOF arrived, and its acknowledgement to us was lost) or
 * is unreachable. Not waited for forever: the state stays, so a rerun retries. */
static int eof_unanswered(struct send *s)
{
	fprintf(stderr, "shmkit: %s: every message was acknowledged, but EOF was not in %.0f s "
			"(--connect-timeout): the receiver ended or is unreachable. Run again to "
			"retry; if the receiver has ended, remove %s\n",
		s->o->cmd, s->o->connect_s, s->st.name);
	return -EPROTO;
}

static int run(struct send *s)
{
	unsigned char out[64];
	double next_eof = 0, stop_at = 0;
	int rc;

	if ((rc = hello(s)))
		return rc;
	s->last_progress = now_seconds();
	s->resend_s = s->o->resend_s;
	while (!s->eof_acked) {
		bool idle = bridge_window_count(&s->w) == 0 && s->w.sent == s->w.last;

		if (bridge_stop && !stop_at)
			stop_at = now_seconds() + STOP_DRAIN_S;
		if (stop_at && (idle || now_seconds() > stop_at))
			return -EINTR;
		/* Take: wait on the queue when there is nothing else to do. */
		if (!stop_at && (rc = take(s, idle && !s->eof_src ? 50 * 1000000LL : 0)) < 0)
			return rc;
		if ((rc = push(s)))
			return rc;
		if (bridge_window_count(&s->w) &&
		    now_seconds() - s->last_progress > s->resend_s) {
			/* Silence: ask how far the receiver is (its acks may have been dropped).
			 * Only without a monitor, which would tell us of a reconnect, resend. */
			zmq_send(s->sock, out, bridge_encode(out, BT_PROBE, s->st.id, s->w.sent, 0, 0),
				 ZMQ_DONTWAIT);
			if (!s->mon)
				s->w.sent = s->w.acked;
			s->last_progress = now_seconds();
			if (s->resend_s < 30)
				s->resend_s *= 2;
		}
		if (bridge_window_count(&s->w) == 0)
			s->last_progress = now_seconds();
		if (s->eof_src && bridge_window_count(&s->w) == 0 && now_seconds() >= next_eof) {
			if (!s->eof_since)
				s->eof_since = now_seconds();
			if (s->o->connect_s > 0 && now_seconds() - s->eof_since > s->o->connect_s)
				return eof_unanswered(s);
			zmq_send(s->sock, out, bridge_encode(out, BT_EOF, s->st.id, s->w.last, 0, 0),
				 ZMQ_DONTWAIT);
			next_eof = now_seconds() + EOF_EVERY_S;
		}
		/* Listen: block when the window is full (for acks) or the source is done. */
		rc = listen_for(s, bridge_window_full(&s->w) || s->eof_src || stop_at ? 20 : 0);
		if (rc)
			return rc;
	}
	return 0;
}

int bridge_send(const struct bridge_opts *o)
{
	struct send s = { .o = o };
	char sname[SHMKIT_NAME_MAX + 2], why[200];
	int rc, status = 1, zero = 0;
	int64_t reply_max = 4096; /* the receiver's frames are small (recv.c) */

	if (bridge_endpoint_check(o->endpoint, why, sizeof(why)))
		return usage_error(o->cmd, "bad endpoint '%s': %s", o->endpoint, why);
	if (bridge_name(sname, sizeof(sname), o->state ? o->state : o->queue,
			o->state ? "" : ".bridge-s"))
		return usage_error(o->cmd, "'%s': name too long to add '.bridge-s' (use --state)",
				   o->state ? o->state : o->queue);
	if ((rc = shmkit_queue_open(o->queue, &s.src)))
		return runtime_error(o->queue, rc);
	s.src_max = shmkit_queue_max_size(s.src);
	if (!(s.scratch = malloc(s.src_max ? s.src_max : 1))) {
		runtime_error(o->queue, -ENOMEM);
		goto out;
	}
	if ((rc = bridge_sstate_open(&s.st, sname))) {
		if (rc == -EBUSY)
			fprintf(stderr, "shmkit: %s: %s: another send bridge is running with this "
					"state\n", o->cmd, sname);
		else
			runtime_error(sname, rc);
		goto out;
	}
	if ((rc = bridge_window_init(&s.w, o->window, s.st.got))) {
		runtime_error(o->cmd, rc);
		goto out;
	}
	s.ctx = zmq_ctx_new();
	s.sock = s.ctx ? zmq_socket(s.ctx, ZMQ_DEALER) : NULL;
	if (!s.sock) {
		fprintf(stderr, "shmkit: %s: zeromq: %s\n", o->cmd, zmq_strerror(errno));
		goto out;
	}
	zmq_setsockopt(s.sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s.sock, ZMQ_MAXMSGSIZE, &reply_max, sizeof(reply_max));
	if (bridge_curve_client(s.sock, o))
		goto out;
	s.mon = bridge_monitor_open(s.ctx, s.sock, "send");
	if (zmq_connect(s.sock, o->endpoint)) {
		rc = errno;
		status = usage_error(o->cmd, "bad endpoint '%s': %s", o->endpoint, zmq_strerror(rc));
		goto out;
	}
	rc = run(&s);
	if (rc == 0) {
		/* EOF delivered: this sender's story is over, its state with it. */
		bridge_sstate_remove(&s.st);
		status = 0;
	} else if (rc == -EINTR) {
		status = 0; /* stopped by a signal: the state stays, a restart resumes */
	} else if (rc != -EPROTO) {
		runtime_error(o->cmd, rc);
	}
	if (o->json)
		printf("{\"sender\": \"%" PRIx64 "\", \"sent\": %" PRIu64 ", \"resent\": %" PRIu64
		       ", \"lost_before_restart\": %" PRIu64
		       ", \"last_seq\": %" PRIu64 ", \"acked\": %" PRIu64 ", \"eof\": %d}\n",
		       s.st.id, s.sent_msgs, s.resends, s.lost, s.w.last, s.w.acked,
		       s.eof_acked);
out:
	if (s.mon)
		zmq_close(s.mon);
	if (s.sock)
		zmq_close(s.sock);
	if (s.ctx)
		zmq_ctx_term(s.ctx);
	bridge_window_free(&s.w);
	bridge_sstate_close(&s.st);
	if (s.src)
		shmkit_queue_close(s.src);
	free(s.scratch);
	free(s.frame);
	return status;
}
