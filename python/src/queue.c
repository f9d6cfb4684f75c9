/*
 * Queue: a shmkit queue of pickles (put/get) or raw bytes (put_bytes/get_bytes).
 *
 * Handles. A shmkit handle is used by one thread at a time and takes one of the queue's 256
 * seats, while a Python Queue is shared by every thread of a process; so a process uses three
 * handles per Queue, whatever its number of threads, each behind a lock of its own: one that
 * puts, one that gets (its descriptor is fileno()), one for stats. A thread that finds the
 * handle busy waits for its lock, within its timeout: waiting for the lock of a handle
 * blocked in put (get) is waiting for the queue, since the puts (gets) of one process take
 * their turns at its tail (head) anyway. task_done() needs no lock: the library lets any
 * thread count a message done while the handle gets.
 *
 * put() without maxsize never blocks, as multiprocessing's: it goes straight into the ring
 * when this process buffers nothing and the ring has room (the fast path: a try, no thread);
 * otherwise the pickle joins a process-local FIFO that a feeder thread (queues.py starts it;
 * _feed below) puts into the ring in order, in batches, then exits when the FIFO is empty.
 * Order per thread holds: a direct put happens only under the put lock with the FIFO empty,
 * and the feeder takes messages off the FIFO only after they are in the ring. A JoinableQueue
 * counts what sits in the FIFO as unfinished work in shared memory (shmkit__queue_pending),
 * so join() waits for it in every process, and a process that dies takes the count with it.
 * Queue(maxsize=N) has a ring of N slots and put blocks in it (no FIFO).
 *
 * fork: a child starts with fresh locks, an empty FIFO, no feeder and the queue open (a
 * close() in the parent is the parent's); the library makes its inherited handles its own.
 */
#include "common.h"

#include <pthread.h>
#include <pythread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* lib/queue.c, private to the binding: count messages a local buffer holds as unfinished. */
int shmkit__queue_pending(shmkit_queue *h, int64_t n);

/* put() of a bytes object whose pickle fits builds that pickle here, on the stack. */
#define PUT_STACK_BYTES 1024
/* Messages per put_many / get_many call into the library. */
#define BATCH_MAX 256u
/* get copies a message of up to this many bytes (or a slot, if larger) into a buffer of its
 * handle; a longer one goes straight into a bytes object of its length. */
#define SMALL_GET 65536u
#define SK_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Bumped in the child of every fork: a Queue whose gen differs was inherited. */
static unsigned long fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void after_fork_child(void)
{
	fork_gen++;
}

