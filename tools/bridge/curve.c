/*
 * CURVE, ZeroMQ's own encryption and authentication (CurveZMQ), when both ends are given keys.
 *
 * Key files: `shmkit bridge keygen PREFIX` writes PREFIX.key (mode 0600: "public KEY" and
 * "secret KEY" lines) and PREFIX.pub ("public KEY"); keys are ZeroMQ's 40-character Z85.
 *  - receiver: --curve-key server.key. Every connection is encrypted; with --curve-allow FILE
 *    (public keys, one per line, e.g. cat'ed .pub files) only those clients are admitted, by
 *    the ZAP handler below; without it any client that knows the server's public key may send.
 *  - sender: --curve-server server.pub, and --curve-key client.key to be admitted by a
 *    receiver's --curve-allow (without it, a throwaway key pair: encrypted, not authenticated).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "bridge/bridge.h"

#define KEY_LEN 40
#define MAX_ALLOWED 256

struct zap {
	void *sock;
	unsigned char allowed[MAX_ALLOWED][32];
	unsigned n;
	bool quiet;
};

/* Read "public KEY" / "secret KEY" (or a bare key, taken as public) from a file. */
static int read_keys(const char *cmd, const char *path, char pub[KEY_LEN + 1],
		     char sec[KEY_LEN + 1])
{
	char line[256], word[32], key[128];
	FILE *f = fopen(path, "r");

	pub[0] = sec[0] = 0;
	if (!f) {
		fprintf(stderr, "shmkit: %s: %s: %s\n", cmd, path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%31s %127s", word, key) == 2) {
			if (strlen(key) != KEY_LEN)
				goto bad;
			if (!strcmp(word, "public"))
				memcpy(pub, key, KEY_LEN + 1);
			else if (!strcmp(word, "secret"))
				memcpy(sec, key, KEY_LEN + 1);
			else
				goto bad;
		} else if (sscanf(line, "%127s", key) == 1) {
			if (strlen(key) != KEY_LEN)
				goto bad;
			memcpy(pub, key, KEY_LEN + 1);
		}
	}
	fclose(f);
	return 0;
bad:
	fclose(f);
	fprintf(stderr, "shmkit: %s: %s: not a key file (lines 'public KEY' / 'secret KEY', keys of "
			"40 Z85 characters)\n", cmd, path);
	return -1;
}

static int need_curve(const char *cmd)
{
	if (zmq_has("curve"))
		return 0;
	fprintf(stderr, "shmkit: %s: this libzmq was built without CURVE\n", cmd);
	return -1;
}

int bridge_curve_server(void *sock, const struct bridge_opts *o)
{
	char pub[KEY_LEN + 1], sec[KEY_LEN + 1];
	int one = 1;

	if (!o->curve_key) {
		if (o->curve_allow) {
			fprintf(stderr, "shmkit: %s: --curve-allow needs --curve-key\n", o->cmd);
			return -1;
		}
		return 0;
	}
	if (need_curve(o->cmd) || read_keys(o->cmd, o->curve_key, pub, sec))
		return -1;
	if (!sec[0]) {
		fprintf(stderr, "shmkit: %s: %s: no secret key in it\n", o->cmd, o->curve_key);
		return -1;
	}
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, KEY_LEN)) {
		fprintf(stderr, "shmkit: %s: CURVE: %s\n", o->cmd, zmq_strerror(errno));
		return -1;
	}
	if (o->curve_allow) {
		/* Handshakes wait for the ZAP handler's verdict; without a handler they would
		 * all be let in. */
		zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "shmkit", 6);
	}
	return 0;
}

int bridge_curve_client(void *sock, const struct bridge_opts *o)
{
	char spub[KEY_LEN + 1], ssec[KEY_LEN + 1], pub[KEY_LEN + 1], sec[KEY_LEN + 1];

	if (!o->curve_server) {
		if (o->curve_key) {
			fprintf(stderr, "shmkit: %s: --curve-key needs --curve-server (the "
					"receiver's public key)\n", o->cmd);
			return -1;
		}
		return 0;
	}
	if (need_curve(o->cmd) || read_keys(o->cmd, o->curve_server, spub, ssec))
		return -1;
	if (!spub[0]) {
		fprintf(stderr, "shmkit: %s: %s: no public key in it\n", o->cmd, o->curve_server);
		return -1;
	}
	if (o->curve_key) {
		if (read_keys(o->cmd, o->curve_key, pub, sec))
			return -1;
		if (!pub[0] || !sec[0]) {
			fprintf(stderr, "shmkit: %s: %s: needs both its public and secret key\n",
				o->cmd, o->curve_key);
			return -1;
		}
	} else if (zmq_curve_keypair(pub, sec)) {
		fprintf(stderr, "shmkit: %s: CURVE: %s\n", o->cmd, zmq_strerror(errno));
		return -1;
	}
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, spub, KEY_LEN) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, KEY_LEN) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, KEY_LEN)) {
		fprintf(stderr, "shmkit: %s: CURVE: %s\n", o->cmd, zmq_strerror(errno));
		return -1;
	}
	return 0;
}

