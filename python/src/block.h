/* The Block object's layout: block.c makes it, syncvalue.c's SyncValue extends it. */
#ifndef SHMKIT_PY_BLOCK_H
#define SHMKIT_PY_BLOCK_H

#include "common.h"

typedef struct {
	PyObject_HEAD
	shmkit_block *b;
	Py_ssize_t exports; /* buffers handed out and not yet released */
	char fmt[16];       /* struct format of one item ("B" unless _set_format) */
	Py_ssize_t itemsize, shape;
} BlockObject;

#endif