static void atfork_install(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

struct role {
	shmkit_queue *h;
	PyThread_type_lock lock;
	int used; /* has made a call in this process (its participant entry exists) */
};

typedef struct {
	PyObject_HEAD
	char *name;
	uint32_t max_size, capacity, slot_size;
	uint64_t ring_bytes; /* capacity x slot_size: a longer message streams through */
	unsigned long gen;
	struct role put, get, aux;
	char *buf;   /* buf_size bytes: where get copies a small message out (under get.lock) */
	size_t buf_size;
	char *many;  /* get_many's buffers, slot_size bytes each (under get.lock) */
	size_t many_cap;
	int bounded; /* maxsize given: put blocks in the ring */
	int joinable;
	int closed;       /* close() was called in this process */
	int detach_owed;  /* closed, but the put handle was busy: its next user detaches it */
	/* The FIFO of pickles waiting for the ring: items[(head + i) % cap], i < n. */
	PyObject **items;
	size_t head, n, cap;
	int feeding; /* a feeder thread runs or is starting */
} QueueObject;

static void buffer_clear(QueueObject *self);

static int role_open(QueueObject *self, struct role *r)
{
	int rc;

	if (r->h)
		return 0;
	if ((rc = shmkit_queue_open(self->name, &r->h)) < 0)
		return sk_raise(rc, self->name), -1;
	return 0;
}

static void role_free(struct role *r)
{
	shmkit_queue_close(r->h);
	r->h = NULL;
	if (r->lock)
		PyThread_free_lock(r->lock);
	r->lock = NULL;
	r->used = 0;
}

static int locks_new(QueueObject *self)
{
	struct role *rs[] = { &self->put, &self->get, &self->aux };

	for (int i = 0; i < 3; i++)
		if (!(rs[i]->lock = PyThread_allocate_lock()))
			return PyErr_NoMemory(), -1;
	return 0;
}

/* An inherited Queue: another thread of the parent may have held a lock, and the FIFO and
 * its feeder were the parent's (multiprocessing's child starts with an empty buffer too). */
static int refork(QueueObject *self)
{
	struct role *rs[] = { &self->put, &self->get, &self->aux };

	for (int i = 0; i < 3; i++) {
		/* Not freed: a lock another thread held is in no state to be destroyed. */
		rs[i]->lock = NULL;
		rs[i]->used = 0;
	}
	if (locks_new(self) < 0)
		return -1;
	buffer_clear(self);
	self->feeding = 0;
	self->closed = 0;
	self->detach_owed = 0;
	self->gen = fork_gen;
	return 0;
}

static inline int ready(QueueObject *self)
{
	if (SK_UNLIKELY(self->gen != fork_gen) && refork(self) < 0)
		return -1;
	if (SK_UNLIKELY(self->closed))
		return PyErr_Format(PyExc_ValueError, "Queue %s is closed", self->name), -1;
	return 0;
}

/* Take r's lock: at once when free (the GIL kept), else waiting up to *t ns (-1: forever)
 * with the GIL released, signals let in every slice. 0 (the time left in *t), -ETIMEDOUT,
 * or SK_PYERR (a signal handler raised). */
static int role_enter(struct role *r, int64_t *t)
{
	int64_t deadline, left;
	PY_TIMEOUT_T us;
	PyLockStatus st;

	if (PyThread_acquire_lock(r->lock, NOWAIT_LOCK))
		return 0;
	if (*t == 0)
		return -ETIMEDOUT;
	deadline = *t < 0 ? INT64_MAX : sk_now_ns() + *t;
	for (;;) {
		us = SK_SLICE_NS / 1000;
		if (deadline != INT64_MAX) {
			left = deadline - sk_now_ns();
			if (left <= 0)
				return -ETIMEDOUT;
			if (left / 1000 < us)
				us = left / 1000;
		}
		Py_BEGIN_ALLOW_THREADS
		st = PyThread_acquire_lock_timed(r->lock, us, 1);
		Py_END_ALLOW_THREADS
		if (st == PY_LOCK_ACQUIRED)
			break;
		if (PyErr_CheckSignals() < 0)
			return SK_PYERR;
	}
	if (deadline != INT64_MAX) {
		left = deadline - sk_now_ns();
		*t = left > 0 ? left : 0;
	}
	return 0;
}

static inline void role_leave(struct role *r)
{
	PyThread_release_lock(r->lock);
}

/* Leave the put handle; a close() that found it busy left its detach to us. */
static void put_leave(QueueObject *self)
{
	if (SK_UNLIKELY(self->detach_owed) && self->n == 0 && !self->feeding) {
		shmkit_queue_detach_writer(self->put.h);
		self->detach_owed = 0;
	}
	role_leave(&self->put);
}

static int queue_init(QueueObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name",	"create",  "capacity", "max_size",  "writers",
				  "joinable", "mode",	   "hold",     "bounded",   "slot_size",
				  NULL };
	struct shmkit_queue_attr attr = { 0 };
	struct shmkit_queue_stats st;
	shmkit_queue *h;
	const char *name;
	int create = 0, joinable = 0, hold = 0, bounded = 0, rc;

	if (self->name)
		return PyErr_SetString(PyExc_RuntimeError, "already initialised"), -1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pIIIpIppI", kwlist, &name, &create,
					 &attr.capacity, &attr.max_size, &attr.writers, &joinable,
					 &attr.mode, &hold, &bounded, &attr.slot_size))
		return -1;
	pthread_once(&atfork_once, atfork_install);
	attr.flags = joinable ? SHMKIT_JOINABLE : 0;
	if (create) {
		Py_BEGIN_ALLOW_THREADS
		rc = shmkit_queue_create(name, &attr, &h);
		Py_END_ALLOW_THREADS
		if (rc < 0)
			return sk_raise(rc, name), -1;
		shmkit_queue_close(h);
	}
	if (!(self->name = PyMem_RawMalloc(strlen(name) + 1)))
		return PyErr_NoMemory(), -1;
	strcpy(self->name, name);
	self->gen = fork_gen;
	self->bounded = bounded;
	if (locks_new(self) < 0 || role_open(self, &self->put) < 0)
		return -1;
	self->max_size = shmkit_queue_max_size(self->put.h);
	self->slot_size = shmkit_queue_slot_size(self->put.h);
	if (shmkit_queue_stats(self->put.h, &st) == 0) {
		self->capacity = st.capacity;
		self->joinable = st.joinable;
	}
	self->ring_bytes = (uint64_t)self->capacity * self->slot_size;
	/* Small messages are copied out here and unpickled in place; a longer one is got
	 * straight into a bytes object of its size (get_large). */
	self->buf_size = self->slot_size > SMALL_GET ? self->slot_size : SMALL_GET;
	if (self->buf_size > self->max_size)
		self->buf_size = self->max_size ? self->max_size : 1;
	if (!(self->buf = PyMem_RawMalloc(self->buf_size)))
		return PyErr_NoMemory(), -1;
	/* The maker stays a writer until close(): EOF must not come before it says so. */
	if (hold) {
		if ((rc = shmkit_queue_attach_writer(self->put.h)) < 0)
			return sk_raise(rc, name), -1;
		self->put.used = 1;
	}
	return 0;
}

static void buffer_clear(QueueObject *self)
{
	while (self->n) {
		Py_DECREF(self->items[self->head]);
		self->head = (self->head + 1) % self->cap;
		self->n--;
	}
	self->head = 0;
}

