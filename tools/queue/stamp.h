/* The stamp `shmkit produce --count` puts at the head of each message and consume --verify
 * checks: who sent it, its sequence number, and a checksum over both and the payload. */
#ifndef SHMKIT_TOOLS_STAMP_H
#define SHMKIT_TOOLS_STAMP_H

#include <stddef.h>
#include <stdint.h>

#define STAMP_MAGIC 0x54534b53u /* "SKST" */

struct stamp {
	uint32_t magic;
	uint32_t producer;
	uint64_t seq;
	uint32_t len; /* whole message */
	uint32_t sum;
};

#define STAMP_SIZE sizeof(struct stamp)

/* Fill msg[0..len) (len >= STAMP_SIZE) with a stamped message. */
void stamp_fill(unsigned char *msg, size_t len, uint32_t producer, uint64_t seq);
/* 0 when msg[0..len) is a well-formed stamped message; its stamp in *out. */
int stamp_check(const unsigned char *msg, size_t len, struct stamp *out);
/* A 64-bit hash of (producer, seq): sums of these over what was sent and what was received
 * match only when every message arrived exactly once (up to a 2^-64 accident). */
uint64_t stamp_digest(uint32_t producer, uint64_t seq);

#endif
