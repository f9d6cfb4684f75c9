/*
 * Regions: name rules, exclusive create, open's validation of what it finds (missing, other
 * kind, foreign, truncated, newer layout, all zero, creator died or still busy), the mode
 * applied whatever the umask, anonymous objects across fork, and shmkit_strerror.
 */
#include "config.h"

#include <stdatomic.h>

#include "layout.h"
#include <sys/resource.h>

#include "testutil.h"

/* ------------------------------------------------------------------------------------------- */
/* Every kind of this suite behind one interface, so each rule is checked for all of them.     */

struct kind {
	const char *tag;
	int (*create)(const char *name, unsigned mode, void **out);
	int (*open)(const char *name, void **out);
	int (*close)(void *h);
	tu_unlink_fn unlink;
	bool has_sem; /* also owns /dev/shm/sem.<name>.sem */
};

static int value_create(const char *n, unsigned m, void **o)
{
	return shmkit_value_create(n, 7, m, (shmkit_value **)o);
}
static int value_open(const char *n, void **o)
{
	return shmkit_value_open(n, (shmkit_value **)o);
}
static int value_close(void *h)
{
	return shmkit_value_close(h);
}
static int array_create(const char *n, unsigned m, void **o)
{
	return shmkit_array_create(n, 5, m, (shmkit_array **)o);
}
static int array_open(const char *n, void **o)
{
	return shmkit_array_open(n, (shmkit_array **)o);
}
static int array_close(void *h)
{
	return shmkit_array_close(h);
}
static int lock_create(const char *n, unsigned m, void **o)
{
	return shmkit_lock_create(n, 0, m, (shmkit_lock **)o);
}
static int rlock_create(const char *n, unsigned m, void **o)
{
	return shmkit_lock_create(n, SHMKIT_RECURSIVE, m, (shmkit_lock **)o);
}
static int lock_open(const char *n, void **o)
{
	return shmkit_lock_open(n, (shmkit_lock **)o);
}
static int lock_close(void *h)
{
	return shmkit_lock_close(h);
}
static int sem_create(const char *n, unsigned m, void **o)
{
	return shmkit_sem_create(n, 1, SHMKIT_BOUNDED, m, (shmkit_sem **)o);
}
static int sem_open_(const char *n, void **o)
{
	return shmkit_sem_open(n, (shmkit_sem **)o);
}
static int sem_close_(void *h)
{
	return shmkit_sem_close(h);
}

static const struct kind kinds[] = {
	{ "value", value_create, value_open, value_close, shmkit_value_unlink, false },
	{ "array", array_create, array_open, array_close, shmkit_array_unlink, false },
	{ "lock", lock_create, lock_open, lock_close, shmkit_lock_unlink, false },
	{ "rlock", rlock_create, lock_open, lock_close, shmkit_lock_unlink, false },
	{ "sem", sem_create, sem_open_, sem_close_, shmkit_sem_unlink, true },
};
#define NKINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