static void queue_dealloc(QueueObject *self)
{
	/* put first: its pending count goes before the owed of the get handle (lib/queue.c). */
	role_free(&self->put);
	role_free(&self->get);
	role_free(&self->aux);
	buffer_clear(self);
	PyMem_RawFree(self->items);
	PyMem_RawFree(self->buf);
	PyMem_RawFree(self->many);
	PyMem_RawFree(self->name);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- put ------------------------------------------------------------------------------- */

struct xfer {
	shmkit_queue *h;
	const char *msg;
	char *buf;
	size_t len;
	struct iovec *iov;
	unsigned n;
};

/* A try's -EAGAIN is sk_block's -ETIMEDOUT (it tries first with t = 0, then sleeps). The
 * _try forms are used for t = 0 because they re-arm fileno()'s descriptor. */
static inline int tried(int rc)
{
	return rc == -EAGAIN ? -ETIMEDOUT : rc;
}

static int put_call(void *ctx, int64_t t)
{
	struct xfer *x = ctx;

	return t == 0 ? tried(shmkit_queue_put_try(x->h, x->msg, x->len))
		      : shmkit_queue_put_timeout(x->h, x->msg, x->len, t);
}

static int put_many_call(void *ctx, int64_t t)
{
	struct xfer *x = ctx;

	return t == 0 ? tried(shmkit_queue_put_many_try(x->h, x->iov, x->n))
		      : shmkit_queue_put_many_timeout(x->h, x->iov, x->n, t);
}

static int get_call(void *ctx, int64_t t)
{
	struct xfer *x = ctx;

	return t == 0 ? tried(shmkit_queue_get_try(x->h, x->buf, x->len))
		      : shmkit_queue_get_timeout(x->h, x->buf, x->len, t);
}

static int get_many_call(void *ctx, int64_t t)
{
	struct xfer *x = ctx;

	return t == 0 ? tried(shmkit_queue_get_many_try(x->h, x->iov, x->n))
		      : shmkit_queue_get_many_timeout(x->h, x->iov, x->n, t);
}

/* A message longer than the ring streams through it: one call, the GIL released, since a
 * timed put that runs out of time while streaming withdraws it (no slices), and a consumer in
 * this process needs the GIL meanwhile. Ctrl-C is seen when it returns. */
static int put_stream(struct xfer *x, int64_t t)
{
	int rc;

	Py_BEGIN_ALLOW_THREADS
	rc = t < 0 ? shmkit_queue_put(x->h, x->msg, x->len)
	     : t == 0 ? tried(shmkit_queue_put_try(x->h, x->msg, x->len))
		      : shmkit_queue_put_timeout(x->h, x->msg, x->len, t);
	Py_END_ALLOW_THREADS
	return rc;
}

static PyObject *put_error(QueueObject *self, int rc)
{
	if (rc == -EMSGSIZE)
		return PyErr_Format(PyExc_ValueError,
				    "message larger than queue %s's largest message, %u bytes: "
				    "nothing was queued",
				    self->name, self->max_size),
		       NULL;
	if (rc == -ETIMEDOUT || rc == -EAGAIN)
		return PyErr_SetNone(sk_Full), NULL;
	return sk_raise(rc, self->name);
}

/* The put handle as a writer in this process, for a FIFO's count: 0 or -1 (exception). */
static int put_attached(QueueObject *self)
{
	int64_t t = -1;
	int rc;

	if (self->put.used)
		return 0;
	if ((rc = role_enter(&self->put, &t)) < 0)
		return sk_raise(rc, self->name), -1;
	rc = shmkit_queue_attach_writer(self->put.h);
	if (rc == 0)
		self->put.used = 1;
	put_leave(self);
	return rc < 0 ? (sk_raise(rc, self->name), -1) : 0;
}

/* Append data (a new reference, stolen) to the FIFO, counted as unfinished work first on a
 * joinable queue; start a feeder when none runs. 0, or -1 (exception; nothing queued). */
static int buffer_push(QueueObject *self, PyObject *data)
{
	PyObject *r;

	if (self->joinable &&
	    (put_attached(self) < 0 || shmkit__queue_pending(self->put.h, 1) < 0)) {
		if (!PyErr_Occurred())
			PyErr_Format(PyExc_RuntimeError, "queue %s: cannot count a message",
				     self->name);
		Py_DECREF(data);
		return -1;
	}
	if (self->n == self->cap) {
		size_t cap = self->cap ? self->cap * 2 : 64, i;
		PyObject **items = PyMem_RawMalloc(cap * sizeof(*items));

		if (!items) {
			if (self->joinable)
				shmkit__queue_pending(self->put.h, -1);
			Py_DECREF(data);
			return PyErr_NoMemory(), -1;
		}
		for (i = 0; i < self->n; i++)
			items[i] = self->items[(self->head + i) % self->cap];
		PyMem_RawFree(self->items);
		self->items = items;
		self->cap = cap;
		self->head = 0;
	}
	self->items[(self->head + self->n) % self->cap] = data;
	self->n++;
	if (self->feeding)
		return 0;
	self->feeding = 1;
	if (!(r = PyObject_CallMethod((PyObject *)self, "_start_feeder", NULL))) {
		/* No thread: this message is not queued (the earlier ones have a feeder or were
		 * flushed: none runs only when the FIFO was empty). */
		self->feeding = 0;
		self->n--;
		Py_DECREF(data);
		if (self->joinable)
			shmkit__queue_pending(self->put.h, -1);
		return -1;
	}
	Py_DECREF(r);
	return 0;
}

/* Put msg[0..len); data, when not NULL, is the same message as a bytes object. */
static PyObject *put_msg(QueueObject *self, const char *msg, size_t len, PyObject *data,
			 int block, PyObject *timeout)
{
	struct xfer x;
	int64_t t;
	int rc;

	if (ready(self) < 0)
		return NULL;
	x.h = self->put.h;
	x.msg = msg;
	x.len = len;
	if (self->bounded) {
		if ((t = sk_block_timeout(block, timeout)) == -2)
			return NULL;
		if ((rc = role_enter(&self->put, &t)) == 0) {
			rc = len > self->ring_bytes ? put_stream(&x, t) : sk_block(put_call, &x, t);
			self->put.used = 1;
			put_leave(self);
		}
		return rc < 0 ? put_error(self, rc) : (Py_INCREF(Py_None), Py_None);
	}
	/* Unbounded: straight into the ring when nothing waits before it and it fits now. */
	if (self->n == 0 && PyThread_acquire_lock(self->put.lock, NOWAIT_LOCK)) {
		rc = shmkit_queue_put_try(x.h, msg, len);
		self->put.used = 1;
		put_leave(self);
		if (rc == 0)
			Py_RETURN_NONE;
		if (rc != -EAGAIN)
			return sk_raise(rc, self->name);
	}
	if (data)
		Py_INCREF(data);
	else if (!(data = PyBytes_FromStringAndSize(msg, (Py_ssize_t)len)))
		return NULL;
	if (buffer_push(self, data) < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* Put `data` (bytes): any size up to the queue's largest message goes through the ring. */
static PyObject *put_data(QueueObject *self, PyObject *data, int block, PyObject *timeout)
{
	if ((size_t)PyBytes_GET_SIZE(data) > self->max_size)
		return PyErr_Format(PyExc_ValueError,
				    "message of %zd bytes is larger than queue %s's largest "
				    "message, %u bytes: nothing was queued",
				    PyBytes_GET_SIZE(data), self->name, self->max_size),
		       NULL;
	return put_msg(self, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data), data, block,
		       timeout);
}

/* block=True, timeout=None from fast arguments; -1 on error. */
static int block_arg(PyObject *b, int *block)
{
	*block = b ? PyObject_IsTrue(b) : 1;
	return *block < 0 ? -1 : 0;
}

static PyObject *queue_put(QueueObject *self, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames)
{
	static const char *const names[] = { "obj", "block", "timeout" };
	PyObject *a[3], *data, *r;
	int block;

	if (sk_fast_args("put", args, nargs, kwnames, names, 3, 1, a) < 0 ||
	    block_arg(a[1], &block) < 0)
		return NULL;
	/* A small bytes object's pickle is built on the stack (no pickler, no bytes object):
	 * the common case of talking bytes between Python processes. */
	if (PyBytes_CheckExact(a[0])) {
		char pk[PUT_STACK_BYTES];
		Py_ssize_t n = sk_pickle_bytes_size(PyBytes_GET_SIZE(a[0]));

		if (n >= 0 && n <= (Py_ssize_t)sizeof(pk) && (size_t)n <= self->max_size) {
			sk_pickle_bytes(pk, PyBytes_AS_STRING(a[0]), PyBytes_GET_SIZE(a[0]));
			return put_msg(self, pk, (size_t)n, NULL, block, a[2] ? a[2] : Py_None);
		}
	}
	if (!(data = sk_pickle(a[0])))
		return NULL;
	r = put_data(self, data, block, a[2] ? a[2] : Py_None);
	Py_DECREF(data);
	return r;
}

static PyObject *queue_put_bytes(QueueObject *self, PyObject *const *args, Py_ssize_t nargs,
				 PyObject *kwnames)
{
	static const char *const names[] = { "data", "block", "timeout" };
	PyObject *a[3], *b, *r;
	int block;

	if (sk_fast_args("put_bytes", args, nargs, kwnames, names, 3, 1, a) < 0 ||
	    block_arg(a[1], &block) < 0)
		return NULL;
	if (!(b = PyBytes_CheckExact(a[0]) ? (Py_INCREF(a[0]), a[0]) : PyBytes_FromObject(a[0])))
		return NULL;
	r = put_data(self, b, block, a[2] ? a[2] : Py_None);
	Py_DECREF(b);
	return r;
}

/* ---- the feeder -------------------------------------------------------------------------- */

/* Run by the feeder thread (queues.py): put the FIFO into the ring in order, in batches,
 * until it is empty, then end (the next message buffered starts another). A failure (the
 * queue was shut down) drops what is buffered and is raised for the thread to report, as
 * multiprocessing's feeder reports its errors. */
static PyObject *queue_feed(QueueObject *self, PyObject *unused)
{
	struct iovec iov[BATCH_MAX];
	unsigned long gen = self->gen;
	struct xfer x;
	int64_t t;
	unsigned k, i;
	int rc;

	for (;;) {
		if (self->gen != gen || gen != fork_gen)
			Py_RETURN_NONE; /* inherited: the FIFO is gone */
		if (self->n == 0) {
			self->feeding = 0;
			if (self->detach_owed && PyThread_acquire_lock(self->put.lock, NOWAIT_LOCK))
				put_leave(self);
			Py_RETURN_NONE;
		}
		t = -1;
		if ((rc = role_enter(&self->put, &t)) < 0)
			break;
		x.h = self->put.h;
		if ((uint64_t)PyBytes_GET_SIZE(self->items[self->head]) > self->ring_bytes) {
			PyObject *b = self->items[self->head];
			x.msg = PyBytes_AS_STRING(b);
			x.len = (size_t)PyBytes_GET_SIZE(b);
			rc = put_stream(&x, -1);
			rc = rc == 0 ? 1 : rc;
			goto done;
		}
		k = self->n < BATCH_MAX ? (unsigned)self->n : BATCH_MAX;
		for (i = 0; i < k; i++) {
			PyObject *b = self->items[(self->head + i) % self->cap];
			iov[i].iov_base = PyBytes_AS_STRING(b);
			iov[i].iov_len = (size_t)PyBytes_GET_SIZE(b);
		}
		x.iov = iov;
		x.n = k;
		/* While this sleeps the FIFO only grows at its tail: the first k stay put. */
		rc = sk_block(put_many_call, &x, -1);
done:
		self->put.used = 1;
		if (rc > 0) {
			for (i = 0; i < (unsigned)rc; i++) {
				Py_DECREF(self->items[self->head]);
				self->head = (self->head + 1) % self->cap;
				self->n--;
			}
			/* After the ring has them: a joiner counting never misses them. */
			if (self->joinable)
				shmkit__queue_pending(self->put.h, -(int64_t)rc);
		}
		put_leave(self);
		if (rc < 0)
			break;
	}
	/* Dropped: the queue refuses them (shut down, or corrupt). */
	if (self->joinable && self->n && self->put.h)
		shmkit__queue_pending(self->put.h, -(int64_t)self->n);
	buffer_clear(self);
	self->feeding = 0;
	return sk_raise(rc, self->name);
}

static PyObject *queue_buffered(QueueObject *self, void *c)
{
	return PyLong_FromSize_t(self->gen == fork_gen ? self->n : 0);
}

/* ---- batches ----------------------------------------------------------------------------- */

/* put_many(iterable, block=True, timeout=None) -> how many were queued. */
static PyObject *queue_put_many(QueueObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "iterable", "block", "timeout", NULL };
	PyObject *it, *timeout = Py_None, *list = NULL, *seq, *item, *data, *r = NULL;
	struct iovec iov[BATCH_MAX];
	Py_ssize_t total, done = 0, i;
	int block = 1, rc = 0;
	struct xfer x;
	int64_t t, deadline;
	unsigned k;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|pO", kwlist, &it, &block, &timeout))
		return NULL;
	if ((t = sk_block_timeout(block, timeout)) == -2 || ready(self) < 0)
		return NULL;
	/* Pickled first, all of them: one that cannot be pickled queues nothing. */
	if (!(seq = PySequence_Fast(it, "put_many() wants an iterable")) ||
	    !(list = PyList_New(PySequence_Fast_GET_SIZE(seq))))
		goto out;
	total = PySequence_Fast_GET_SIZE(seq);
	for (i = 0; i < total; i++) {
		item = PySequence_Fast_GET_ITEM(seq, i);
		if (!(data = sk_pickle(item)))
			goto out;
		PyList_SET_ITEM(list, i, data);
		if ((size_t)PyBytes_GET_SIZE(data) > self->max_size) {
			put_error(self, -EMSGSIZE);
			goto out;
		}
	}
	x.h = self->put.h;
	x.iov = iov;
	deadline = t < 0 ? -1 : sk_now_ns() + t;
	if (self->bounded) {
		if ((rc = role_enter(&self->put, &t)) < 0)
			goto fail;
		while (done < total) {
			k = total - done < BATCH_MAX ? (unsigned)(total - done) : BATCH_MAX;
			for (i = 0; i < (Py_ssize_t)k; i++) {
				data = PyList_GET_ITEM(list, done + i);
				iov[i].iov_base = PyBytes_AS_STRING(data);
				iov[i].iov_len = (size_t)PyBytes_GET_SIZE(data);
			}
			x.n = k;
			if (deadline >= 0 && (t = deadline - sk_now_ns()) < 0)
				t = 0;
			if (iov[0].iov_len > self->ring_bytes) {
				x.msg = iov[0].iov_base;
				x.len = iov[0].iov_len;
				rc = put_stream(&x, t);
				rc = rc == 0 ? 1 : rc;
			} else {
				rc = sk_block(put_many_call, &x, t);
			}
			self->put.used = 1;
			if (rc < 0)
				break;
			done += rc;
		}
		put_leave(self);
		if (rc < 0 && rc != -ETIMEDOUT && rc != -EAGAIN)
			goto fail;
		if (done == 0 && total > 0)
			goto fail;
	} else {
		if (self->n == 0 && PyThread_acquire_lock(self->put.lock, NOWAIT_LOCK)) {
			while (done < total) {
				k = total - done < BATCH_MAX ? (unsigned)(total - done) : BATCH_MAX;
				for (i = 0; i < (Py_ssize_t)k; i++) {
					data = PyList_GET_ITEM(list, done + i);
					iov[i].iov_base = PyBytes_AS_STRING(data);
					iov[i].iov_len = (size_t)PyBytes_GET_SIZE(data);
				}
				x.n = k;
				rc = shmkit_queue_put_many_try(x.h, iov, k);
				self->put.used = 1;
				if (rc < 0)
					break;
				done += rc;
			}
			put_leave(self);
			if (rc < 0 && rc != -EAGAIN)
				goto fail;
		}
		for (; done < total; done++) {
			data = PyList_GET_ITEM(list, done);
			Py_INCREF(data);
			if (buffer_push(self, data) < 0)
				goto out;
		}
	}
	r = PyLong_FromSsize_t(done);
	goto out;
fail:
	put_error(self, rc);
out:
	Py_XDECREF(seq);
	Py_XDECREF(list);
	return r;
}

/* ---- messages out ------------------------------------------------------------------------ */

/* Unpickle; a message that is not a pickle says so (it is consumed, the next is not). */
static PyObject *unpickled(PyObject *self, const char *buf, Py_ssize_t n)
{
	PyObject *r = sk_unpickle(buf, n);

	if (!r && !PyErr_ExceptionMatches(PyExc_MemoryError)) {
		PyObject *et, *ev, *etb, *cls, *e;
		PyErr_Fetch(&et, &ev, &etb);
		PyErr_NormalizeException(&et, &ev, &etb);
		if ((cls = PyObject_GetAttrString(self, "_NotAPickle"))) {
			e = PyObject_CallFunction(cls, "N",
						  PyUnicode_FromFormat(
							  "a message of %zd bytes is not a pickle "
							  "(it was consumed; get_bytes()/recv_bytes() "
							  "take raw messages): %S",
							  n, ev ? ev : Py_None));
			if (e) {
				if (ev) {
					Py_INCREF(ev);
					PyException_SetCause(e, ev);
				}
				PyErr_SetObject(cls, e);
				Py_DECREF(e);
			}
			Py_DECREF(cls);
		}
		Py_XDECREF(et);
		Py_XDECREF(ev);
		Py_XDECREF(etb);
	}
	return r;
}

/* For the Pipe (conn.c), whose messages larger than a slot still travel in a block of their
 * own (_spill.py) until it sends them through the ring as the Queue does. */
PyObject *sk_message_bytes(PyObject *self, const char *buf, Py_ssize_t n);
PyObject *sk_message_object(PyObject *self, const char *buf, Py_ssize_t n);
PyObject *sk_message_bytes(PyObject *self, const char *buf, Py_ssize_t n)
{
	PyObject *marker, *r;

	if (!sk_is_spill(buf, n))
		return PyBytes_FromStringAndSize(buf, n);
	if (!(marker = PyBytes_FromStringAndSize(buf, n)))
		return NULL;
	r = PyObject_CallMethod(self, "_unspill", "O", marker);
	Py_DECREF(marker);
	return r;
}

PyObject *sk_message_object(PyObject *self, const char *buf, Py_ssize_t n)
{
	PyObject *data, *r;

	if (!sk_is_spill(buf, n))
		return unpickled(self, buf, n);
	if (!(data = sk_message_bytes(self, buf, n)))
		return NULL;
	r = unpickled(self, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
	Py_DECREF(data);
	return r;
}

/* ---- get --------------------------------------------------------------------------------- */

static PyObject *get_error(QueueObject *self, int rc)
{
	if (rc == -ETIMEDOUT || rc == -EAGAIN)
		return PyErr_SetNone(sk_Empty), NULL;
	if (rc == -EPIPE)
		return PyErr_Format(PyExc_EOFError,
				    "queue %s is at EOF: its writers are gone and it is drained",
				    self->name),
		       NULL;
	return sk_raise(rc, self->name);
}

/* Take the get handle: 0, or -1 with an exception set. */
static int get_enter(QueueObject *self, int64_t *t)
{
	int rc;

	if (ready(self) < 0 || (!self->get.h && role_open(self, &self->get) < 0))
		return -1;
	if ((rc = role_enter(&self->get, t)) < 0)
		return get_error(self, rc), -1;
	return 0;
}

/* Get a message longer than the handle's buffer into x->buf (its length): the GIL released
 * from the first try, since once this get has taken the start of a message longer than the
 * ring it waits for the rest, which a producer thread of this process may be writing. */
static int get_large(struct xfer *x, int64_t t)
{
	int rc;

	if (t != 0)
		return sk_block_asleep(get_call, x, t);
	Py_BEGIN_ALLOW_THREADS
	rc = tried(shmkit_queue_get_try(x->h, x->buf, x->len));
	Py_END_ALLOW_THREADS
	return rc;
}

/* One message, as bytes or unpickled, waiting up to t ns (-1: forever); the get lock held.
 * A small one is copied into the handle's buffer and unpickled there; a longer one goes
 * straight into a bytes object of its length (learnt first: shmkit_queue_next_size). */
static PyObject *get_locked(QueueObject *self, int64_t t, int as_bytes)
{
	int64_t deadline = t < 0 ? -1 : sk_now_ns() + t;
	struct xfer x;
	PyObject *b, *r;
	int rc, n;

	x.h = self->get.h;
	for (;;) {
		x.buf = self->buf;
		x.len = self->buf_size;
		rc = sk_block(get_call, &x, t);
		self->get.used = 1;
		if (rc >= 0)
			return as_bytes ? PyBytes_FromStringAndSize(self->buf, rc)
					: unpickled((PyObject *)self, self->buf, rc);
		if (rc != -EMSGSIZE)
			return get_error(self, rc);
		if ((n = shmkit_queue_next_size(x.h)) >= 0) {
			if (!(b = PyBytes_FromStringAndSize(NULL, n)))
				return NULL;
			x.buf = PyBytes_AS_STRING(b);
			x.len = (size_t)n;
			if (deadline >= 0 && (t = deadline - sk_now_ns()) < 0)
				t = 0;
			rc = get_large(&x, t);
			if (rc >= 0) {
				/* Another consumer took that one: this is the next, maybe shorter. */
				if (rc < n && _PyBytes_Resize(&b, rc) < 0)
					return NULL;
				if (as_bytes)
					return b;
				r = unpickled((PyObject *)self, PyBytes_AS_STRING(b), rc);
				Py_DECREF(b);
				return r;
			}
			Py_DECREF(b);
			if (rc != -EMSGSIZE) /* -EMSGSIZE: a longer one came first: again */
				return get_error(self, rc);
		} else if (n != -EAGAIN) {
			return get_error(self, n);
		}
		if (deadline >= 0 && (t = deadline - sk_now_ns()) < 0)
			t = 0;
	}
}

static PyObject *get_one(QueueObject *self, PyObject *const *args, Py_ssize_t nargs,
			 PyObject *kwnames, const char *fn, int as_bytes)
{
	static const char *const names[] = { "block", "timeout" };
	PyObject *a[2], *r;
	int64_t t;
	int block;

	if (sk_fast_args(fn, args, nargs, kwnames, names, 2, 0, a) < 0 ||
	    block_arg(a[0], &block) < 0 ||
	    (t = sk_block_timeout(block, a[1] ? a[1] : Py_None)) == -2 || get_enter(self, &t) < 0)
		return NULL;
	r = get_locked(self, t, as_bytes);
	role_leave(&self->get);
	return r;
}

static PyObject *queue_get(QueueObject *self, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames)
{
	return get_one(self, args, nargs, kwnames, "get", 0);
}

static PyObject *queue_get_bytes(QueueObject *self, PyObject *const *args, Py_ssize_t nargs,
				 PyObject *kwnames)
{
	return get_one(self, args, nargs, kwnames, "get_bytes", 1);
}

/* get_many(max, block=True, timeout=None) -> list: blocks for the first message as get()
 * does, then takes what else is ready now, up to max. */
static PyObject *queue_get_many(QueueObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "max", "block", "timeout", NULL };
	struct iovec iov[BATCH_MAX];
	PyObject *timeout = Py_None, *list = NULL, *o;
	Py_ssize_t max;
	size_t need, slot;
	int block = 1, rc, i;
	struct xfer x;
	int64_t t;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "n|pO", kwlist, &max, &block, &timeout))
		return NULL;
	if (max < 1)
		return PyErr_SetString(PyExc_ValueError, "get_many(): max must be at least 1"),
		       NULL;
	if (max > (Py_ssize_t)BATCH_MAX)
		max = BATCH_MAX;
	if ((t = sk_block_timeout(block, timeout)) == -2 || get_enter(self, &t) < 0)
		return NULL;
	/* Buffers of a slot: a message that does not fit the first is got alone (get_locked). */
	slot = self->slot_size < 256 ? 256 : self->slot_size;
	if (slot > self->buf_size)
		slot = self->buf_size;
	need = slot * (size_t)max;
	if (need > self->many_cap) {
		char *m = PyMem_RawRealloc(self->many, need);
		if (!m) {
			role_leave(&self->get);
			return PyErr_NoMemory();
		}
		self->many = m;
		self->many_cap = need;
	}
	for (i = 0; i < max; i++) {
		iov[i].iov_base = self->many + (size_t)i * slot;
		iov[i].iov_len = slot;
	}
	x.h = self->get.h;
	x.iov = iov;
	x.n = (unsigned)max;
	rc = sk_block(get_many_call, &x, t);
	self->get.used = 1;
	if (rc == -EMSGSIZE) {
		if ((o = get_locked(self, 0, 0)) && !(list = PyList_New(1)))
			Py_CLEAR(o);
		if (o)
			PyList_SET_ITEM(list, 0, o);
		goto out;
	}
	if (rc < 0) {
		get_error(self, rc);
		goto out;
	}
	if (!(list = PyList_New(rc)))
		goto out;
	for (i = 0; i < rc; i++) {
		/* One that cannot be unpickled: the rest are lost with the list, so say which. */
		if (!(o = unpickled((PyObject *)self, iov[i].iov_base,
				    (Py_ssize_t)iov[i].iov_len))) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, i, o);
	}
