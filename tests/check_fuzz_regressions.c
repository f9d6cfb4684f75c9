/*
 * The fuzz regressions: every input in tests/fuzz/regressions/ (one that once crashed or hung
 * the library, see tests/fuzz/README.md) replayed as a region through tests/fuzz_region.c's
 * fuzz_region_one(), each in a forked child with a deadline, so a crash or a hang fails its
 * input by name instead of the suite. Built, like the fuzzer, with the library's sources
 * compiled in (tests/fuzz_region.c reads the private layout).
 *
 * FUZZ_REGRESSIONS=DIR in the environment replays DIR instead.
 */
#include "config.h"

#include <dirent.h>

#include "testutil.h"

/* tests/fuzz_region.c, linked in: replays one input as a region. */
int fuzz_region_one(const char *name, const uint8_t *data, size_t size);

#ifndef FUZZ_REGRESSIONS
#define FUZZ_REGRESSIONS "tests/fuzz/regressions"
#endif

#define CHILD_TIMEOUT_S 20.0

struct replay {
	const char *name, *path;
};

static int replay_child(void *arg)
{
	struct replay *r = arg;
	unsigned char *data;
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return 2;
	data = malloc((size_t)st.st_size + 1);
	n = read(fd, data, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size)
		return 3;
	fuzz_region_one(r->name, data, (size_t)n);
	free(data);
	return 0;
}

START_TEST(test_fuzz_regressions)
{
	const char *dir = getenv("FUZZ_REGRESSIONS") ? getenv("FUZZ_REGRESSIONS")
						    : FUZZ_REGRESSIONS;
	struct replay *r = tu_shared(sizeof(*r));
	char name[TU_NAME_SIZE], path[4096];
	struct dirent *e;
	int n = 0, rc;
	DIR *d;

	d = opendir(dir);
	ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 4, ".bin"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		r->name = tu_name(name, "fuzz");
		r->path = path;
		rc = tu_wait_child(tu_fork(replay_child, r), CHILD_TIMEOUT_S);
		ck_assert_msg(rc == 0, "%s: status %d", e->d_name, rc);
		n++;
	}
	closedir(d);
	ck_assert_msg(n > 0, "no *.bin inputs in %s", dir);
}
END_TEST

static Suite *fuzz_regressions_suite(void)
{
	Suite *s = suite_create("fuzz regressions");
	TCase *tc;

	tc = tu_tcase(s, "fuzz regressions", 120);
	tcase_add_test(tc, test_fuzz_regressions);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(fuzz_regressions_suite());
}
