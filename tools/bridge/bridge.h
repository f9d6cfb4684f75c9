/*
 * shmkit-bridge (`shmkit bridge`): a queue's messages forwarded to a queue on another host
 * over ZeroMQ, each delivered once and in order per sending bridge, across crashes of either
 * bridge and cuts of the connection.
 *
 * The parts, one job per file:
 *   main.c     the program: options, the two bridges, keygen, bench
 *   bench.c    the bridge against bare ZeroMQ on loopback
 *   admin.c    senders and forget: the operator's view of a receiver's senders
 *   proto.c    the frames on the wire: encoding and strict decoding
 *   window.c   the sender's window: messages sent and not yet acknowledged
 *   state.c    what survives a crash: the sender's identity and counters, the receiver's
 *              per-sender table (shmkit Arrays named after the queues)
 *   send.c     the sending bridge: local queue -> window -> ZeroMQ
 *   recv.c     the receiving bridge: ZeroMQ -> dedup -> staging queue
 *   keeper.c   the far queue's writer: staging queue -> far queue, outliving the receiver
 *   curve.c    CURVE keys and the ZAP handler that admits only listed clients
 *   sock.c     endpoint checks, socket options, the connection monitor
 *
 * How nothing is lost or doubled (README "Beyond one host" has the long form):
 *  - The sender numbers each message it gets (seq 1, 2, ...), keeps it in a window of at most
 *    --window unacknowledged messages and resends the window when acks stop coming.
 *  - The receiver takes a sender's messages only in sequence (seq == last + 1), puts each into
 *    the staging queue and then records `last`; duplicates (seq <= last) are acknowledged and
 *    dropped. A receiver killed between the put and the record hears the message again; the
 *    keeper drops the second copy by the same sequence rule.
 *  - The keeper, a small process the first receiver forks, is the far queue's one writer: a
 *    receiving bridge killed and restarted is not a writer leaving.
 */
#ifndef SHMKIT_TOOLS_BRIDGE_H
#define SHMKIT_TOOLS_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmkit.h"

#define BRIDGE_MAX_SENDERS 64      /* send bridges one receiver remembers */
#define BRIDGE_WINDOW_DEFAULT 1024 /* unacknowledged messages a sender keeps */
#define BRIDGE_WINDOW_MAX 65536
#define BRIDGE_BATCH_BYTES (64u << 10) /* a DATA frame carries up to this much payload... */
#define BRIDGE_BATCH_MSGS 512          /* ...or this many messages */
#define BRIDGE_STAGE_HDR 16            /* staging message: sender id, seq, then the payload */

/* ------------------------------------------------------------------------------------------- */
/* Options shared by both commands.                                                            */

struct bridge_opts {
	const char *cmd;         /* "bridge send" or "bridge recv", for messages */
	const char *queue;       /* local queue name */
	const char *endpoint;    /* ZeroMQ endpoint */
	const char *state;       /* state object name (NULL: derived from the queue's) */
	unsigned window;         /* --window */
	double resend_s;         /* silence after which the window is sent again */
	double connect_s;        /* sender: give up when no receiver answers for this long (0: never) */
	const char *curve_key;   /* our key file (public + secret), or NULL */
	const char *curve_server; /* sender: the receiver's public key file */
	const char *curve_allow; /* receiver: file of client public keys admitted */
	bool quiet;
	bool json;               /* print a one-line JSON summary at the end */
};

int bridge_send(const struct bridge_opts *o);
int bridge_recv(const struct bridge_opts *o);
/* `senders` and `forget` (admin.c): the exit status. */
int bridge_senders(const char *queue, const char *state, bool json);
int bridge_forget(const char *queue, const char *state, const char *id);
/* `bench`: bare ZeroMQ against the bridge on loopback (bench.c); the exit status. */
int bridge_bench(bool quick, bool json);

/* ------------------------------------------------------------------------------------------- */
/* Frames (proto.c). Every frame starts with a 16-byte header: "SKB2" (the digit is the
 * protocol's version), type, 3 bytes zero, the sender's 64-bit identity; integers
 * little-endian.                                                                              */

