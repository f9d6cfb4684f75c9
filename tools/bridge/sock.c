/*
 * Endpoints and the connection monitor.
 *
 * The bridge binds and connects only where it is told: an endpoint is required, there is no
 * default, and it is checked here before ZeroMQ sees it so that a typo is a usage error naming
 * it rather than a socket that silently goes nowhere.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bridge/bridge.h"

int bridge_endpoint_check(const char *ep, char *why, size_t n)
{
	const char *hp, *colon;
	char *end;
	long port;

	if (!strncmp(ep, "ipc://", 6)) {
		if (!ep[6]) {
			snprintf(why, n, "no path after ipc://");
			return -EINVAL;
		}
		return 0;
	}
	if (strncmp(ep, "tcp://", 6)) {
		snprintf(why, n, "expected tcp://HOST:PORT or ipc://PATH");
		return -EINVAL;
	}
	hp = ep + 6;
	colon = strrchr(hp, ':');
	if (!colon || colon == hp) {
		snprintf(why, n, "expected tcp://HOST:PORT");
		return -EINVAL;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535) {
		snprintf(why, n, "the port must be 1..65535");
		return -EINVAL;
	}
	return 0;
}

void *bridge_monitor_open(void *ctx, void *sock, const char *tag)
{
	char addr[64];
	void *mon;

	snprintf(addr, sizeof(addr), "inproc://shmkit-bridge-monitor-%s-%p", tag, sock);
	if (zmq_socket_monitor(sock, addr,
			       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
				       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
				       ZMQ_EVENT_CONNECTED))
		return NULL;
	if (!(mon = zmq_socket(ctx, ZMQ_PAIR)))
		return NULL;
	if (zmq_connect(mon, addr)) {
		zmq_close(mon);
		return NULL;
	}
	return mon;
}

int bridge_monitor_read(void *mon, uint32_t *value)
{
	unsigned char ev[6];
	char rest[256];
	int n = zmq_recv(mon, ev, sizeof(ev), ZMQ_DONTWAIT), more;
	size_t sz = sizeof(more);
	uint16_t event;

	*value = 0;
	if (n < 0)
		return -1; /* nothing more now */
	/* The second frame (the endpoint) is not needed. */
	for (;;) {
		more = 0;
		zmq_getsockopt(mon, ZMQ_RCVMORE, &more, &sz);
		if (!more)
			break;
		if (zmq_recv(mon, rest, sizeof(rest), 0) < 0)
			break;
	}
	if (n < 6)
		return 0;
	memcpy(&event, ev, sizeof(event));
	memcpy(value, ev + 2, sizeof(*value));
	switch (event) {
	case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: /* value: an errno (the peer hung up...) */
		return -EPIPE;
	case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		return -EPROTO;
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
		return -EACCES;
	case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
		return 1;
	case ZMQ_EVENT_DISCONNECTED:
		return 2;
	case ZMQ_EVENT_CONNECTED:
		return 3;
	default:
		return 0;
	}
}

const char *bridge_handshake_why(uint32_t value, bool curve_here)
{
	switch (value) {
	case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
		return curve_here ? "the peer does not use CURVE while this end does (give both "
				    "ends keys, or neither)"
				  : "the peer uses CURVE while this end does not (give both ends "
				    "keys, or neither)";
	case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
	case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_HELLO:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_INITIATE:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_WELCOME:
		return "the CURVE handshake failed: the client was given another server public key "
		       "than the receiver's (--curve-server)";
	default:
		if ((value & 0xf0000000u) == ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED)
			return "the receiver's authentication (ZAP) failed";
		return NULL; /* not ZMTP at all, or another socket type */
	}
}
