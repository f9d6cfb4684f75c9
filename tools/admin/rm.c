/* `shmkit rm NAME...`: remove objects of any kind, with what they own and what kills left. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "admin/describe.h"
#include "util.h"

/* What the file under name is, for a refusal: "a fifo", "a regular file of 12 bytes
 * without shmkit's header", ... */
static void what_it_is(const char *name, char *buf, size_t size)
{
	char path[SHMKIT_NAME_MAX + 16];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	if (lstat(path, &st) < 0)
		snprintf(buf, size, "something that is not a shmkit object");
	else if (S_ISREG(st.st_mode))
		snprintf(buf, size, "a file of %lld bytes without shmkit's header",
			 (long long)st.st_size);
	else
		snprintf(buf, size, "%s", S_ISFIFO(st.st_mode)  ? "a fifo"
					  : S_ISDIR(st.st_mode)   ? "a directory"
					  : S_ISLNK(st.st_mode)   ? "a symbolic link"
					  : S_ISSOCK(st.st_mode)  ? "a socket"
								  : "a special file");
}

/* Say why name will not be removed; returns 1. */
static int refusal(const char *name, int err)
{
	char what[SHMKIT_NAME_MAX + 16], it[96];

	snprintf(what, sizeof(what), "rm %s", name);
	switch (err) {
	case -ENOENT:
		fprintf(stderr, "shmkit: %s: no such object\n", what);
		return 1;
	case -EBADMSG:
		what_it_is(name, it, sizeof(it));
		fprintf(stderr, "shmkit: %s: not a shmkit object (%s): left alone; remove "
				"/dev/shm%s by hand if it is yours\n", what, it, name);
		return 1;
	case -EBUSY:
		fprintf(stderr, "shmkit: %s: busy: a live process is still creating it: left alone "
				"(try again once it has finished)\n", what);
		return 1;
	default:
		return runtime_error(what, err);
	}
}

/* ------------------------------------------------------------------------------------------- */
/* rm                                                                                          */

int cmd_rm(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char what[SHMKIT_NAME_MAX + 16];
	int opt, err, i, rc = 0;

	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt != 'h')
			return bad_option("rm", opt, argv);
		printf("Usage: shmkit rm NAME...\n"
		       "Remove named shmkit objects of any kind, with what they own (a semaphore's\n"
		       "sem.NAME.sem), and what a killed create leaves (a region whose creator died\n"
		       "before it was ready). Only what is provably shmkit's is removed: anything\n"
		       "else (a file without shmkit's header, a fifo, ...) is left alone, and rm says\n"
		       "what it is. Every NAME is checked before any is removed: when one is missing\n"
		       "or not a shmkit object, nothing is removed and the exit status is 1.\n");
		return 0;
	}
	if (optind == argc)
		return usage_error("rm", "missing NAME");
	/* All names are checked before anything is removed: first that they are names, then
	 * that each is an object rm would remove. */
	for (i = optind; i < argc; i++)
		if ((err = check_name("rm", argv[i])))
			return err;
	for (i = optind; i < argc; i++)
		if ((err = shmkit_remove_check(argv[i])) < 0)
			rc = refusal(argv[i], err);
	if (rc) {
		fprintf(stderr, "shmkit: rm: nothing removed\n");
		return rc;
	}
	for (i = optind; i < argc; i++) {
		/* shmkit_remove judges again: what changed since the check is still never
		 * removed unless it is shmkit's. */
		if ((err = shmkit_remove(argv[i])) < 0) {
			snprintf(what, sizeof(what), "rm %s", argv[i]);
			rc = err == -ENOENT || err == -EBADMSG || err == -EBUSY
				     ? refusal(argv[i], err)
				     : runtime_error(what, err);
		}
	}
	return rc;
}