enum bridge_type {
	BT_HELLO = 1,   /* s->r: max_size u32, window u32, got u64 (the last sequence number it
			   ever gave: the receiver resumes after it, see recv.c) */
	BT_WELCOME = 2, /* r->s: last u64, far max_size u32, lost u64 (all this sender's messages
			   the receiver decided were lost, since the sender began) */
	BT_DATA = 3,    /* s->r: floor u64, first u64, count u32, then count x (len u32, bytes) */
	BT_ACK = 4,     /* r->s: last u64, flags u32 (BA_*) */
	BT_EOF = 5,     /* s->r: last u64: every message up to it was acknowledged */
	BT_EOFACK = 6,  /* r->s */
	BT_REFUSE = 7,  /* r->s: code u32 (errno), then a reason as text */
	BT_PROBE = 8,   /* s->r: sent u64: "how far are you? I sent up to here", answered with an
			   ACK (acks may be dropped), BA_GAP when short of `sent` (see recv.c) */
};
#define BA_GAP 1u

#define BRIDGE_HDR 16

struct bridge_frame {
	enum bridge_type type;
	uint64_t id;
	uint64_t a, b, c;  /* HELLO: max_size, window, got; WELCOME: last, far max_size, lost;
			      DATA: floor, first; ACK: last, flags; EOF: last; REFUSE: code */
	uint32_t count;    /* DATA */
	const unsigned char *body; /* DATA: the records; REFUSE: the reason */
	size_t body_len;
};

/* Decode buf[0..len) into *f. 0, -EPROTO when it is not a bridge frame at all (magic),
 * -EPROTONOSUPPORT when it is one of another protocol version, -EBADMSG when it claims to be
 * one but is malformed (DATA records are checked against the body here, once). */
int bridge_decode(const void *buf, size_t len, struct bridge_frame *f);
/* Encode a frame without body into buf (>= 64 bytes); returns its length. */
size_t bridge_encode(void *buf, enum bridge_type t, uint64_t id, uint64_t a, uint64_t b,
		     uint64_t c);
/* A REFUSE frame with text (truncated to fit n). */
size_t bridge_encode_refuse(void *buf, size_t n, uint64_t id, int code, const char *why);
/* DATA: write the header for `count` records into buf (BRIDGE_HDR + 20 bytes), the records
 * follow (bridge_put_record). */
#define BRIDGE_DATA_HDR (BRIDGE_HDR + 20)
void bridge_encode_data_hdr(void *buf, uint64_t id, uint64_t floor, uint64_t first,
			    uint32_t count);
/* Append one record at buf: returns the bytes written (4 + len). */
size_t bridge_put_record(void *buf, const void *msg, uint32_t len);
/* Walk DATA records: *pos starts at 0; returns 1 with the next record in (*msg, *len), 0 at
 * the end. Only for frames bridge_decode accepted. */
int bridge_next_record(const struct bridge_frame *f, size_t *pos, const unsigned char **msg,
		       uint32_t *len);
uint64_t bridge_get64(const unsigned char *p);
uint32_t bridge_get32(const unsigned char *p);
void bridge_put64(unsigned char *p, uint64_t v);
void bridge_put32(unsigned char *p, uint32_t v);

/* ------------------------------------------------------------------------------------------- */
/* The sender's window (window.c): sequence numbers acked+1 .. last, at most cap of them.      */

struct bridge_window {
	struct bridge_slot {
		uint32_t len, size;
		unsigned char *data;
	} *slot;
	unsigned cap;
	uint64_t acked; /* everything up to here the receiver has */
	uint64_t last;  /* the newest message taken in */
	uint64_t sent;  /* sent (perhaps not yet acked) up to here; <= last */
};

int bridge_window_init(struct bridge_window *w, unsigned cap, uint64_t base);
void bridge_window_free(struct bridge_window *w);
static inline unsigned bridge_window_count(const struct bridge_window *w)
{
	return (unsigned)(w->last - w->acked);
}
static inline bool bridge_window_full(const struct bridge_window *w)
{
	return bridge_window_count(w) >= w->cap;
}
/* A slot for seq last+1 with room for `len` bytes (the window must not be full); NULL when out
 * of memory. bridge_window_push() then makes it part of the window. */