void *bridge_zap_open(void *ctx, const struct bridge_opts *o)
{
	char pub[KEY_LEN + 1], line[256], key[128];
	struct zap *z = calloc(1, sizeof(*z));
	FILE *f;

	(void)pub;
	if (!z)
		return NULL;
	z->quiet = o->quiet;
	if (!(f = fopen(o->curve_allow, "r"))) {
		fprintf(stderr, "shmkit: %s: %s: %s\n", o->cmd, o->curve_allow, strerror(errno));
		free(z);
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		char *k = key;

		if (sscanf(line, "%127s", key) != 1 || key[0] == '#')
			continue;
		if (!strcmp(key, "public") && sscanf(line, "%*s %127s", key) != 1)
			continue;
		if (strlen(k) != KEY_LEN || z->n == MAX_ALLOWED ||
		    !zmq_z85_decode(z->allowed[z->n], k)) {
			fprintf(stderr, "shmkit: %s: %s: '%s' is not a public key (40 Z85 "
					"characters), or more than %d keys\n",
				o->cmd, o->curve_allow, k, MAX_ALLOWED);
			fclose(f);
			free(z);
			return NULL;
		}
		z->n++;
	}
	fclose(f);
	if (!(z->sock = zmq_socket(ctx, ZMQ_REP)) || zmq_bind(z->sock, "inproc://zeromq.zap.01")) {
		fprintf(stderr, "shmkit: %s: ZAP handler: %s\n", o->cmd, zmq_strerror(errno));
		if (z->sock)
			zmq_close(z->sock);
		free(z);
		return NULL;
	}
	return z;
}

/* ZAP (RFC 27): version, request id, domain, address, identity, mechanism, credentials. */
void bridge_zap_handle(void *zp)
{
	struct zap *z = zp;
	zmq_msg_t part[8];
	int n = 0, more = 1, i;
	unsigned j;
	bool ok = false;
	const char *status;

	while (more && n < 8) {
		zmq_msg_init(&part[n]);
		if (zmq_msg_recv(&part[n], z->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&part[n]);
			if (n == 0)
				return;
			break;
		}
		more = zmq_msg_more(&part[n]);
		n++;
	}
	if (n == 7 && zmq_msg_size(&part[5]) == 5 && !memcmp(zmq_msg_data(&part[5]), "CURVE", 5) &&
	    zmq_msg_size(&part[6]) == 32)
		for (j = 0; j < z->n && !ok; j++)
			ok = !memcmp(zmq_msg_data(&part[6]), z->allowed[j], 32);
	status = ok ? "200" : "400";
	zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
	if (n > 1)
		zmq_send(z->sock, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
	else
		zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
	zmq_send(z->sock, status, 3, ZMQ_SNDMORE);
	zmq_send(z->sock, ok ? "OK" : "key not allowed", ok ? 2 : 15, ZMQ_SNDMORE);
	zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
	zmq_send(z->sock, "", 0, 0);
	/* A refusal is reported by the receiver's monitor (recv.c), rate-limited. */
	for (i = 0; i < n; i++)
		zmq_msg_close(&part[i]);
}

void *bridge_zap_socket(void *zp)
{
	return ((struct zap *)zp)->sock;
}

void bridge_zap_close(void *zp)
{
	struct zap *z = zp;

	zmq_close(z->sock);
	free(z);
}

int bridge_keygen(const char *prefix)
{
	char pub[KEY_LEN + 1], sec[KEY_LEN + 1], path[4096];
	FILE *f;
	int fd;

	if (need_curve("bridge keygen"))
		return 1;
	if (zmq_curve_keypair(pub, sec)) {
		fprintf(stderr, "shmkit: bridge keygen: %s\n", zmq_strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s.key", prefix);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		fprintf(stderr, "shmkit: bridge keygen: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	fprintf(f, "public %s\nsecret %s\n", pub, sec);
	if (fclose(f)) {
		fprintf(stderr, "shmkit: bridge keygen: %s: %s\n", path, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s.pub", prefix);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		fprintf(stderr, "shmkit: bridge keygen: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	fprintf(f, "public %s\n", pub);
	if (fclose(f)) {
		fprintf(stderr, "shmkit: bridge keygen: %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("%s.key (secret, mode 0600) and %s.pub written\n", prefix, prefix);
	return 0;
}
