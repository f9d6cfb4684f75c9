/*
 * `shmkit demo event`: the lessons' "producer finished" Event. A producer puts its items on a
 * bounded Queue and then sets the Event; consumers keep taking items while the Event is not set
 * or the queue is not empty, exactly the lesson's loop, and stop once both say the work is over.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "demo/demo.h"
#include "util.h"

#define ITEMS 30
#define CONSUMERS 3
#define SEC 1000000000LL

struct line {
	shmkit_queue *q;
	shmkit_event *done;
	int report; /* pipe(2) to the parent: how many each consumer took */
};

static int consumer(void *arg, int id)
{
	struct line *l = arg;
	int item, took = 0, rc;

	/* while not event.is_set() or not queue.empty(): */
	while (!shmkit_event_is_set(l->done) || !shmkit_queue_empty(l->q)) {
		rc = shmkit_queue_get_timeout(l->q, &item, sizeof(item), SEC / 20);
		if (rc == sizeof(item)) {
			took++;
			demo_sleep_ms(2); /* consuming */
		} else if (rc != -ETIMEDOUT) {
			return 1;
		}
	}
	demo_say("  consumer %d: the producer is done and the queue is empty: took %d, stopping\n",
		 id, took);
	return write(l->report, &took, sizeof(took)) == sizeof(took) ? 0 : 1;
}

int demo_event(bool quick)
{
	struct shmkit_queue_attr attr = { .capacity = 10, .max_size = sizeof(int) };
	struct line l = { 0 };
	pid_t pids[CONSUMERS];
	int fds[2] = { -1, -1 }, i, rc, failed = 0, total = 0, took;

	(void)quick;
	printf("== Event: the producer tells the consumers it has finished ==\n");
	if ((rc = shmkit_queue_create(NULL, &attr, &l.q)) ||
	    (rc = shmkit_event_create(NULL, 0, &l.done))) {
		failed = runtime_error("demo: create", rc);
		goto out;
	}
	if (pipe(fds) < 0) {
		failed = runtime_error("demo: pipe", -errno);
		goto out;
	}
	l.report = fds[1];
	for (i = 0; i < CONSUMERS; i++)
		pids[i] = demo_fork(consumer, &l, i + 1);
	for (i = 0; i < ITEMS && !failed; i++)
		if (shmkit_queue_put_timeout(l.q, &i, sizeof(i), 30 * SEC))
			failed = 1;
	demo_say("  producer: put %d items on a queue that holds 10, then set the event "
		 "'producer done'\n", i);
	shmkit_event_set(l.done);
	failed += demo_reap(pids, CONSUMERS);
	close(fds[1]);
	fds[1] = -1;
	while (read(fds[0], &took, sizeof(took)) == sizeof(took))
		total += took;
	printf("  Taken in all: %d of %d. The Event is a flag every process can read: set() once,\n"
	       "  and every consumer sees it; together with an empty queue it means the work is\n"
	       "  over. (shmkit's queues also reach EOF when their last writer leaves, which says\n"
	       "  the same without a second object.)\n", total, ITEMS);
	if (total != ITEMS)
		failed++;
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	shmkit_queue_close(l.q);
	shmkit_event_close(l.done);
	if (failed) {
		fprintf(stderr, "shmkit: demo: the event lesson went wrong\n");
		return 1;
	}
	return 0;
}
