/*
 * Pollable file descriptors for event loops: one notification socket per waiting handle.
 *
 * An eventfd or a pipe cannot be handed to a process that never saw it, and pidfd_getfd needs
 * ptrace rights. What any process that can open /dev/shm can reach is a path there, so each
 * handle that asks for a descriptor binds an AF_UNIX datagram socket at a path made from the
 * region file's identity, the writers' secret and the handle's seat:
 *
 *     /dev/shm/.shmkit-fd-<dev>-<ino>-<secret>-<seat>
 *
 * The secret is 128 random bits kept in the lease file (lease.c), which only the object's
 * writers can read: a path nobody else can predict, so nobody else can make it first (a
 * predictable path made by another user could neither be bound nor removed from the sticky
 * /dev/shm: the feature would be that user's to switch off). The seat is the handle's own
 * (lease.c), so no two live handles ever use one path; the socket file gets the lease file's
 * permission bits, so whoever may write the object may notify. A waker finds the secret in
 * its own handle of the region (it has the region mapped: it is writing to it).
 * A waker sends a one-byte datagram there from an unbound socket (MSG_DONTWAIT: a full
 * receiver is already readable; MSG_NOSIGNAL; a dead receiver's path refuses the connection
 * and costs that one failed send). Wakers do this only for handles that armed themselves in
 * the object (ring.c, event.c), so nobody pays anything while no descriptor is armed.
 *
 * What the caller polls is an epoll descriptor holding the socket and, for queues and pipes, a
 * timerfd that expires every SHMKIT__SLICE_NS: a handle whose owner waits in an event loop
 * must still look for dead peers (EOF from a writer that was killed, a slot a dead producer
 * held) as often as a sleeper does, so it becomes readable once a slice and its next _try call
 * looks. The socket file dies with its handle's close; a waiter killed outright leaves the
 * file (a dead path, refused at once), which the next holder of the seat replaces and which
 * shmkit__notify_reap removes when the object is unlinked.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"
#include "lease.h"
#include "notify.h"
#include "proc.h"
#include "region.h"

#define NOTIFY_DIR "/dev/shm"
#define NOTIFY_PREFIX ".shmkit-fd-"

static int notify_path(struct sockaddr_un *a, uint64_t dev, uint64_t ino,
		       const uint8_t secret[16], uint32_t seat)
{
	char hex[33];
	int i, n;

	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", secret[i]);
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	n = snprintf(a->sun_path, sizeof(a->sun_path), NOTIFY_DIR "/" NOTIFY_PREFIX "%" PRIx64
		     "-%" PRIx64 "-%s-%u", dev, ino, hex, seat);
	return n > 0 && (size_t)n < sizeof(a->sun_path) ? 0 : -ENAMETOOLONG;
}

/* The secret of this process's region (dev, ino), for a waker. */
struct secret_arg {
	uint8_t secret[16];
	bool found;
};

static int secret_of(struct shmkit__region *r, void *arg)
{
	struct secret_arg *s = arg;

	if (!r->has_secret)
		return -ENOENT;
	memcpy(s->secret, r->secret, sizeof(s->secret));
	s->found = true;
	return 0;
}

int shmkit__notify_open(const struct shmkit__region *r, uint32_t seat, bool slices,
			struct shmkit__notify *n)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	struct sockaddr_un a;
	struct stat st;
	int err;

	memset(n, 0, sizeof(*n));
	n->epfd = n->sock = n->tfd = -1;
	if (r->fd < 0 || !r->has_secret || fstat(r->fd, &st) < 0)
		return -ENOTSUP;
	if ((err = notify_path(&a, r->dev, r->ino, r->secret, seat)))
		return err;
	n->addr = a;
	n->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (n->sock < 0)
		goto fail_errno;
	/* Whatever is at our seat's path was left by a dead holder of the seat (we hold its
	 * lease now). */
	unlink(a.sun_path);
	if (bind(n->sock, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail_errno;
	n->bound = true;
	/* Whoever may write the object may wake us; bind made it with our umask. */
	if (chmod(a.sun_path, st.st_mode & 0777) < 0)
		goto fail_errno;
	n->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (n->epfd < 0)
		goto fail_errno;
	ev.data.fd = n->sock;
	if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->sock, &ev) < 0)
		goto fail_errno;
	if (slices) {
		n->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (n->tfd < 0)
			goto fail_errno;
		its.it_value.tv_sec = its.it_interval.tv_sec = SHMKIT__SLICE_NS / 1000000000LL;
		its.it_value.tv_nsec = its.it_interval.tv_nsec = SHMKIT__SLICE_NS % 1000000000LL;
		ev.data.fd = n->tfd;
		if (timerfd_settime(n->tfd, 0, &its, NULL) < 0 ||
		    epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->tfd, &ev) < 0)
			goto fail_errno;
	}
	n->gen = shmkit__fork_generation();
	n->seat = seat;
	return 0;

