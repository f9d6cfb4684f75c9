/*
 * lease.c: seats, and liveness from kernel-held OFD locks on the region's file (see lease.c
 * for the argument).
 */
#ifndef SHMKIT_LEASE_H
#define SHMKIT_LEASE_H

#include "region.h"

#define SHMKIT__SEATS_DEFAULT SHMKIT_USERS_MAX /* seats of a region whose users are not counted */
#define SHMKIT__SEATS_MAX 4096u
/* The lease file of a named region: its name from the key in the header, a new one (made with
 * O_EXCL, mode lease_mode(mode)) for a create, or opened for use. */
void shmkit__lease_name(uint64_t key, char *buf, size_t size);
int shmkit__lease_file_create(unsigned mode, uint64_t *key, char *name, size_t size,
			      uint8_t secret[16]);
/* Open the lease file `name` of the region whose file is `region_fd`: -errno, or a descriptor
 * (O_RDWR for a writer, O_RDONLY for a reader who may: it can only ask, never hold). */
int shmkit__lease_file_open(const char *name, int region_fd, bool rdonly, uint8_t secret[16]);
/* 0 taken, -EAGAIN another description holds it, else -errno. */
int shmkit__lease_take(int fd, uint64_t byte);
void shmkit__lease_drop(int fd, uint64_t byte);
/* The same as a read lock, which any number of descriptions may hold at once (hold.c). */
int shmkit__lease_share(int fd, uint64_t byte);
/* 1 if another open file description holds the lease as a write lock (or we cannot tell), 0
 * if free. Read locks, which anyone who can read the file can take, are never a lease. */
int shmkit__lease_held(int fd, uint64_t byte);
void shmkit__region_track(struct shmkit__region *r);
void shmkit__region_untrack(struct shmkit__region *r);
/* Call fn on the region this process has mapped with that file identity; -ENOENT if none. */
int shmkit__region_lookup(uint64_t dev, uint64_t ino,
			  int (*fn)(struct shmkit__region *, void *), void *arg);
/* This handle's seat (taken on first need, again in a fork child): index, or -EUSERS when
 * every seat is held by a live process, -ENOLCK when this handle cannot hold leases. */
int shmkit__seat_take(struct shmkit__region *r);
/* A seat held through a new open file description of the region's file (*fd_out, close-on-exec),
 * not the handle's: it stays held while any process keeps a copy of that descriptor open
 * (fork children, SCM_RIGHTS), as an open file does. Returns the seat, or as seat_take. */
int shmkit__seat_hold(struct shmkit__region *r, int *fd_out);
/* This handle's seat in this process, or -1 before it took one. */
int shmkit__seat_mine(const struct shmkit__region *r);
/* Give the seat up (handle close). */
void shmkit__seat_leave(struct shmkit__region *r);
/* Whether seat k is held by a live process (ours included). */
bool shmkit__seat_alive(const struct shmkit__region *r, uint32_t k);
/* Seat k's gen (bumped by every taker), and whether seat k is held by the very taker that
 * saw `gen`: what a recorded participant is judged by. */
uint32_t shmkit__seat_gen(const struct shmkit__region *r, uint32_t k);
bool shmkit__seat_alive_gen(const struct shmkit__region *r, uint32_t k, uint32_t gen);
/* Take the lease of seat k, which must not be ours, so nobody can sit there while we clean
 * up after its dead holder: 0, or -EAGAIN when someone alive holds it. thaw lets go. */
int shmkit__seat_freeze(struct shmkit__region *r, uint32_t k);
void shmkit__seat_thaw(struct shmkit__region *r, uint32_t k);

#endif /* SHMKIT_LEASE_H */