static struct shmkit__hdr *map_hdr(int fd)
{
	void *p = mmap(NULL, sizeof(struct shmkit__hdr), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	ck_assert_msg(p != MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

/* Every kind's open of `name` returns `want`. */
static void all_open_fail(const char *name, int want)
{
	int i, err;
	void *h;

	for (i = 0; i < NKINDS; i++) {
		h = NULL;
		err = kinds[i].open(name, &h);
		ck_assert_msg(err == want, "%s open %s: got %d (%s), want %d", kinds[i].tag, name,
			      err, shmkit_strerror(err), want);
		ck_assert_ptr_null(h);
	}
}

/* ------------------------------------------------------------------------------------------- */
/* Names                                                                                        */

START_TEST(test_bad_names)
{
	const struct kind *k = &kinds[_i];
	char base[TU_NAME_SIZE], path[4096], spath[4096];
	char bad[12][TU_NAME_SIZE + 8];
	int i, n = 0, err;
	void *h;

	tu_name_kind(base, k->tag, k->unlink);
	snprintf(bad[n++], sizeof(bad[0]), "%s", "");
	snprintf(bad[n++], sizeof(bad[0]), "%s", "/");
	snprintf(bad[n++], sizeof(bad[0]), "%s", base + 1); /* no slash */
	snprintf(bad[n++], sizeof(bad[0]), "%s/b", base);
	snprintf(bad[n++], sizeof(bad[0]), "/%s", base); /* "//..." */
	snprintf(bad[n++], sizeof(bad[0]), "/sem.%s", base + 1);
	snprintf(bad[n++], sizeof(bad[0]), "%s", "/.");
	snprintf(bad[n++], sizeof(bad[0]), "%s", "/..");
	snprintf(bad[n++], sizeof(bad[0]), "%s x", base);
	snprintf(bad[n++], sizeof(bad[0]), "%s\xc3\xa9", base);
	/* 201 characters after the slash */
	snprintf(bad[n], sizeof(bad[0]), "%s", base);
	memset(bad[n] + strlen(base), 'x', SHMKIT_NAME_MAX + 1 - (strlen(base) - 1));
	bad[n][SHMKIT_NAME_MAX + 2] = '\0';
	ck_assert_uint_eq(strlen(bad[n]), SHMKIT_NAME_MAX + 2);
	n++;

	for (i = 0; i < n; i++) {
		tu_track(bad[i], NULL); /* removed should the library create it after all */
		ck_assert_int_eq(shmkit_name_check(bad[i]), -EINVAL);
		h = NULL;
		err = k->create(bad[i], 0600, &h);
		ck_assert_msg(err == -EINVAL, "%s create '%s': %d", k->tag, bad[i], err);
		ck_assert_ptr_null(h);
		err = k->open(bad[i], &h);
		ck_assert_msg(err == -EINVAL, "%s open '%s': %d", k->tag, bad[i], err);
		ck_assert_int_eq(k->unlink(bad[i]), -EINVAL);
		if (bad[i][0] && strcmp(bad[i], "/") && strcmp(bad[i], "/.") && strcmp(bad[i], "/..")) {
			tu_shm_path(path, sizeof(path), bad[i]);
			tu_sem_path(spath, sizeof(spath), bad[i]);
			ck_assert_msg(!tu_exists(path), "%s exists", path);
			ck_assert_msg(!tu_exists(spath), "%s exists", spath);
		}
	}
	ck_assert_int_eq(shmkit_name_check(NULL), -EINVAL);
	ck_assert_int_eq(k->open(NULL, &h), -EINVAL);
	ck_assert_msg(!tu_exists(tu_shm_path(path, sizeof(path), base)), "%s exists", path);
}
END_TEST

START_TEST(test_name_200_ok)
{
	const struct kind *k = &kinds[_i];
	char base[TU_NAME_SIZE], name[TU_NAME_SIZE], path[4096];
	void *h = NULL, *h2 = NULL;
	size_t len;

	tu_name(base, k->tag);
	len = strlen(base);
	memcpy(name, base, len);
	memset(name + len, 'y', SHMKIT_NAME_MAX + 1 - len);
	name[SHMKIT_NAME_MAX + 1] = '\0';
	ck_assert_uint_eq(strlen(name), SHMKIT_NAME_MAX + 1);
	tu_track(name, k->unlink);

	ck_assert_int_eq(shmkit_name_check(name), 0);
	ck_assert_int_eq(k->create(name, 0, &h), 0);
	ck_assert_ptr_nonnull(h);
	ck_assert(tu_exists(tu_shm_path(path, sizeof(path), name)));
	ck_assert_int_eq(k->open(name, &h2), 0);
	ck_assert_int_eq(k->close(h2), 0);
	ck_assert_int_eq(k->close(h), 0);
	ck_assert_int_eq(k->unlink(name), 0);
	ck_assert(!tu_exists(path));
	ck_assert_int_eq(k->unlink(name), -ENOENT);
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* Create and open                                                                              */

START_TEST(test_create_twice)
{
	const struct kind *k = &kinds[_i];
	char name[TU_NAME_SIZE];
	void *h = NULL, *h2 = NULL, *h3 = NULL;
	int i, err;

	tu_name_kind(name, k->tag, k->unlink);
	ck_assert_int_eq(k->create(name, 0, &h), 0);
	/* No kind may take the name, and failing must not remove what is there. */
	for (i = 0; i < NKINDS; i++) {
		err = kinds[i].create(name, 0, &h2);
		ck_assert_msg(err == -EEXIST, "%s over %s: %d", kinds[i].tag, k->tag, err);
		ck_assert_ptr_null(h2);
	}
	ck_assert_int_eq(k->open(name, &h3), 0);
	ck_assert_int_eq(k->close(h3), 0);
	ck_assert_int_eq(k->close(h), 0);
	ck_assert_int_eq(k->unlink(name), 0);
	ck_assert_int_eq(k->open(name, &h3), -ENOENT);
}
END_TEST

START_TEST(test_open_missing)
{
	char name[TU_NAME_SIZE];

	tu_name(name, "missing");
	all_open_fail(name, -ENOENT);
	ck_assert_int_eq(kinds[_i].unlink(name), -ENOENT);
}
END_TEST

START_TEST(test_open_other_kind)
{
	const struct kind *k = &kinds[_i];
	char name[TU_NAME_SIZE];
	void *h = NULL, *h2;
	int i, err;

	tu_name_kind(name, k->tag, k->unlink);
	ck_assert_int_eq(k->create(name, 0, &h), 0);
	for (i = 0; i < NKINDS; i++) {
		h2 = NULL;
		err = kinds[i].open(name, &h2);
		if (kinds[i].open == k->open) {
			ck_assert_int_eq(err, 0);
			kinds[i].close(h2);
		} else {
			ck_assert_msg(err == -EPROTOTYPE, "%s opened as %s: %d", k->tag,
				      kinds[i].tag, err);
			ck_assert_ptr_null(h2);
		}
	}
	k->close(h);
}
END_TEST

START_TEST(test_open_foreign)
{
	char name[TU_NAME_SIZE];
	int fd;

	tu_name(name, "foreign");
	fd = tu_raw_file(name, 4096, 0xa5);
	close(fd);
	all_open_fail(name, -EBADMSG);
}
END_TEST

START_TEST(test_open_foreign_short)
{
	char name[TU_NAME_SIZE];
	int64_t t0;
	int fd;

	tu_name(name, "short");
	fd = tu_raw_file(name, 10, 'x');
	close(fd);
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_value_open(name, &(shmkit_value *){ NULL }), -EBADMSG);
	ck_assert_int_lt(tu_now_ns() - t0, 10 * TU_NS_PER_S);
}
END_TEST

START_TEST(test_open_empty)
{
	char name[TU_NAME_SIZE];
	shmkit_lock *l = NULL;
	int fd;

	tu_name(name, "empty");
	fd = tu_raw_file(name, 0, 0);
	close(fd);
	ck_assert_int_eq(shmkit_lock_open(name, &l), -EBADMSG);
	ck_assert_ptr_null(l);
}
END_TEST

/* A real region cut shorter (or made longer) than its header says. */
START_TEST(test_open_truncated)
{
	const struct kind *k = &kinds[_i];
	static const off_t delta[] = { -8, -1, +8, +4096 };
	char name[TU_NAME_SIZE];
	void *h = NULL;
	struct stat st;
	unsigned j;
	int fd;

	for (j = 0; j < sizeof(delta) / sizeof(delta[0]); j++) {
		tu_name_kind(name, k->tag, k->unlink);
		ck_assert_int_eq(k->create(name, 0, &h), 0);
		k->close(h);
		fd = shm_open(name, O_RDWR, 0);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert_int_eq(ftruncate(fd, st.st_size + delta[j]), 0);
		close(fd);
		h = NULL;
		ck_assert_int_eq(k->open(name, &h), -EBADMSG);
		ck_assert_int_eq(k->unlink(name), 0);
	}
}
END_TEST

START_TEST(test_open_truncated_below_header)
{
	char name[TU_NAME_SIZE];
	shmkit_value *v;
	int fd;

	tu_name_kind(name, "trunc", shmkit_value_unlink);
	ck_assert_int_eq(shmkit_value_create(name, 1, 0, &v), 0);
	shmkit_value_close(v);
	fd = shm_open(name, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 64), 0);
	close(fd);
	v = NULL;
	ck_assert_int_eq(shmkit_value_open(name, &v), -EBADMSG);
	ck_assert_ptr_null(v);
}
END_TEST

/* Make a real region of kind 0 (value) and let `edit` change its header. */
static void edited_region(char *name, void (*edit)(struct shmkit__hdr *h, void *arg), void *arg)
{
	shmkit_value *v;
	struct shmkit__hdr *h;
	int fd;

	tu_name_kind(name, "edit", shmkit_value_unlink);
	ck_assert_int_eq(shmkit_value_create(name, 1, 0, &v), 0);
	shmkit_value_close(v);
	fd = shm_open(name, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	h = map_hdr(fd);
	close(fd);
	edit(h, arg);
	munmap(h, sizeof(*h));
}

static void set_version(struct shmkit__hdr *h, void *arg)
{
	h->version = *(uint32_t *)arg;
}

static void set_magic_byte(struct shmkit__hdr *h, void *arg)
{
	((unsigned char *)&h->magic)[3] ^= 0x40;
}

static void set_kind(struct shmkit__hdr *h, void *arg)
{
	h->kind = *(uint32_t *)arg;
}

static void set_state(struct shmkit__hdr *h, void *arg)
{
	atomic_store(&h->state, *(uint32_t *)arg);
}

START_TEST(test_open_future_version)
{
	char name[TU_NAME_SIZE];
	uint32_t v = 99;

	edited_region(name, set_version, &v);
	all_open_fail(name, -EPROTO);
	v = 0;
	edited_region(name, set_version, &v);
	all_open_fail(name, -EPROTO);
}
END_TEST

START_TEST(test_open_bad_magic)
{
	char name[TU_NAME_SIZE];

	edited_region(name, set_magic_byte, NULL);
	all_open_fail(name, -EBADMSG);
}
END_TEST

START_TEST(test_open_unknown_kind)
{
	char name[TU_NAME_SIZE];
	uint32_t k = 77;

	edited_region(name, set_kind, &k);
	all_open_fail(name, -EPROTOTYPE);
}
END_TEST

START_TEST(test_open_bad_state)
{
	char name[TU_NAME_SIZE];
	uint32_t s = 0x12345;

	shmkit_value *v = NULL;

	edited_region(name, set_state, &s);
	ck_assert_int_eq(shmkit_value_open(name, &v), -EBADMSG);
	ck_assert_ptr_null(v);
}
END_TEST

/* A region whose creator wrote nothing yet looks like this; one that stays so is refused after
 * the bounded wait, not waited on forever. */
START_TEST(test_open_all_zero)
{
	char name[TU_NAME_SIZE];
	shmkit_value *v = NULL;
	int64_t t0;
	int fd;

	tu_name(name, "zero");
	fd = tu_raw_file(name, 4096, 0);
	close(fd);
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_value_open(name, &v), -EBADMSG);
	ck_assert_ptr_null(v);
	/* Documented as about a second; only a hang detector here, not a speed check. */
	ck_assert_int_lt(tu_now_ns() - t0, 10 * TU_NS_PER_S);
}
END_TEST

struct creator {
	int32_t pid;
	uint64_t start;
};

static void set_init_creator(struct shmkit__hdr *h, void *arg)
{
	struct creator *c = arg;

	atomic_store(&h->state, SHMKIT__STATE_INIT);
	h->creator_pid = c->pid;
	if (c->start != UINT64_MAX)
		h->creator_start = c->start;
}

static int child_exit0(void *arg)
{
	return 0;
}

/* INIT forever because its creator died while initialising (nobody holds the creator's
 * lease): refused at once, not after the wait for a live creator, whatever pid it names. */
START_TEST(test_open_init_dead_creator)
{
	char name[TU_NAME_SIZE];
	struct creator c;
	shmkit_value *v = NULL;
	shmkit_lock *l = NULL;
	int64_t t0, dt;
	pid_t pid;

	pid = tu_fork(child_exit0, NULL);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	c.pid = pid;
	c.start = UINT64_MAX; /* keep ours: a reused pid would not match it */
	edited_region(name, set_init_creator, &c);
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_value_open(name, &v), -ENOTRECOVERABLE);
	dt = tu_now_ns() - t0;
	ck_assert_ptr_null(v);
	/* The live-creator wait is a full second per open; far less means nobody waited. */
	ck_assert_msg(dt < 900 * TU_NS_PER_MS, "took %lld ms", (long long)(dt / TU_NS_PER_MS));
	ck_assert_int_eq(shmkit_lock_open(name, &l), -EPROTOTYPE);

	/* A live pid with another start time is a reused pid: its creator is gone too. */
	c.pid = getpid();
	c.start = 12345;
	edited_region(name, set_init_creator, &c);
	ck_assert_int_eq(shmkit_value_open(name, &v), -ENOTRECOVERABLE);
}
END_TEST

/* A creator at work holds the creator's lease (an OFD lock on the region's file, lib/lease.c)
 * from the moment the name exists: stand in for one. The returned fd holds it until closed. */
static int hold_creator_lease(const char *name)
{
	int fd = tu_ofd_lock(name, SHMKIT__LEASE_CREATOR);

	ck_assert_msg(fd >= 0, "lease: %s", strerror(-fd));
	return fd;
}

/* INIT with a live creator: open waits about a second, then says -EAGAIN. */
START_TEST(test_open_init_live_creator)
{
	char name[TU_NAME_SIZE];
	struct creator c = { getpid(), UINT64_MAX };
	shmkit_value *v = NULL;
	int64_t t0, dt;

	int lease;

	edited_region(name, set_init_creator, &c);
	lease = hold_creator_lease(name);
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_value_open(name, &v), -EAGAIN);
	close(lease);
	dt = tu_now_ns() - t0;
	ck_assert_ptr_null(v);
	ck_assert_msg(dt >= 900 * TU_NS_PER_MS, "gave up after %lld ms",
		      (long long)(dt / TU_NS_PER_MS));
	ck_assert_msg(dt < 10 * TU_NS_PER_S, "took %lld ms", (long long)(dt / TU_NS_PER_MS));
}
END_TEST

