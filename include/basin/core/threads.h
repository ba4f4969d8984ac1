/* threads.h: the one thread-count setting of the numeric core.
 *
 * Kernels parallelise with OpenMP over at most threads_get() threads; OpenBLAS is kept
 * single-threaded and called from inside those threads, so there is one thread pool.
 */
#ifndef BASIN_CORE_THREADS_H
#define BASIN_CORE_THREADS_H

/* Set the thread count (clamped to 1..256). 0 means "all cores". Returns the count in use. */
int threads_set(int n);
int threads_get(void);

#endif
