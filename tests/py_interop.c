/*
 * The C side of the Python interop tests (python/tests/test_interop.py): a C program sharing a
 * Lock and a Value with Python processes by name.
 *
 *   py_interop add BLOCK LOCK N   add 1 N times to the int64 at the start of BLOCK (what
 *                                 shmkit.Value('q', name=BLOCK) holds), under LOCK (a
 *                                 shmkit.Lock(name=LOCK)) and, nested, the block's own RLock
 *   py_interop hold LOCK          acquire LOCK, print "held", and wait to be killed
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmkit.h"

static int fail(const char *what, int rc)
{
	fprintf(stderr, "py_interop: %s: %s\n", what, shmkit_strerror(rc));
	return 1;
}

static int add(const char *bname, const char *lname, long n)
{
	shmkit_block *b;
	shmkit_lock *l;
	int64_t *cell;
	long i;
	int rc;

	if ((rc = shmkit_block_open(bname, &b)) < 0)
		return fail(bname, rc);
	if ((rc = shmkit_lock_open(lname, &l)) < 0)
		return fail(lname, rc);
	if (shmkit_block_size(b) < sizeof(int64_t))
		return fail("block size", -EINVAL);
	cell = shmkit_block_data(b);
	for (i = 0; i < n; i++) {
		if ((rc = shmkit_lock_acquire(l)) < 0)
			return fail("acquire", rc);
		if ((rc = shmkit_lock_acquire(shmkit_block_lock(b))) < 0)
			return fail("acquire block lock", rc);
		/* a separate load and store: only the lock keeps updates from being lost */
		*(volatile int64_t *)cell = *(volatile int64_t *)cell + 1;
		shmkit_lock_release(shmkit_block_lock(b));
		shmkit_lock_release(l);
	}
	shmkit_lock_close(l);
	shmkit_block_close(b);
	return 0;
}

static int hold(const char *lname)
{
	shmkit_lock *l;
	int rc;

	if ((rc = shmkit_lock_open(lname, &l)) < 0)
		return fail(lname, rc);
	if ((rc = shmkit_lock_acquire(l)) < 0)
		return fail("acquire", rc);
	printf("held\n");
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "add"))
		return add(argv[2], argv[3], strtol(argv[4], NULL, 10));
	if (argc == 3 && !strcmp(argv[1], "hold"))
		return hold(argv[2]);
	fprintf(stderr, "usage: py_interop add BLOCK LOCK N | hold LOCK\n");
	return 2;
}
