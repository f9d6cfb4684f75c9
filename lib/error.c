/* shmkit_strerror: what a negative result means, in shmkit's words where they are sharper. */
#include "config.h"

#include <string.h>

#include "common.h"

SHMKIT__API const char *shmkit_version(void)
{
	return SHMKIT_VERSION;
}

SHMKIT__API const char *shmkit_strerror(int err)
{
	if (err == SHMKIT_OWNER_DIED)
		return "Acquired, but the previous holder died holding it";
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "Success";
	case EBADMSG:
		return "Not a shmkit region, or a corrupt or truncated one";
	case EPROTOTYPE:
		return "The object is of another kind";
	case EPROTO:
		return "The region has a layout version this shmkit does not know";
	case ENOTRECOVERABLE:
		return "The object's creator died before finishing it";
	case EPIPE:
		return "End of file: closed for writing, or the other end is gone";
	case EMSGSIZE:
		return "Message longer than the queue's maximum or the buffer";
	case EOVERFLOW:
		return "Bounded semaphore released more times than acquired";
	case ECANCELED:
		return "The barrier is broken";
	case EUSERS:
		return "Every seat of the object is held by a live process (1024 for a Lock, Value, "
		       "Array, Block, Condition, Semaphore or Barrier; 256 for a Queue): close "
		       "handles that are not in use";
	case EDQUOT:
		return "Every writer the queue was created for has attached (its --writers count): "
		       "a further writer, a forked child's included, is refused";
	case ENOLCK:
		return "This handle cannot take part in the object: it may only read it, or it is a "
		       "fork child's handle of an anonymous object on a system without /proc (a "
		       "named object can be opened again by name in the child)";
	case EDEADLK:
		return "Deadlock: this thread holds the lock already, or waiting would close a cycle "
		       "of processes waiting for each other's locks (release what you hold and retry)";
	case EACCES:
		return "Permission denied, or refused by the sharing policy (SHMKIT_TRUST, see "
		       "shmkit(7)): an object someone you do not trust may rewrite under you";
	case EOWNERDEAD:
		return "The previous holder died holding the lock";
	default:
		return strerror(err);
	}
}