out:
	role_leave(&self->get);
	return list;
}

/* ---- joinable ---------------------------------------------------------------------------- */

static PyObject *queue_task_done(QueueObject *self, PyObject *unused)
{
	int rc;

	if (ready(self) < 0)
		return NULL;
	if (!self->joinable)
		return sk_raise(-ENOTSUP, self->name);
	/* No lock: the library lets task_done run while another thread gets on the handle; a
	 * handle that never got in this process has nothing to mark done. */
	rc = self->get.used ? shmkit_queue_task_done(self->get.h) : -EINVAL;
	if (rc == -EINVAL)
		return PyErr_SetString(PyExc_ValueError, "task_done() called too many times"), NULL;
	if (rc < 0)
		return sk_raise(rc, self->name);
	Py_RETURN_NONE;
}

static int join_call(void *ctx, int64_t t)
{
	return t == 0 ? tried(shmkit_queue_join_try(ctx)) : shmkit_queue_join_timeout(ctx, t);
}

/* join(timeout=None) -> bool, on a handle of its own for the wait (any number of threads may
 * join at once; none holds a handle the others need). */
static PyObject *queue_join(QueueObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *timeout = Py_None;
	shmkit_queue *h;
	int64_t t;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &timeout))
		return NULL;
	if ((t = sk_timeout_ns(timeout)) == -2 || ready(self) < 0)
		return NULL;
	if ((rc = shmkit_queue_open(self->name, &h)) < 0)
		return sk_raise(rc, self->name);
	rc = sk_block(join_call, h, t);
	shmkit_queue_close(h);
	if (rc == -ETIMEDOUT || rc == -EAGAIN)
		Py_RETURN_FALSE;
	if (rc < 0)
		return sk_raise(rc, self->name);
	Py_RETURN_TRUE;
}

