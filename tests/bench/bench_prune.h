/* bench_prune.h: what compression buys in speed (bench_prune.c), called from bench.c:
 *
 *   bench prune   the default model (assets/) dense vs structured-pruned to half its MACs
 *                 (prune structured macs=50%): eval-mode forward time per 10-s clip at
 *                 batch 8 on 1 and 2 threads, best of 5, and the speed-up. int8 is simulated
 *                 in float (model/compress.h), so it has no speed of its own to measure.
 *
 * Prints "RESULT prune ..." lines. Returns 0, or 1 when the default model is missing. */
#ifndef BASIN_BENCH_PRUNE_H
#define BASIN_BENCH_PRUNE_H

int bench_prune(void);

#endif