static const char *ready_name;

static int child_make_ready(void *arg)
{
	struct shmkit__hdr *h;
	int fd;

	tu_sleep_ms(200);
	fd = shm_open(ready_name, O_RDWR, 0);
	if (fd < 0)
		return 1;
	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED)
		return 2;
	atomic_store(&h->state, SHMKIT__STATE_READY);
	return 0;
}

/* An opener that finds the creator still at work gets the object once it is ready. */
START_TEST(test_open_waits_for_creator)
{
	char name[TU_NAME_SIZE];
	struct creator c = { getpid(), UINT64_MAX };
	shmkit_value *v = NULL;
	pid_t pid;

	int lease;

	edited_region(name, set_init_creator, &c);
	lease = hold_creator_lease(name);
	ready_name = name;
	pid = tu_fork(child_make_ready, NULL);
	ck_assert_int_eq(shmkit_value_open(name, &v), 0);
	close(lease);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(shmkit_value_load(v), 1);
	shmkit_value_close(v);
}
END_TEST

/* Open racing create/unlink of the same name: only "there" or "not there", never "corrupt". */
struct race {
	_Atomic int stop;
	_Atomic int created;
};

static int child_create_loop(void *arg)
{
	struct race *r = arg;
	shmkit_value *v;
	int err;

	while (!atomic_load(&r->stop)) {
		if ((err = shmkit_value_create(ready_name, 5, 0, &v)))
			return 1;
		shmkit_value_close(v);
		if (shmkit_value_unlink(ready_name))
			return 2;
		atomic_fetch_add(&r->created, 1);
	}
	return 0;
}