/* ---- the rest ---------------------------------------------------------------------------- */

/* The stats handle, locked: 0, or -1 with an exception. */
static int aux_enter(QueueObject *self)
{
	int64_t t = -1;
	int rc;

	if (self->gen != fork_gen && refork(self) < 0)
		return -1;
	if (!self->aux.h && role_open(self, &self->aux) < 0)
		return -1;
	if ((rc = role_enter(&self->aux, &t)) < 0)
		return sk_raise(rc, self->name), -1;
	return 0;
}

/* Messages in the ring plus this process's FIFO (multiprocessing counts its buffer too). */
static PyObject *queue_qsize(QueueObject *self, PyObject *unused)
{
	size_t n = shmkit_queue_size(self->put.h);

	return PyLong_FromSize_t(n + (self->gen == fork_gen ? self->n : 0));
}

static PyObject *queue_empty(QueueObject *self, PyObject *unused)
{
	return PyBool_FromLong(shmkit_queue_empty(self->put.h) == 1 &&
			       (self->gen != fork_gen || self->n == 0));
}

/* Only a queue made with a maxsize is ever full (put without one never blocks). */
static PyObject *queue_full(QueueObject *self, PyObject *unused)
{
	return PyBool_FromLong(self->bounded && shmkit_queue_full(self->put.h) == 1);
}

