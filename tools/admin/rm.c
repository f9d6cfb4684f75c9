/* `shmkit rm NAME...`: remove objects of any kind, with what they own and what kills left. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "admin/describe.h"
#include "util.h"

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
		       "sem.NAME.sem). Anything that is not a shmkit object is left alone.\n"
		       "Exit status 1 when any NAME could not be removed.\n");
		return 0;
	}
	if (optind == argc)
		return usage_error("rm", "missing NAME");
	/* All names are checked before anything is removed. */
	for (i = optind; i < argc; i++)
		if ((err = check_name("rm", argv[i])))
			return err;
	for (i = optind; i < argc; i++) {
		if ((err = shmkit_remove(argv[i])) < 0) {
			snprintf(what, sizeof(what), "rm %s", argv[i]);
			rc = runtime_error(what, err);
		}
	}
	return rc;
}

