/* shmkit_strerror: what a negative result means, in shmkit's words where they are sharper. */
#include "config.h"

#include <string.h>

#include "internal.h"

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
		return "Too many participants attached";
	case EOWNERDEAD:
		return "The previous holder died holding the lock";
	default:
		return strerror(err);
	}
}
