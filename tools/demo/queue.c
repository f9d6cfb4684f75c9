/* The producer/consumer lessons of `shmkit demo`: separate processes around named queues. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "demo/demo.h"
#include "util.h"

#define LOAVES 100
#define CUSTOMERS 5
#define SHELF 10

static void make_name(char *buf, size_t size, const char *what)
{
	snprintf(buf, size, "/shmkit-demo-%s-%d", what, (int)getpid());
}

static int customer(const char *shelf_name, int id, int report_fd)
{
	shmkit_queue *shelf;
	int loaf, taken = 0, rc;

	if (shmkit_queue_open(shelf_name, &shelf))
		return 1;
	/* EOF (-EPIPE) replaces the lesson's "bakery finished" Event. */
	while ((rc = shmkit_queue_get(shelf, &loaf, sizeof(loaf))) == sizeof(loaf)) {
		taken++;
		usleep(200); /* eating */
	}
	shmkit_queue_close(shelf);
	if (write(report_fd, (int[2]){ id, taken }, sizeof(int[2])) != sizeof(int[2]))
		return 1;
	return rc == -EPIPE ? 0 : 1;
}

int demo_bakery(void)
{
	struct shmkit_queue_attr attr = { .capacity = SHELF, .max_size = sizeof(int),
					  .writers = 1 };
	int taken[CUSTOMERS] = { 0 }, fds[2], i, rc, total = 0, failed = 0;
	pid_t pids[CUSTOMERS];
	shmkit_queue *shelf;
	char name[64];

	printf("== Producer and consumers: a bakery and %d customers around a shelf of %d ==\n",
	       CUSTOMERS, SHELF);
	make_name(name, sizeof(name), "shelf");
	if ((rc = shmkit_queue_create(name, &attr, &shelf)))
		return runtime_error("demo: create shelf", rc);
	if (pipe(fds) < 0) {
		shmkit_queue_close(shelf);
		shmkit_queue_unlink(name);
		return runtime_error("demo: pipe", -errno);
	}
	fflush(stdout);
	for (i = 0; i < CUSTOMERS; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(customer(name, i, fds[1]));
	}
	close(fds[1]);
	/* The bakery: blocks whenever the shelf is full, as the lesson's Condition did. */
	for (i = 0; i < LOAVES && rc == 0; i++)
		rc = shmkit_queue_put(shelf, &i, sizeof(i));
	shmkit_queue_detach_writer(shelf); /* the shelf reaches EOF once emptied */
	for (i = 0; i < CUSTOMERS; i++) {
		int rec[2], status;
		if (read(fds[0], rec, sizeof(rec)) == sizeof(rec) && rec[0] >= 0 &&
		    rec[0] < CUSTOMERS)
			taken[rec[0]] = rec[1];
		if (pids[i] < 0 || waitpid(pids[i], &status, 0) < 0 || status != 0)
			failed++;
	}
	close(fds[0]);
	shmkit_queue_close(shelf);
	shmkit_queue_unlink(name);
	printf("The bakery baked %d loaves onto a shelf that holds %d.\n", LOAVES, SHELF);
	for (i = 0; i < CUSTOMERS; i++) {
		printf("  customer %d (a separate process) took %d\n", i, taken[i]);
		total += taken[i];
	}
	printf("Taken in all: %d of %d, each loaf by exactly one customer.\n", total, LOAVES);
	if (rc || failed || total != LOAVES) {
		fprintf(stderr, "shmkit: demo: the bakery lesson went wrong\n");
		return 1;
	}
	return 0;
}

static const char *const dishes[] = { "salad", "rice", "side dish", "fruit" };
#define NDISHES (sizeof(dishes) / sizeof(dishes[0]))

/* The dryer: takes each washed dish, dries it, marks it done, passes it to the shelf. */
static int dryer(const char *washed_name, const char *dried_name)
{
	shmkit_queue *washed, *dried;
	char dish[32];
	int rc;

	if (shmkit_queue_open(washed_name, &washed) || shmkit_queue_open(dried_name, &dried))
		return 1;
	while ((rc = shmkit_queue_get(washed, dish, sizeof(dish) - 1)) >= 0) {
		dish[rc] = '\0';
		printf("    dryer  (pid %d): dried the %s\n", (int)getpid(), dish);
		fflush(stdout);
		if (shmkit_queue_put(dried, dish, (size_t)rc) || shmkit_queue_task_done(washed))
			return 1;
	}
	shmkit_queue_close(dried);
	shmkit_queue_close(washed);
	return rc == -EPIPE ? 0 : 1;
}

/* The shelf: stacks dried dishes. */
static int stacker(const char *dried_name)
{
	shmkit_queue *dried;
	char dish[32];
	int rc;

	if (shmkit_queue_open(dried_name, &dried))
		return 1;
	while ((rc = shmkit_queue_get(dried, dish, sizeof(dish) - 1)) >= 0) {
		dish[rc] = '\0';
		printf("      shelf  (pid %d): stacked the %s\n", (int)getpid(), dish);
		fflush(stdout);
		if (shmkit_queue_task_done(dried))
			return 1;
	}
	shmkit_queue_close(dried);
	return rc == -EPIPE ? 0 : 1;
}

int demo_dishes(void)
{
	struct shmkit_queue_attr attr = { .capacity = 4, .max_size = 31, .writers = 1,
					  .flags = SHMKIT_JOINABLE };
	char washed_name[64], dried_name[64];
	shmkit_queue *washed, *dried;
	int rc, status, failed = 0;
	pid_t pid[2];
	size_t i;

	printf("== A JoinableQueue pipeline: washer -> dryer -> shelf, three processes ==\n");
	make_name(washed_name, sizeof(washed_name), "washed");
	make_name(dried_name, sizeof(dried_name), "dried");
	if ((rc = shmkit_queue_create(washed_name, &attr, &washed)))
		return runtime_error("demo: create queue", rc);
	if ((rc = shmkit_queue_create(dried_name, &attr, &dried))) {
		shmkit_queue_close(washed);
		shmkit_queue_unlink(washed_name);
		return runtime_error("demo: create queue", rc);
	}
	fflush(stdout);
	if ((pid[0] = fork()) == 0)
		_exit(dryer(washed_name, dried_name));
	if ((pid[1] = fork()) == 0)
		_exit(stacker(dried_name));
	for (i = 0; i < NDISHES && rc == 0; i++) {
		printf("  washer (pid %d): washed the %s\n", (int)getpid(), dishes[i]);
		fflush(stdout);
		rc = shmkit_queue_put(washed, dishes[i], strlen(dishes[i]));
	}
	/* join: returns once the dryer has task_done'd every dish, then the shelf every one. */
	if (!rc)
		rc = shmkit_queue_join_timeout(washed, 10 * 1000000000LL);
	if (!rc)
		rc = shmkit_queue_join_timeout(dried, 10 * 1000000000LL);
	if (!rc)
		printf("  washer: join() returned: every dish is washed, dried and on the shelf.\n");
	shmkit_queue_detach_writer(washed); /* EOF lets the dryer, then the shelf, finish */
	for (i = 0; i < 2; i++)
		if (pid[i] < 0 || waitpid(pid[i], &status, 0) < 0 || status != 0)
			failed++;
	shmkit_queue_close(washed);
	shmkit_queue_close(dried);
	shmkit_queue_unlink(washed_name);
	shmkit_queue_unlink(dried_name);
	if (rc || failed) {
		fprintf(stderr, "shmkit: demo: the dishes lesson went wrong: %s\n",
			rc ? shmkit_strerror(rc) : "a process failed");
		return 1;
	}
	return 0;
}