unsigned char *bridge_window_reserve(struct bridge_window *w, uint32_t len);
void bridge_window_push(struct bridge_window *w, uint32_t len);
/* The message of sequence number seq (acked < seq <= last). */
const struct bridge_slot *bridge_window_at(const struct bridge_window *w, uint64_t seq);
/* The receiver has everything up to `upto`: drop it. false when upto is beyond what was taken
 * (a confused peer; nothing changes). */
bool bridge_window_ack(struct bridge_window *w, uint64_t upto);

/* ------------------------------------------------------------------------------------------- */
/* State that survives a crash (state.c).                                                      */

/* The sender's: a shmkit Array, held (its lock) by the running bridge. */
struct bridge_sstate {
	shmkit_array *a;
	char name[SHMKIT_NAME_MAX + 2];
	uint64_t id;
	uint64_t got;    /* messages taken from the queue (the last sequence number assigned) */
	uint64_t acked;  /* acknowledged (as far as it knew) */
	uint64_t counted; /* losses the receiver decided that we counted in the queue's stats */
	bool resumed;    /* it existed: a previous bridge died or stopped */
};

/* Open or create the sender's state; -EBUSY when a live bridge holds it. */
int bridge_sstate_open(struct bridge_sstate *s, const char *name);
void bridge_sstate_got(struct bridge_sstate *s, uint64_t got);
void bridge_sstate_acked(struct bridge_sstate *s, uint64_t acked);
void bridge_sstate_counted(struct bridge_sstate *s, uint64_t counted);
/* Done (EOF delivered): remove it. */
void bridge_sstate_remove(struct bridge_sstate *s);
void bridge_sstate_close(struct bridge_sstate *s);

/* The receiver's: a table of senders in a shmkit Array, and the cells the keeper uses. */
struct bridge_rstate {
	shmkit_array *a;
	char name[SHMKIT_NAME_MAX + 2];
};
/* Header cells, then per sender the slot fields (cells of an Array). */
enum {
	RH_MAGIC,
	RH_KEEPER,     /* the keeper's pid (for display) */
	RH_END,        /* the end phase: RE_* */
	RH_STAGE_LOST, /* staging's lost_dead_consumer already accounted for (keeper.c) */
	RH_HAND_ID,    /* the message the keeper holds (peeked, not yet released): sender... */
	RH_HAND_SEQ,   /* ...and sequence number; 0 when it holds none */
	RS_HDR
};
enum { RE_RUNNING, RE_LEAVING /* leave marker staged */, RE_LEFT /* the keeper left */ };
enum {
	RS_ID,
	RS_LAST,      /* the last sequence number staged (or skipped, see recv.c) */
	RS_EOF,       /* 1: EOF forwarded; 2: forgotten by the operator */
	RS_KEPT,      /* the last sequence number the keeper put into the far queue */
	RS_LOST,      /* messages of this sender decided lost (skipped at its hello) */
	RS_SKIP_TO,   /* a skip in progress: to this sequence number... */
	RS_SKIP_LOST, /* ...making RS_LOST this (see bridge_rstate_skip) */
	RS_FIELDS
};
#define RS_CELLS (RS_HDR + RS_FIELDS * BRIDGE_MAX_SENDERS)

/* Open or create; hold=true takes its lock (-EBUSY when a live receiver holds it). */
int bridge_rstate_open(struct bridge_rstate *s, const char *name, bool hold);
/* The slot of sender id, created when `add` (-ENOSPC when the table is full; -ENOENT when
 * absent and not `add`). */
int bridge_rstate_slot(struct bridge_rstate *s, uint64_t id, bool add);
int64_t bridge_rstate_get(struct bridge_rstate *s, int slot, int field);
void bridge_rstate_set(struct bridge_rstate *s, int slot, int field, int64_t v);
int64_t bridge_rstate_hdr(struct bridge_rstate *s, int cell);
void bridge_rstate_set_hdr(struct bridge_rstate *s, int cell, int64_t v);
/* Resume sender `slot` after sequence number `to`: what it has not delivered up to there is
 * lost. One idempotent step that a kill at any point leaves either undone or completed (by
 * the next call or bridge_rstate_settle). Returns the sender's total lost. */
