/* threads.h: the one thread-count setting of the numeric core.
 *
 * Kernels parallelise with OpenMP over at most threads_get() threads; OpenBLAS is kept
 * single-threaded and called from inside those threads, so there is one thread pool.
 */
#ifndef BASIN_CORE_THREADS_H
#define BASIN_CORE_THREADS_H

/* Set the thread count (clamped to 1..256). 0 means "all cores". Returns the count in use.
 * Safe to call while other threads run kernels: a computation that sized scratch for the
 * old count pins it (threads_pin) and is not affected. */
int threads_set(int n);
/* The count kernels use on the calling thread: its pinned count if any, else the setting. */
int threads_get(void);
/* Pin the calling thread's threads_get() to n (clamped to 1..256; 0 unpins) whatever
 * threads_set() does meanwhile, so a computation whose scratch was sized for n threads runs
 * all its kernels with n. Returns the previous pin (0: none), for restoring. */
int threads_pin(int n);

#endif
