/*
 * Block: create/open/close/unlink, sizes (0, odd, big) and their validation, data shared
 * between handles and with forked children opening it by name, the recursive Lock (a child
 * killed holding it hands it over with SHMKIT_OWNER_DIED), shmkit_info and shmkit_remove.
 */
#include "config.h"

#include "testutil.h"

START_TEST(test_block_basic)
{
	char name[TU_NAME_SIZE];
	shmkit_block *b = NULL, *b2 = NULL;
	unsigned char *d, *d2;
	size_t i;

	tu_name_kind(name, "blk", shmkit_block_unlink);
	ck_assert_int_eq(shmkit_block_create(name, 1000, 0, &b), 0);
	ck_assert_uint_eq(shmkit_block_size(b), 1000);
	d = shmkit_block_data(b);
	ck_assert_uint_eq((uintptr_t)d % 64, 0);
	for (i = 0; i < 1000; i++)
		ck_assert_uint_eq(d[i], 0);
	ck_assert_int_eq(shmkit_block_create(name, 10, 0, &b2), -EEXIST);
	ck_assert_int_eq(shmkit_block_open(name, &b2), 0);
	ck_assert_uint_eq(shmkit_block_size(b2), 1000);
	d2 = shmkit_block_data(b2);
	for (i = 0; i < 1000; i++)
		d[i] = (unsigned char)(i * 7);
	for (i = 0; i < 1000; i++)
		ck_assert_uint_eq(d2[i], (unsigned char)(i * 7));
	ck_assert_int_eq(shmkit_block_close(b2), 0);
	ck_assert_int_eq(shmkit_block_close(b), 0);
	ck_assert_int_eq(shmkit_block_close(NULL), 0);
	ck_assert_int_eq(shmkit_block_unlink(name), 0);
	ck_assert_int_eq(shmkit_block_open(name, &b), -ENOENT);
	ck_assert_int_eq(shmkit_block_unlink(name), -ENOENT);
}
END_TEST

START_TEST(test_block_sizes)
{
	static const size_t sizes[] = { 0, 1, 63, 64, 65, 4096, 1 << 20 };
	char name[TU_NAME_SIZE];
	shmkit_block *b, *b2;
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		tu_name_kind(name, "blksz", shmkit_block_unlink);
		ck_assert_int_eq(shmkit_block_create(name, sizes[i], 0600, &b), 0);
		ck_assert_int_eq(shmkit_block_open(name, &b2), 0);
		ck_assert_uint_eq(shmkit_block_size(b2), sizes[i]);
		if (sizes[i])
			((unsigned char *)shmkit_block_data(b))[sizes[i] - 1] = 0xab;
		if (sizes[i])
			ck_assert_uint_eq(((unsigned char *)shmkit_block_data(b2))[sizes[i] - 1],
					  0xab);
		shmkit_block_close(b2);
		shmkit_block_close(b);
		ck_assert_int_eq(shmkit_block_unlink(name), 0);
	}
	/* anonymous, for fork */
	ck_assert_int_eq(shmkit_block_create(NULL, 128, 0, &b), 0);
	ck_assert_ptr_nonnull(shmkit_block_data(b));
	shmkit_block_close(b);
}
END_TEST

START_TEST(test_block_args)
{
	char name[TU_NAME_SIZE];
	shmkit_block *b = NULL;

	tu_name_kind(name, "blkarg", shmkit_block_unlink);
	ck_assert_int_eq(shmkit_block_create(name, 16, 0, NULL), -EINVAL);
	ck_assert_int_eq(shmkit_block_create(name, (size_t)1 << 41, 0, &b), -EINVAL);
	ck_assert_int_eq(shmkit_block_create("no-slash", 16, 0, &b), -EINVAL);
	ck_assert_int_eq(shmkit_block_create(name, 16, 010000, &b), -EINVAL);
	ck_assert_int_eq(shmkit_block_open(name, NULL), -EINVAL);
	ck_assert_int_eq(shmkit_block_open(name, &b), -ENOENT);
	ck_assert_ptr_null(b);
}
END_TEST

/* Another kind under the name is refused with -EPROTOTYPE, and a block is no Value. */
START_TEST(test_block_kind_checked)
{
	char name[TU_NAME_SIZE], name2[TU_NAME_SIZE];
	shmkit_value *v;
	shmkit_block *b = NULL;

	tu_name_kind(name, "blkv", shmkit_value_unlink);
	ck_assert_int_eq(shmkit_value_create(name, 1, 0, &v), 0);
	ck_assert_int_eq(shmkit_block_open(name, &b), -EPROTOTYPE);
	ck_assert_ptr_null(b);
	shmkit_value_close(v);
	tu_name_kind(name2, "blkk", shmkit_block_unlink);
	ck_assert_int_eq(shmkit_block_create(name2, 8, 0, &b), 0);
	ck_assert_int_eq(shmkit_value_open(name2, &v), -EPROTOTYPE);
	shmkit_block_close(b);
}
END_TEST

