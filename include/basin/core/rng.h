/* rng.h: a deterministic, seedable random number generator (xoshiro256**, seeded through
 * splitmix64), with uniform and normal draws.
 *
 * Same seed, same stream, on every machine and thread count. A struct rng is plain caller
 * storage: copy it to fork a stream, or derive an independent one with rng_split().
 */
#ifndef BASIN_CORE_RNG_H
#define BASIN_CORE_RNG_H

#include <stdint.h>

struct rng {
    uint64_t s[4];
    double spare;      /* the second normal from the last Box-Muller pair */
    int has_spare;
};

void rng_seed(struct rng *r, uint64_t seed);
/* An independent stream derived from r and a tag (sample index, layer index...), without
 * advancing r. */
struct rng rng_split(const struct rng *r, uint64_t tag);
uint64_t rng_u64(struct rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double rng_uniform(struct rng *r);
/* Uniform integer in [0, n); n > 0. Unbiased. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Standard normal (Box-Muller, both values used). */
double rng_normal(struct rng *r);
/* Gamma(shape, 1) for shape > 0 (Marsaglia-Tsang) and Beta(a, b) from two gammas. */
double rng_gamma(struct rng *r, double shape);
double rng_beta(struct rng *r, double a, double b);
/* Fill x[0..n) with mean + std * N(0,1), or uniform in [lo, hi). */
void rng_fill_normal(struct rng *r, float *x, long n, float mean, float std);
void rng_fill_uniform(struct rng *r, float *x, long n, float lo, float hi);
/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle(struct rng *r, int *idx, int n);

#endif
