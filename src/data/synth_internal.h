/* synth_internal.h: what synth.c, synth_dsp.c, synth_scene.c and synth_device.c share.
 * Not a public header: the public contract is include/basin/data/synth.h.
 *
 * Every synth_*.c includes this header before any function, so the pragma below applies to
 * all of them: with -march=x86-64-v3 GCC would otherwise fuse a*b+c into FMAs where it sees
 * fit, differently at -O0 and -O3, and the WAV bytes would depend on the build (checked:
 * release, debug and asan builds write identical data sets).
 */
#ifndef BASIN_SRC_DATA_SYNTH_INTERNAL_H
#define BASIN_SRC_DATA_SYNTH_INTERNAL_H

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdint.h>

#include "basin/core/rng.h"

/* ---- deterministic math (synth_dsp.c): polynomials, no libm ------------------------- */

#define SYNTH_PI 3.14159265358979323846

double synth_sin(double x);
double synth_cos(double x);
double synth_exp2(double x);     /* 2^x, |x| <= 1000 */
double synth_db(double db);      /* 10^(db / 20) */

/* Uniform in [lo, hi) and "value times 2^(±oct)" (log-uniform spread in octaves). */
double synth_unif(struct rng *r, double lo, double hi);
double synth_oct(struct rng *r, double value, double oct);
/* Poisson count with mean lambda, by multiplying uniforms (in parts of 200). */
int synth_poisson(struct rng *r, double lambda);

/* ---- signals ------------------------------------------------------------------------ */

/* Control signals run at one value per SYNTH_BLOCK samples. */
#define SYNTH_BLOCK 64
#define SYNTH_SINE_BITS 12
#define SYNTH_SINE_N (1 << SYNTH_SINE_BITS)

/* The sine table: SYNTH_SINE_N + 1 values of sin(2 pi i / N), built once per call. */
void synth_sine_table(float *t);
/* sin(2 pi phase / 2^32), linearly interpolated in the table. */
static inline float synth_sine_at(const float *t, uint32_t phase)
{
    uint32_t i = phase >> (32 - SYNTH_SINE_BITS);
    float f = (float)(phase & ((1u << (32 - SYNTH_SINE_BITS)) - 1)) *
              (1.0f / (float)(1u << (32 - SYNTH_SINE_BITS)));
    return t[i] + f * (t[i + 1] - t[i]);
}
/* Phase increment of frequency hz at rate sr (hz clamped to [0, sr/2)). */
uint32_t synth_phase_inc(double hz, double sr);

/* White noise, uniform in [-amp, amp), two samples per 64-bit draw; x = or += . */
void synth_white(struct rng *r, float *x, long n, float amp);
void synth_white_add(struct rng *r, float *x, long n, float amp);

/* RBJ cookbook biquad (transposed direct form II), coefficients designed in double. */
struct synth_biquad {
    float b0, b1, b2, a1, a2;
    float z1, z2;
};

enum synth_biquad_kind {
    SYNTH_LOWPASS,
    SYNTH_HIGHPASS,
    SYNTH_BANDPASS,     /* 0 dB peak gain */
    SYNTH_PEAK,         /* peaking EQ, gain_db at hz */
    SYNTH_LOWSHELF,
    SYNTH_HIGHSHELF,
};

/* Design (state kept, so coefficients can change between blocks). hz is clamped to
 * [5, 0.45 sr]. */
void synth_biquad_set(struct synth_biquad *f, enum synth_biquad_kind kind, double hz, double q,
                      double gain_db, double sr);
void synth_biquad_init(struct synth_biquad *f, enum synth_biquad_kind kind, double hz, double q,
                       double gain_db, double sr);
void synth_biquad_run(struct synth_biquad *f, float *x, long n);
/* One sample through f. */
static inline float synth_biquad_tick(struct synth_biquad *f, float in)
{
    float out = f->b0 * in + f->z1;
    f->z1 = f->b1 * in - f->a1 * out + f->z2;
    f->z2 = f->b2 * in - f->a2 * out;
    return out;
}

/* One-pole low-pass coefficient for a cutoff hz: y += a (x - y). */
float synth_onepole_coef(double hz, double sr);
/* Colour white noise in place: 1 pink (Kellet's 3-pole economy filter), 2 brown (leaky
 * integrator at 20 Hz). 0 leaves it white. */
void synth_colour(float *x, long n, int colour, double sr);

/* RMS of x over n samples (double accumulation, in order). */
double synth_rms(const float *x, long n);
/* x *= g. */
void synth_scale(float *x, long n, float g);
/* y += g x. */
void synth_mix(float *y, const float *x, long n, float g);

/* A slowly wandering gain: control points every 1/rate_hz seconds, drawn uniformly in
 * [-depth_db, depth_db], linearly interpolated per block; env gets n_blocks values
 * (n_blocks = n / SYNTH_BLOCK + 2). */
void synth_wander(struct rng *r, float *env, long n_blocks, double rate_hz, double depth_db,
                  double sr);
/* x[i] *= env interpolated linearly between block values. */
void synth_apply_env(float *x, long n, const float *env);

/* Schroeder-Moorer reverberation: 4 damped combs + 2 all-passes, x -> y (wet only, y may
 * equal x). rt60_s decay time, size scales the delays, damp_hz the in-loop low-pass. */
int synth_reverb(const float *x, float *y, long n, double rt60_s, double size, double damp_hz,
                 double sr);

/* ---- scenes (synth_scene.c) and devices (synth_device.c) --------------------------- */

/* Scratch for one thread: (n) buffers, block-rate envelopes and the sine table. */
struct synth_work {
    long n;
    float *mix, *wet, *a, *b, *c;     /* (n) each */
    float *env, *env2;                /* (n / SYNTH_BLOCK + 2) each: block-rate scratch */
    float *speed, *prox;              /* (n / SYNTH_BLOCK + 2) each: a vehicle's speed, nearness */
    float sine[SYNTH_SINE_N + 1];
    /* Cancellation inside a render: poll (NULL: never) is called at the start of every
     * ingredient; non-zero abandons the render, which returns STATUS_CANCELLED. */
    int (*poll)(void *user);
    void *poll_user;
};

struct synth_work *synth_work_create(long n);
void synth_work_destroy(struct synth_work *w);

/* Render scene k's sound field (before any device) into x (n samples at sr), from the
 * location stream loc (location-level parameters) and the segment stream seg (segment-level
 * variation, event times, noise). w holds at least n samples. STATUS_CANCELLED when w's
 * poll asked to stop (x is then garbage). */
int synth_scene_render(int k, const struct rng *loc, const struct rng *seg, double sr, float *x,
                       long n, struct synth_work *w);

/* Record x through device d into y (n), noise from r; tmp (n) is scratch. y and tmp may not
 * alias x or each other. */
void synth_device_render(int d, const struct rng *r, double sr, const float *x, float *y,
                         float *tmp, long n);
/* One line per device for the README ("b: high-pass 110 Hz, ..."). */
const char *synth_device_describe(int d);

/* One line per scene for the README ("park: wind gusts, birdsong, ..."). */
const char *synth_scene_describe(int k);

#endif
