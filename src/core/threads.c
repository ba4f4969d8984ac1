/* threads.c: the numeric core's thread count, one OpenMP setting (see threads.h).
 *
 * The setting is shared and may change from another thread (the UI's `set threads` while a
 * background job trains), so it is read and written atomically; a pin is per thread. */
#include "basin/core/threads.h"

#include <omp.h>

static int n_threads;             /* 0 until the first threads_set() */
static _Thread_local int pinned;  /* the calling thread's pin, 0 when none */

int threads_set(int n)
{
    if (n <= 0) n = omp_get_num_procs();
    if (n > 256) n = 256;
    __atomic_store_n(&n_threads, n, __ATOMIC_RELAXED);
    omp_set_num_threads(n);
    return n;
}

int threads_get(void)
{
    if (pinned) return pinned;
    int n = __atomic_load_n(&n_threads, __ATOMIC_RELAXED);
    return n ? n : threads_set(0);
}

int threads_pin(int n)
{
    int old = pinned;
    pinned = n <= 0 ? 0 : n > 256 ? 256 : n;
    return old;
}