START_TEST(test_open_during_create)
{
	char name[TU_NAME_SIZE];
	struct race *r = tu_shared(sizeof(*r));
	int ok = 0, missing = 0, err;
	shmkit_value *v;
	int64_t end;
	pid_t pid;

	tu_name_kind(name, "race", shmkit_value_unlink);
	ready_name = name;
	pid = tu_fork(child_create_loop, r);
	end = tu_now_ns() + 500 * TU_NS_PER_MS;
	while (tu_now_ns() < end) {
		err = shmkit_value_open(name, &v);
		if (err == 0) {
			ok++;
			ck_assert_int_eq(shmkit_value_load(v), 5);
			shmkit_value_close(v);
		} else if (err == -ENOENT) {
			missing++;
		} else {
			atomic_store(&r->stop, 1);
			tu_wait_child(pid, 30);
			ck_abort_msg("open during create: %d (%s)", err, shmkit_strerror(err));
		}
	}
	atomic_store(&r->stop, 1);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_gt(atomic_load(&r->created), 0);
	ck_assert_int_gt(ok + missing, 0);
}
END_TEST

/* Another user's region that others may write could change under us: refused. Changing the
 * owner needs root, so this only runs as root. */
START_TEST(test_open_foreign_owner)
{
	char name[TU_NAME_SIZE];
	shmkit_value *v = NULL;
	int fd;

	if (geteuid() != 0)
		return;
	tu_name_kind(name, "owner", shmkit_value_unlink);
	ck_assert_int_eq(shmkit_value_create(name, 3, 0, &v), 0);
	shmkit_value_close(v);
	fd = shm_open(name, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchown(fd, 12345, 12345), 0);
	{
		/* Its lease file (lease.c), named by the key at offset 96 of the header, is the
		 * same owner's: a region whose lease file is someone else's is refused. */
		uint64_t key = 0;
		char lease[64];
		int lfd;

		ck_assert_int_eq(pread(fd, &key, sizeof(key), 96), (ssize_t)sizeof(key));
		snprintf(lease, sizeof(lease), "/.shmkit-lease-%016llx", (unsigned long long)key);
		ck_assert_int_ge((lfd = shm_open(lease, O_RDWR, 0)), 0);
		setenv("SHMKIT_TRUST", "any", 1); /* past the sharing policy, to the lease check */
		ck_assert_int_eq(shmkit_value_open(name, &v), -EBADMSG);
		unsetenv("SHMKIT_TRUST");
		ck_assert_int_eq(fchown(lfd, 12345, 12345), 0);
		close(lfd);
	}
	ck_assert_int_eq(fchmod(fd, 0666), 0);
	v = NULL;
	ck_assert_int_eq(shmkit_value_open(name, &v), -EACCES);
	ck_assert_int_eq(fchmod(fd, 0620), 0);
	ck_assert_int_eq(shmkit_value_open(name, &v), -EACCES);
	ck_assert_ptr_null(v);
	/* Writable by its owner only, but that owner is less privileged than root: refused by
	 * default (the sharing policy, shmkit(7)), accepted with SHMKIT_TRUST=any. */
	ck_assert_int_eq(fchmod(fd, 0644), 0);
	ck_assert_int_eq(shmkit_value_open(name, &v), -EACCES);
	setenv("SHMKIT_TRUST", "any", 1);
	ck_assert_int_eq(shmkit_value_open(name, &v), 0);
	unsetenv("SHMKIT_TRUST");
	ck_assert_int_eq(shmkit_value_load(v), 3);
	shmkit_value_close(v);
	close(fd);
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* Modes                                                                                        */

static unsigned file_mode(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

static void check_mode(const struct kind *k, mode_t mask, unsigned mode, unsigned want)
{
	char name[TU_NAME_SIZE], path[4096];
	mode_t old;
	void *h = NULL;
	int err;

	tu_name_kind(name, k->tag, k->unlink);
	old = umask(mask);
	err = k->create(name, mode, &h);
	umask(old);
	ck_assert_int_eq(err, 0);
	ck_assert_msg(file_mode(tu_shm_path(path, sizeof(path), name)) == want,
		      "%s mode %o umask %o: %o", k->tag, mode, (unsigned)mask,
		      file_mode(path));
	if (k->has_sem)
		ck_assert_msg(file_mode(tu_sem_path(path, sizeof(path), name)) == want,
			      "sem of %s: %o", name, file_mode(path));
	k->close(h);
	ck_assert_int_eq(k->unlink(name), 0);
}

START_TEST(test_mode)
{
	const struct kind *k = &kinds[_i];
	char name[TU_NAME_SIZE], path[4096];
	void *h = NULL;

	check_mode(k, 077, 0640, 0640);
	check_mode(k, 022, 0666, 0666);
	check_mode(k, 0, 0, 0600);
	check_mode(k, 077, 0, 0600);
	check_mode(k, 0, 0400, 0400);

	tu_name_kind(name, k->tag, k->unlink);
	ck_assert_int_eq(k->create(name, 010000, &h), -EINVAL);
	ck_assert_ptr_null(h);
	ck_assert(!tu_exists(tu_shm_path(path, sizeof(path), name)));
	ck_assert(!tu_exists(tu_sem_path(path, sizeof(path), name)));
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* Anonymous objects                                                                            */

struct anon {
	shmkit_value *v;
	shmkit_array *a;
	shmkit_lock *l;
	shmkit_sem *s;
};

static int child_anon(void *arg)
{
	struct anon *o = arg;
	int64_t x;

	if (shmkit_value_load(o->v) != 11)
		return 1;
	shmkit_value_add(o->v, 5, SHMKIT_ADD_ATOMIC, NULL);
	if (shmkit_array_store(o->a, 2, 99))
		return 2;
	if (shmkit_array_load(o->a, 0, &x) || x != 3)
		return 3;
	/* The parent holds the lock: a child is another process. */
	if (shmkit_lock_acquire_try(o->l) != -EAGAIN)
		return 4;
	if (shmkit_sem_release(o->s))
		return 5;
	return 0;
}

START_TEST(test_anonymous_fork)
{
	struct anon o;
	pid_t pid;
	int64_t x;

	ck_assert_int_eq(shmkit_value_create(NULL, 11, 0, &o.v), 0);
	ck_assert_int_eq(shmkit_array_create(NULL, 4, 0, &o.a), 0);
	ck_assert_int_eq(shmkit_lock_create(NULL, 0, 0, &o.l), 0);
	ck_assert_int_eq(shmkit_sem_create(NULL, 0, 0, 0, &o.s), 0);
	ck_assert_int_eq(shmkit_array_store(o.a, 0, 3), 0);
	ck_assert_int_eq(shmkit_lock_acquire(o.l), 0);

	pid = tu_fork(child_anon, &o);
	ck_assert_int_eq(shmkit_sem_acquire_timeout(o.s, 30 * TU_NS_PER_S), 0);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(shmkit_value_load(o.v), 16);
	ck_assert_int_eq(shmkit_array_load(o.a, 2, &x), 0);
	ck_assert_int_eq(x, 99);
	ck_assert_int_eq(shmkit_lock_holder(o.l), getpid());
	ck_assert_int_eq(shmkit_lock_release(o.l), 0);

	ck_assert_int_eq(shmkit_value_close(o.v), 0);
	ck_assert_int_eq(shmkit_array_close(o.a), 0);
	ck_assert_int_eq(shmkit_lock_close(o.l), 0);
	ck_assert_int_eq(shmkit_sem_close(o.s), 0);
}
END_TEST

START_TEST(test_close_null)
{
	ck_assert_int_eq(shmkit_value_close(NULL), 0);
	ck_assert_int_eq(shmkit_array_close(NULL), 0);
	ck_assert_int_eq(shmkit_lock_close(NULL), 0);
	ck_assert_int_eq(shmkit_sem_close(NULL), 0);
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* shmkit_strerror                                                                              */

START_TEST(test_strerror)
{
	static const int codes[] = { EBADMSG,  EPROTOTYPE, EPROTO,    ENOTRECOVERABLE,
				     EPIPE,    EMSGSIZE,   EOVERFLOW, ECANCELED,
				     EUSERS,   EOWNERDEAD };
	const int n = sizeof(codes) / sizeof(codes[0]);
	const char *s[sizeof(codes) / sizeof(codes[0])];
	int i, j;

	for (i = 0; i < n; i++) {
		s[i] = shmkit_strerror(-codes[i]);
		ck_assert_ptr_nonnull(s[i]);
		ck_assert_int_gt(strlen(s[i]), 0);
		ck_assert_str_eq(s[i], shmkit_strerror(codes[i]));
		for (j = 0; j < i; j++)
			ck_assert_msg(strcmp(s[i], s[j]), "%d and %d both say '%s'", codes[i],
				      codes[j], s[i]);
	}
	ck_assert_ptr_nonnull(shmkit_strerror(0));
	ck_assert_ptr_nonnull(shmkit_strerror(-ENOENT));
	ck_assert_ptr_nonnull(shmkit_strerror(-99999));
	ck_assert_ptr_nonnull(shmkit_strerror(99999));
	ck_assert_ptr_nonnull(shmkit_strerror(INT32_MIN + 1));
}
END_TEST

/* Issue 22 item 10: an anonymous object reserves its memory at create, as a named one does in
 * /dev/shm: what cannot be backed is refused at once, not "created" to fail later. */
START_TEST(test_anon_reserved)
{
	shmkit_block *b = NULL;
	int64_t t0 = tu_now_ns();

	ck_assert_int_eq(shmkit_block_create(NULL, (size_t)1 << 40, 0600, &b), -ENOSPC);
	ck_assert_ptr_null(b);
	ck_assert_msg(tu_now_ns() - t0 < 10 * TU_NS_PER_S, "a refused create took %lld ms",
		      (long long)(tu_now_ns() - t0) / TU_NS_PER_MS);
	ck_assert_int_eq(shmkit_block_create(NULL, 1 << 20, 0600, &b), 0);
	memset(shmkit_block_data(b), 1, 1 << 20);
	shmkit_block_close(b);
}
END_TEST

/* Issue 22 item 7: with one free descriptor at open, a handle cannot have a lease descriptor
 * of its own apart from its mapping's: open says -EMFILE (and leaks nothing) rather than
 * leasing on the mapping's description, which a fork child would keep alive. */
static const char *emfile_name;

static int child_emfile(void *arg)
{
	struct rlimit rl;
	shmkit_lock *l = NULL;
	int fd, rc, k;

	(void)arg;
	if ((fd = dup(0)) < 0)
		return 90;
	close(fd);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = (rlim_t)fd + 1; /* fd is the one free descriptor */
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 91;
	rc = shmkit_lock_open(emfile_name, &l);
	if (rc != -EMFILE)
		return 100 + (rc < 0 ? -rc : rc) % 100;
	/* nothing leaked: the one descriptor is free again */
	if ((k = dup(0)) != fd)
		return 92;
	close(k);
	return 0;
}

START_TEST(test_open_emfile)
{
	char name[TU_NAME_SIZE];
	shmkit_lock *l;

	tu_name_kind(name, "emfile", shmkit_lock_unlink);
	ck_assert_int_eq(shmkit_lock_create(name, 0, 0600, &l), 0);
	emfile_name = name;
	ck_assert_int_eq(tu_wait_child(tu_fork(child_emfile, NULL), 30), 0);
	shmkit_lock_close(l);
}
END_TEST


static Suite *region_suite(void)
{
	Suite *s = suite_create("region");
	TCase *tc;

	tc = tu_tcase(s, "names", 60);
	tcase_add_loop_test(tc, test_bad_names, 0, NKINDS);
	tcase_add_loop_test(tc, test_name_200_ok, 0, NKINDS);

	tc = tu_tcase(s, "open", 120);
	tcase_add_loop_test(tc, test_create_twice, 0, NKINDS);
	tcase_add_loop_test(tc, test_open_missing, 0, NKINDS);
	tcase_add_loop_test(tc, test_open_other_kind, 0, NKINDS);
	tcase_add_test(tc, test_open_foreign);
	tcase_add_test(tc, test_open_foreign_short);
	tcase_add_test(tc, test_open_empty);
	tcase_add_loop_test(tc, test_open_truncated, 0, NKINDS);
	tcase_add_test(tc, test_open_truncated_below_header);
	tcase_add_test(tc, test_open_future_version);
	tcase_add_test(tc, test_open_bad_magic);
	tcase_add_test(tc, test_open_unknown_kind);
	tcase_add_test(tc, test_open_bad_state);
	tcase_add_test(tc, test_open_all_zero);
	tcase_add_test(tc, test_open_init_dead_creator);
	tcase_add_test(tc, test_open_init_live_creator);
	tcase_add_test(tc, test_open_waits_for_creator);
	tcase_add_test(tc, test_open_during_create);
	tcase_add_test(tc, test_open_foreign_owner);
	tcase_add_test(tc, test_open_emfile);
	tcase_add_test(tc, test_anon_reserved);

	tc = tu_tcase(s, "mode", 60);
	tcase_add_loop_test(tc, test_mode, 0, NKINDS);

	tc = tu_tcase(s, "misc", 60);
	tcase_add_test(tc, test_anonymous_fork);
	tcase_add_test(tc, test_close_null);
	tcase_add_test(tc, test_strerror);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(region_suite());
}