uint64_t bridge_rstate_skip(struct bridge_rstate *s, int slot, uint64_t to);
/* Complete a skip a killed receiver left half done. */
void bridge_rstate_settle(struct bridge_rstate *s, int slot);
/* 1 when at least one sender is known and every known sender has forwarded EOF (or was
 * forgotten). */
int bridge_rstate_all_eof(struct bridge_rstate *s);
void bridge_rstate_close(struct bridge_rstate *s);

/* Names derived from a queue's: NAME + suffix, -ENAMETOOLONG when it does not fit. */
int bridge_name(char *out, size_t n, const char *queue, const char *suffix);

/* ------------------------------------------------------------------------------------------- */
/* The keeper (keeper.c).                                                                     */

/* Make sure a keeper runs for far queue `far` with staging queue `stage` and receiver state
 * `rstate`: start one (`shmkit-bridge keeper ...`, posix_spawn: safe with ZeroMQ's threads
 * running) unless a live one holds `lock`, and wait until it says it is ready. 0, or negative
 * errno with a message printed. */
int bridge_keeper_ensure(const char *cmd, const char *far, const char *stage, const char *lock,
			 const char *rstate);
/* The keeper itself (`shmkit-bridge keeper FAR STAGE LOCK RSTATE`, its report on fd 3): the
 * exit status. */
int bridge_keeper_main(const char *far, const char *stage, const char *lock, const char *rstate);
/* Is the keeper alive (its lock held)? */
bool bridge_keeper_alive(const char *lock);

/* ------------------------------------------------------------------------------------------- */
/* Sockets and CURVE (sock.c, curve.c).                                                       */

/* Check an endpoint's form before ZeroMQ sees it: 0, or -EINVAL with why. */
int bridge_endpoint_check(const char *ep, char *why, size_t n);
/* Apply the CURVE options to a socket: the receiver as server, the sender as client. 0 or -1
 * with a message printed. */
int bridge_curve_server(void *sock, const struct bridge_opts *o);
int bridge_curve_client(void *sock, const struct bridge_opts *o);
/* The receiver's ZAP handler (only with --curve-allow): a socket to poll, and one request
 * handled when it is readable. */
void *bridge_zap_open(void *ctx, const struct bridge_opts *o);
void bridge_zap_handle(void *zap);
void *bridge_zap_socket(void *zap);
void bridge_zap_close(void *zap);
/* `shmkit bridge keygen PREFIX`: PREFIX.key (0600) and PREFIX.pub. */
int bridge_keygen(const char *prefix);

/* Watch a socket's connection events: the sender learns that the peer speaks something other
 * than ZMTP (handshake failed) or the key was refused. Returns a socket to poll or NULL. */
void *bridge_monitor_open(void *ctx, void *sock, const char *tag);
/* Read one event, its value (a ZMQ_PROTOCOL_ERROR_*, a ZAP status) into *value: 0 nothing
 * notable, -1 nothing to read, -EPROTO handshake failed (a ZMTP reason in *value), -EPIPE
 * handshake failed without a reason (the peer hung up), -EACCES authentication refused, 1
 * handshake succeeded, 2 disconnected, 3 TCP connected (handshake to come). */
int bridge_monitor_read(void *mon, uint32_t *value);
/* What a failed handshake's value means, said for the side that reads it (curve_here: this
 * end uses CURVE); NULL when the peer seems not to speak ZeroMQ at all. */
const char *bridge_handshake_why(uint32_t value, bool curve_here);

extern volatile int bridge_stop; /* set by SIGINT/SIGTERM: finish what is in hand and exit */

/* Fault injection for the tests: when the environment's SHMKIT_BRIDGE_KILL_AT names this
 * point, the process SIGKILLs itself here (so a test kills at an exact moment). */
void bridge_killpoint(const char *point);

#endif
