/* Pollable descriptors: a notification socket per waiting handle (see notify.c). Private. */
#ifndef SHMKIT_NOTIFY_H
#define SHMKIT_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

struct shmkit__region;

struct shmkit__notify {
	int epfd;                /* what the caller polls: the socket (+ the slice timer) */
	int sock;                /* bound at addr */
	int tfd;                 /* slice timer, -1 without */
	bool bound;              /* addr is ours to unlink at close */
	unsigned gen;            /* fork generation that made it */
	uint32_t seat;           /* the handle's seat it was made for */
	struct sockaddr_un addr;
};

/* Bind the socket of `seat` (a seat this handle holds) of region r, with a slice timer when
 * `slices`. 0 or -errno (-ENOTSUP: a region without a file descriptor). */
int shmkit__notify_open(const struct shmkit__region *r, uint32_t seat, bool slices,
			struct shmkit__notify *n);
/* Close the descriptors; the socket file too, unless made by another process (fork). */
void shmkit__notify_close(struct shmkit__notify *n);
/* Take every pending notification and timer expiry: the descriptor is not readable after. */
void shmkit__notify_drain(struct shmkit__notify *n);
/* Make our own descriptor readable. */
void shmkit__notify_self(struct shmkit__notify *n);
/* Wake the waiter of `seat` of the region file (dev, ino). Never blocks. */
void shmkit__notify_send(uint64_t dev, uint64_t ino, uint32_t seat);
/* Remove the socket files of the region file (dev, ino) whose waiters are gone. */
void shmkit__notify_reap(uint64_t dev, uint64_t ino);
/* The same for the object `name` (before it is unlinked). */
void shmkit__notify_reap_name(const char *name);

#endif /* SHMKIT_NOTIFY_H */
