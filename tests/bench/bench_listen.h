/* bench_listen.h: the listening pipeline's benchmark (bench_listen.c), called from bench.c:
 *
 *   bench listen [SECONDS]   per-window cost against the hop, and a live run paced like a
 *                            sound card (SECONDS of audio per case, 6 by default): latency
 *                            and CPU use, for 1 and 2 threads, 48 kHz and 16 kHz input
 *
 * Prints "RESULT listen_cost ..." and "RESULT listen_live ..." lines for run.sh. Returns 0,
 * or 1 when the default model (assets/) is missing. */
#ifndef BASIN_BENCH_LISTEN_H
#define BASIN_BENCH_LISTEN_H

int bench_listen(double seconds);

#endif
