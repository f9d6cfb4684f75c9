/* Stamped messages for produce --count and consume --verify. */
#include "config.h"

#include <string.h>

#include "queue/stamp.h"

static uint32_t fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= 16777619u;
	}
	return h;
}

static uint32_t stamp_sum(const struct stamp *s, const unsigned char *payload, size_t n)
{
	uint32_t h = 2166136261u;

	h = fnv1a(h, (const unsigned char *)&s->producer, sizeof(s->producer));
	h = fnv1a(h, (const unsigned char *)&s->seq, sizeof(s->seq));
	h = fnv1a(h, (const unsigned char *)&s->len, sizeof(s->len));
	return fnv1a(h, payload, n);
}

void stamp_fill(unsigned char *msg, size_t len, uint32_t producer, uint64_t seq)
{
	struct stamp s = { STAMP_MAGIC, producer, seq, (uint32_t)len, 0 };
	size_t i;

	for (i = STAMP_SIZE; i < len; i++)
		msg[i] = (unsigned char)(seq + i);
	s.sum = stamp_sum(&s, msg + STAMP_SIZE, len - STAMP_SIZE);
	memcpy(msg, &s, sizeof(s));
}

int stamp_check(const unsigned char *msg, size_t len, struct stamp *out)
{
	if (len < STAMP_SIZE)
		return -1;
	memcpy(out, msg, sizeof(*out));
	if (out->magic != STAMP_MAGIC || out->len != len)
		return -1;
	return stamp_sum(out, msg + STAMP_SIZE, len - STAMP_SIZE) == out->sum ? 0 : -1;
}

uint64_t stamp_digest(uint32_t producer, uint64_t seq)
{
	uint64_t x = ((uint64_t)producer << 40) ^ seq ^ 0x9e3779b97f4a7c15ULL;

	/* splitmix64's finaliser */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}