static PyObject *queue_stats(QueueObject *self, PyObject *unused)
{
	struct shmkit_queue_stats st;
	int rc;

	if (aux_enter(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = shmkit_queue_stats(self->aux.h, &st);
	Py_END_ALLOW_THREADS
	role_leave(&self->aux);
	if (rc < 0)
		return sk_raise(rc, self->name);
	return Py_BuildValue(
		"{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:O,s:K,s:K,s:K,s:K,s:K,s:K,s:I,s:n}",
		"capacity", st.capacity, "max_size", st.max_size, "depth", st.depth,
		"writers_expected", st.writers_expected, "writers_attached", st.writers_attached,
		"writers_total", st.writers_total, "producers_waiting", st.producers_waiting,
		"consumers_waiting", st.consumers_waiting, "participants", st.participants, "eof",
		st.eof ? Py_True : Py_False, "joinable", st.joinable ? Py_True : Py_False,
		"put_total", (unsigned long long)st.put_total, "get_total",
		(unsigned long long)st.get_total, "unfinished", (unsigned long long)st.unfinished,
		"slots_reclaimed", (unsigned long long)st.slots_reclaimed, "lost_dead_consumer",
		(unsigned long long)st.lost_dead_consumer, "participants_reaped",
		(unsigned long long)st.participants_reaped, "slot_size", st.slot_size, "buffered",
		(Py_ssize_t)(self->gen == fork_gen ? self->n : 0));
}

/* This process puts no more: its put handle detaches as a writer (EOF may follow) once the
 * FIFO is flushed, at once when nothing is buffered and no put is under way. */
static PyObject *queue_close(QueueObject *self, PyObject *unused)
{
	if (self->gen != fork_gen && refork(self) < 0)
		return NULL;
	if (self->closed)
		Py_RETURN_NONE;
	self->closed = 1;
	self->detach_owed = 1;
	if (self->n == 0 && !self->feeding && PyThread_acquire_lock(self->put.lock, NOWAIT_LOCK))
		put_leave(self);
	Py_RETURN_NONE;
}

static PyObject *queue_shutdown(QueueObject *self, PyObject *unused)
{
	if (aux_enter(self) < 0)
		return NULL;
	shmkit_queue_shutdown(self->aux.h);
	role_leave(&self->aux);
	Py_RETURN_NONE;
}

/* The get handle's descriptor (shmkit_queue_fd): readable when a get may not block. */
static PyObject *queue_fileno(QueueObject *self, PyObject *unused)
{
	int64_t t = -1;
	int rc;

	if (get_enter(self, &t) < 0)
		return NULL;
	rc = shmkit_queue_fd(self->get.h);
	self->get.used = 1;
	role_leave(&self->get);
	return rc < 0 ? sk_raise(rc, self->name) : PyLong_FromLong(rc);
}

static PyObject *queue_name(QueueObject *self, void *c)
{
	return PyUnicode_FromString(self->name ? self->name : "");
}

static PyObject *queue_max_size(QueueObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->max_size);
}

static PyObject *queue_slot_size(QueueObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->slot_size);
}