/* A region whose size does not match its header is refused, never mapped short. */
START_TEST(test_block_truncated)
{
	char name[TU_NAME_SIZE];
	shmkit_block *b;
	struct stat st;
	int fd;

	tu_name_kind(name, "blktr", shmkit_block_unlink);
	ck_assert_int_eq(shmkit_block_create(name, 4096, 0, &b), 0);
	shmkit_block_close(b);
	fd = shm_open(name, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(ftruncate(fd, st.st_size - 100), 0);
	close(fd);
	ck_assert_int_eq(shmkit_block_open(name, &b), -EBADMSG);
}
END_TEST

struct fill_arg {
	const char *name;
	int id;
};

/* Child: open by name, add its id to every byte it owns under the lock. */
static int child_fill(void *arg)
{
	struct fill_arg *fa = arg;
	shmkit_block *b;
	unsigned char *d;
	int i, k;

	if (shmkit_block_open(fa->name, &b))
		return 1;
	d = shmkit_block_data(b);
	for (k = 0; k < 1000; k++) {
		if (shmkit_lock_acquire(shmkit_block_lock(b)) < 0)
			return 2;
		/* recursive: a nested acquire by the holder does not deadlock */
		if (shmkit_lock_acquire(shmkit_block_lock(b)) != 0)
			return 3;
		for (i = 0; i < 8; i++)
			d[i]++;
		shmkit_lock_release(shmkit_block_lock(b));
		shmkit_lock_release(shmkit_block_lock(b));
	}
	d[100 + fa->id] = (unsigned char)fa->id;
	shmkit_block_close(b);
	return 0;
}

START_TEST(test_block_processes)
{
	char name[TU_NAME_SIZE];
	struct fill_arg fa[3];
	shmkit_block *b;
	unsigned char *d;
	pid_t pids[3];
	int i;

	tu_name_kind(name, "blkp", shmkit_block_unlink);
	ck_assert_int_eq(shmkit_block_create(name, 256, 0, &b), 0);
	for (i = 0; i < 3; i++) {
		fa[i].name = name;
		fa[i].id = i + 1;
		pids[i] = tu_fork(child_fill, &fa[i]);
	}
	ck_assert_int_eq(tu_wait_children(pids, 3, 60), 0);
	d = shmkit_block_data(b);
	/* 3 x 1000 increments per byte under the lock: 3000 mod 256 */
	for (i = 0; i < 8; i++)
		ck_assert_uint_eq(d[i], 3000 % 256);
	for (i = 1; i <= 3; i++)
		ck_assert_uint_eq(d[100 + i], i);
	ck_assert_int_eq(shmkit_lock_holder(shmkit_block_lock(b)), 0);
	shmkit_block_close(b);
}
END_TEST

static int child_die_holding(void *arg)
{
	if (shmkit_lock_acquire(arg) != 0)
		return 1;
	raise(SIGKILL);
	return 2;
}

START_TEST(test_block_owner_died_and_info)
{
	char name[TU_NAME_SIZE];
	struct shmkit_info in;
	shmkit_block *b;
	pid_t pid;

	tu_name_kind(name, "blkod", shmkit_block_unlink);
	ck_assert_int_eq(shmkit_block_create(name, 333, 0640, &b), 0);
	ck_assert_int_eq(shmkit_lock_close(shmkit_block_lock(b)), -EINVAL); /* borrowed */
	pid = tu_fork(child_die_holding, shmkit_block_lock(b));
	ck_assert_int_eq(tu_wait_child(pid, 30), 128 + SIGKILL);
	ck_assert_int_eq(shmkit_info(name, &in), 0);
	ck_assert_int_eq(in.kind, SHMKIT_KIND_BLOCK);
	ck_assert_str_eq(shmkit_kind_name(in.kind), "block");
	ck_assert_uint_eq(in.len, 333);
	ck_assert_uint_eq(in.mode, 0640);
	ck_assert_int_eq(in.holder, -pid); /* its lease is gone: shown as died holding it */
	ck_assert_int_eq(shmkit_lock_acquire_timeout(shmkit_block_lock(b), 10 * TU_NS_PER_S),
			 SHMKIT_OWNER_DIED);
	ck_assert_int_eq(shmkit_lock_release(shmkit_block_lock(b)), 0);
	ck_assert_int_eq(shmkit_info(name, &in), 0);
	ck_assert_int_eq(in.holder, 0);
	ck_assert_uint_eq(in.owner_deaths, 1);
	shmkit_block_close(b);
	ck_assert_int_eq(shmkit_remove(name), 0);
	ck_assert_int_eq(shmkit_info(name, &in), -ENOENT);
}
END_TEST

static Suite *block_suite(void)
{
	Suite *s = suite_create("block");
	TCase *tc;

	tc = tu_tcase(s, "ops", 60);
	tcase_add_test(tc, test_block_basic);
	tcase_add_test(tc, test_block_sizes);
	tcase_add_test(tc, test_block_args);
	tcase_add_test(tc, test_block_kind_checked);
	tcase_add_test(tc, test_block_truncated);
	tc = tu_tcase(s, "processes", 120);
	tcase_add_test(tc, test_block_processes);
	tcase_add_test(tc, test_block_owner_died_and_info);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(block_suite());
}
