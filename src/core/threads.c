/* threads.c: the numeric core's thread count, one OpenMP setting (see threads.h). */
#include "basin/core/threads.h"

#include <omp.h>

static int n_threads;

int threads_set(int n)
{
    if (n <= 0) n = omp_get_num_procs();
    if (n > 256) n = 256;
    n_threads = n;
    omp_set_num_threads(n);
    return n;
}

int threads_get(void)
{
    if (!n_threads) threads_set(0);
    return n_threads;
}