static PyObject *queue_capacity(QueueObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->capacity);
}

static PyObject *queue_closed(QueueObject *self, void *c)
{
	return PyBool_FromLong(self->gen == fork_gen && self->closed);
}

#define KW METH_VARARGS | METH_KEYWORDS
#define FAST METH_FASTCALL | METH_KEYWORDS
#define F(f) (PyCFunction)(void (*)(void))(f)
static PyMethodDef queue_methods[] = {
	{ "put", F(queue_put), FAST, "put(obj, block=True, timeout=None)" },
	{ "get", F(queue_get), FAST, "get(block=True, timeout=None) -> obj" },
	{ "put_bytes", F(queue_put_bytes), FAST, "put_bytes(data, block=True, timeout=None)" },
	{ "get_bytes", F(queue_get_bytes), FAST, "get_bytes(block=True, timeout=None) -> bytes" },
	{ "put_many", F(queue_put_many), KW,
	  "put_many(iterable, block=True, timeout=None) -> int: how many were queued" },
	{ "get_many", F(queue_get_many), KW,
	  "get_many(max, block=True, timeout=None) -> list of 1..max objects" },
	{ "task_done", F(queue_task_done), METH_NOARGS, "task_done()" },
	{ "_join", F(queue_join), KW, "_join(timeout=None) -> bool" },
	{ "_feed", F(queue_feed), METH_NOARGS, "_feed(): the feeder thread's loop" },
	{ "qsize", F(queue_qsize), METH_NOARGS, "qsize() -> int" },
	{ "empty", F(queue_empty), METH_NOARGS, "empty() -> bool" },
	{ "full", F(queue_full), METH_NOARGS, "full() -> bool" },
	{ "stats", F(queue_stats), METH_NOARGS, "stats() -> dict" },
	{ "close", F(queue_close), METH_NOARGS, "close(): this process puts no more" },
	{ "shutdown", F(queue_shutdown), METH_NOARGS, "shutdown(): EOF for everyone now" },
	{ "fileno", F(queue_fileno), METH_NOARGS,
	  "fileno() -> int: readable when get_nowait() may succeed" },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef queue_getset[] = {
	{ "name", (getter)queue_name, NULL, NULL, NULL },
	{ "max_size", (getter)queue_max_size, NULL, "largest message (bytes)", NULL },
	{ "slot_size", (getter)queue_slot_size, NULL, "bytes in a slot", NULL },
	{ "capacity", (getter)queue_capacity, NULL, "slots in its ring", NULL },
	{ "_closed", (getter)queue_closed, NULL, NULL, NULL },
	{ "_buffered", (getter)queue_buffered, NULL, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject sk_QueueType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.Queue",
	.tp_basicsize = sizeof(QueueObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)queue_init,
	.tp_dealloc = (destructor)queue_dealloc,
	.tp_methods = queue_methods,
	.tp_getset = queue_getset,
};
