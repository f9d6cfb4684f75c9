/*
 * The bridge's frames on the wire. One ZeroMQ message is one frame; the receiver's ROUTER adds
 * the connection's routing id in front, which never reaches this file. Everything received is
 * untrusted: decoding checks the magic, the type, the exact length of fixed frames and every
 * DATA record against the body before anyone reads a record.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "bridge/bridge.h"

static const unsigned char magic[4] = { 'S', 'K', 'B', '2' }; /* the last byte: version */

uint64_t bridge_get64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint32_t bridge_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void bridge_put64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

void bridge_put32(unsigned char *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

static void put_hdr(unsigned char *p, enum bridge_type t, uint64_t id)
{
	memcpy(p, magic, 4);
	p[4] = (unsigned char)t;
	p[5] = p[6] = p[7] = 0;
	bridge_put64(p + 8, id);
}

size_t bridge_encode(void *buf, enum bridge_type t, uint64_t id, uint64_t a, uint64_t b,
		     uint64_t c)
{
	unsigned char *p = buf;

	put_hdr(p, t, id);
	switch (t) {
	case BT_HELLO:
		bridge_put32(p + 16, (uint32_t)a);
		bridge_put32(p + 20, (uint32_t)b);
		bridge_put64(p + 24, c);
		return 32;
	case BT_WELCOME:
		bridge_put64(p + 16, a);
		bridge_put32(p + 24, (uint32_t)b);
		bridge_put64(p + 28, c);
		return 36;
	case BT_ACK:
		bridge_put64(p + 16, a);
		bridge_put32(p + 24, (uint32_t)b);
		return 28;
	case BT_EOF:
		bridge_put64(p + 16, a);
		return 24;
	case BT_PROBE:
		bridge_put64(p + 16, a);
		return 24;
	default: /* EOFACK */
		return BRIDGE_HDR;
	}
}

size_t bridge_encode_refuse(void *buf, size_t n, uint64_t id, int code, const char *why)
{
	unsigned char *p = buf;
	size_t len = strlen(why);

	put_hdr(p, BT_REFUSE, id);
	bridge_put32(p + 16, (uint32_t)code);
	if (len > n - 20)
		len = n - 20;
	memcpy(p + 20, why, len);
	return 20 + len;
}

void bridge_encode_data_hdr(void *buf, uint64_t id, uint64_t floor, uint64_t first,
			    uint32_t count)
{
	unsigned char *p = buf;

	put_hdr(p, BT_DATA, id);
	bridge_put64(p + 16, floor);
	bridge_put64(p + 24, first);
	bridge_put32(p + 32, count);
}

size_t bridge_put_record(void *buf, const void *msg, uint32_t len)
{
	unsigned char *p = buf;

	bridge_put32(p, len);
	memcpy(p + 4, msg, len);
	return 4 + (size_t)len;
}

int bridge_next_record(const struct bridge_frame *f, size_t *pos, const unsigned char **msg,
		       uint32_t *len)
{
	if (*pos + 4 > f->body_len)
		return 0;
	*len = bridge_get32(f->body + *pos);
	*msg = f->body + *pos + 4;
	*pos += 4 + (size_t)*len;
	return 1;
}

int bridge_decode(const void *buf, size_t len, struct bridge_frame *f)
{
	const unsigned char *p = buf;
	size_t fixed, pos = 0;
	uint32_t i, n;

	memset(f, 0, sizeof(*f));
	if (len < BRIDGE_HDR || memcmp(p, magic, 3))
		return -EPROTO;
	if (p[3] != magic[3])
		return -EPROTONOSUPPORT;
	if (p[5] || p[6] || p[7])
		return -EBADMSG;
	f->type = p[4];
	f->id = bridge_get64(p + 8);
	switch (f->type) {
	case BT_HELLO:
		fixed = 32;
		break;
	case BT_WELCOME:
		fixed = 36;
		break;
	case BT_ACK:
		fixed = 28;
		break;
	case BT_DATA:
		fixed = BRIDGE_DATA_HDR;
		break;
	case BT_EOF:
		fixed = 24;
		break;
	case BT_EOFACK:
		fixed = BRIDGE_HDR;
		break;
	case BT_PROBE:
		fixed = 24;
		break;
	case BT_REFUSE:
		fixed = 20;
		break;
	default:
		return -EBADMSG;
	}
	if (len < fixed || (len != fixed && f->type != BT_DATA && f->type != BT_REFUSE))
		return -EBADMSG;
	if (f->id == 0) /* identities are never 0: that is how a free table slot looks */
		return -EBADMSG;
	switch (f->type) {
	case BT_HELLO:
		f->a = bridge_get32(p + 16);
		f->b = bridge_get32(p + 20);
		f->c = bridge_get64(p + 24);
		break;
	case BT_WELCOME:
		f->a = bridge_get64(p + 16);
		f->b = bridge_get32(p + 24);
		f->c = bridge_get64(p + 28);
		break;
	case BT_ACK:
		f->a = bridge_get64(p + 16);
		f->b = bridge_get32(p + 24);
		break;
	case BT_EOF:
	case BT_PROBE:
		f->a = bridge_get64(p + 16);
		break;
	case BT_REFUSE:
		f->a = bridge_get32(p + 16);
		break;
	default:
		break;
	}
	f->body = p + fixed;
	f->body_len = len - fixed;
	if (f->type != BT_DATA)
		return 0;
	f->a = bridge_get64(p + 16);
	f->b = bridge_get64(p + 24);
	f->count = bridge_get32(p + 32);
	if (f->count == 0 || f->b == 0 || f->b + f->count < f->b)
		return -EBADMSG;
	/* Every record whole and inside the body, and nothing after the last. */
	for (i = 0; i < f->count; i++) {
		if (pos + 4 > f->body_len)
			return -EBADMSG;
		n = bridge_get32(f->body + pos);
		if (n > f->body_len - pos - 4)
			return -EBADMSG;
		pos += 4 + (size_t)n;
	}
	return pos == f->body_len ? 0 : -EBADMSG;
}