fail_errno:
	err = -errno;
	shmkit__notify_close(n);
	return err;
}

void shmkit__notify_close(struct shmkit__notify *n)
{
	/* A fork child closes its copies of the parent's descriptors but leaves the parent's
	 * path alone. */
	if (n->bound && n->gen == shmkit__fork_generation())
		unlink(n->addr.sun_path);
	if (n->epfd >= 0)
		close(n->epfd);
	if (n->sock >= 0)
		close(n->sock);
	if (n->tfd >= 0)
		close(n->tfd);
	n->epfd = n->sock = n->tfd = -1;
	n->bound = false;
}

void shmkit__notify_drain(struct shmkit__notify *n)
{
	char buf[64];
	uint64_t ticks;

	while (recv(n->sock, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
	if (n->tfd >= 0 && read(n->tfd, &ticks, sizeof(ticks)) < 0)
		ticks = 0; /* not expired: nothing to take */
}

/* One unbound socket per process to send from (sendto needs a socket, not a connection),
 * made on first need in each fork generation: a child does not trust the number it inherited,
 * which it may have closed and reused for something else (daemons close what they inherit).
 * The inherited one is left alone for the same reason. Closing it under a live process is
 * as wrong as closing a region's descriptor (lease.c) and is not guarded against. */
static pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;
static int send_sock = -1;
static unsigned send_gen;

static int sender(void)
{
	unsigned gen = shmkit__fork_generation();
	int s;

	pthread_mutex_lock(&send_mu);
	if (send_sock < 0 || send_gen != gen) {
		send_sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		send_gen = gen;
	}
	s = send_sock;
	pthread_mutex_unlock(&send_mu);
	return s;
}

void shmkit__notify_send(uint64_t dev, uint64_t ino, uint32_t seat)
{
	struct sockaddr_un a;
	struct secret_arg sa = { .found = false };
	char c = 1;
	int s;

	if (shmkit__region_lookup(dev, ino, secret_of, &sa) != 0 || !sa.found)
		return; /* no handle of ours that knows the path: nothing to send */
	s = sender();
	if (s < 0 || notify_path(&a, dev, ino, sa.secret, seat))
		return;
	/* Errors are the receiver's: full (already readable), gone (a dead waiter). */
	sendto(s, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, sizeof(a));
}

void shmkit__notify_self(struct shmkit__notify *n)
{
	char c = 0;
	int s = sender();

	if (s >= 0)
		sendto(s, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&n->addr,
		       sizeof(n->addr));
}

/* Whether nobody listens at path: a dead waiter's socket file. */
static bool dead_path(int dirfd, const char *file)
{
	struct sockaddr_un a;
	int s, rc;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (snprintf(a.sun_path, sizeof(a.sun_path), NOTIFY_DIR "/%s", file) >=
	    (int)sizeof(a.sun_path))
		return false;
	(void)dirfd;
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	rc = connect(s, (struct sockaddr *)&a, sizeof(a));
	close(s);
	return rc < 0 && errno == ECONNREFUSED;
}

void shmkit__notify_reap(uint64_t dev, uint64_t ino)
{
	char prefix[64];
	struct dirent *d;
	DIR *dir;
	size_t len;

	len = (size_t)snprintf(prefix, sizeof(prefix), NOTIFY_PREFIX "%" PRIx64 "-%" PRIx64 "-",
			       dev, ino);
	if (!(dir = opendir(NOTIFY_DIR)))
		return;
	while ((d = readdir(dir)))
		if (!strncmp(d->d_name, prefix, len) && dead_path(dirfd(dir), d->d_name))
			unlinkat(dirfd(dir), d->d_name, 0);
	closedir(dir);
}

void shmkit__notify_reap_name(const char *name)
{
	char path[sizeof(NOTIFY_DIR) + SHMKIT_NAME_MAX + 2];
	struct stat st;

	if (shmkit_name_check(name))
		return;
	snprintf(path, sizeof(path), NOTIFY_DIR "%s", name);
	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
		shmkit__notify_reap((uint64_t)st.st_dev, (uint64_t)st.st_ino);
}
