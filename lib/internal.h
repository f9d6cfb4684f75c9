/*
 * Every private header at once, for the white-box tests and the fuzzer only (tests/check_ring.c,
 * tests/fuzz_region.c). Library files include the headers of the layers they use.
 */
#ifndef SHMKIT_INTERNAL_H
#define SHMKIT_INTERNAL_H

#include "common.h"
#include "deadlock.h"
#include "hold.h"
#include "kinds.h"
#include "lease.h"
#include "mutex.h"
#include "proc.h"
#include "region.h"
#include "wait.h"

#endif /* SHMKIT_INTERNAL_H */
