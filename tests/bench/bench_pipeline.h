/* bench_pipeline.h: end-to-end benchmarks (bench_pipeline.c), called from bench.c:
 *
 *   bench loop MODEL N T     the real training loop at batch N on T threads
 *   bench predict MODEL T    predict on one 10-second clip, file to probabilities
 *
 * Each returns 0, 1 on a failure (message on stderr) or 2 on a bad model name. */
#ifndef BASIN_BENCH_PIPELINE_H
#define BASIN_BENCH_PIPELINE_H

int bench_loop(const char *model, int batch, int threads);
int bench_predict(const char *model, int threads);

#endif
