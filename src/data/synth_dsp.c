/* synth_dsp.c: the scene synthesiser's small, deterministic signal kit.
 *
 * Key idea: the data set must come out byte-identical on every machine, and libm's
 * transcendentals are not bit-identical across libm versions or CPU dispatch paths (glibc
 * picks FMA variants of exp / sin at run time). So everything here is built from +, -, *, /
 * and sqrt, which IEEE 754 rounds exactly: sin / cos / exp2 are short polynomials after
 * exact range reduction, oscillators read a sine table through 32-bit integer phases, and
 * noise comes from rng_u64 (integer arithmetic). Filters are RBJ biquads designed in double
 * and run in float; control signals (envelopes, filter sweeps) run at one value per
 * SYNTH_BLOCK samples. The pragma in synth_internal.h stops GCC fusing a*b+c into FMAs.
 *
 * ref: R. Bristow-Johnson, "Cookbook formulae for audio EQ biquad filter coefficients";
 *      P. Kellet's pink noise filters (music-dsp archive, "economy" version);
 *      M. R. Schroeder (1962) and J. A. Moorer (1979) for comb + all-pass reverberation,
 *      with Freeverb's damped comb and all-pass (Jezar, public domain) as the model.
 */
#include "synth_internal.h"

#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"

/* ---- math --------------------------------------------------------------------------- */

/* |x| <= pi/4: Taylor series to x^13 / x^14; error below 1e-14. */
static double sin_poly(double x)
{
    double x2 = x * x;
    return x + x * x2 * (-1.0 / 6 + x2 * (1.0 / 120 + x2 * (-1.0 / 5040 + x2 * (1.0 / 362880 +
                   x2 * (-1.0 / 39916800 + x2 * (1.0 / 6227020800.0))))));
}

static double cos_poly(double x)
{
    double x2 = x * x;
    return 1 + x2 * (-0.5 + x2 * (1.0 / 24 + x2 * (-1.0 / 720 + x2 * (1.0 / 40320 +
               x2 * (-1.0 / 3628800 + x2 * (1.0 / 479001600 + x2 * (-1.0 / 87178291200.0)))))));
}

/* x = k pi/2 + r with |r| <= pi/4 (pi/2 split in two parts, so r is accurate for the
 * |x| < 1e4 this generator uses). */
static double quadrant(double x, long *k)
{
    double q = x * (2 / SYNTH_PI);
    long kk = (long)(q >= 0 ? q + 0.5 : q - 0.5);
    *k = kk;
    return (x - (double)kk * 1.5707963267341256) - (double)kk * 6.077100506506192e-11;
}

double synth_sin(double x)
{
    long k;
    double r = quadrant(x, &k);
    switch (k & 3) {
    case 0: return sin_poly(r);
    case 1: return cos_poly(r);
    case 2: return -sin_poly(r);
    default: return -cos_poly(r);
    }
}

double synth_cos(double x)
{
    long k;
    double r = quadrant(x, &k);
    switch (k & 3) {
    case 0: return cos_poly(r);
    case 1: return -sin_poly(r);
    case 2: return -cos_poly(r);
    default: return sin_poly(r);
    }
}

double synth_exp2(double x)
{
    if (x > 1000) x = 1000;
    if (x < -1000) x = -1000;
    long k = (long)x;
    if ((double)k > x) k--; /* floor */
    double t = (x - (double)k) * 0.69314718055994530942, s = 1, term = 1;
    for (int i = 1; i <= 16; i++) { /* e^t for t in [0, ln 2): 16 terms, error < 1e-17 */
        term = term * t / i;
        s += term;
    }
    /* 2^k by exponent bits: exact, and no ldexp. */
    while (k > 1000) { s *= 0x1p1000; k -= 1000; }
    while (k < -1000) { s *= 0x1p-1000; k += 1000; }
    union { double d; uint64_t u; } p;
    p.u = (uint64_t)(k + 1023) << 52;
    return s * p.d;
}

double synth_db(double db)
{
    return synth_exp2(db * (3.32192809488736234787 / 20));
}

double synth_unif(struct rng *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_uniform(r);
}

double synth_oct(struct rng *r, double value, double oct)
{
    return value * synth_exp2(oct * (2 * rng_uniform(r) - 1));
}

int synth_poisson(struct rng *r, double lambda)
{
    if (lambda <= 0) return 0;
    /* Knuth's product of uniforms underflows for large means: add Poisson(200) parts. */
    int k0 = 0;
    for (; lambda > 200; lambda -= 200) k0 += synth_poisson(r, 200);
    double limit = synth_exp2(-lambda * 1.44269504088896340736), prod = rng_uniform(r);
    int k = 0;
    while (prod > limit && k < 100000) {
        prod *= rng_uniform(r);
        k++;
    }
    return k0 + k;
}

/* ---- oscillators and noise ---------------------------------------------------------- */

void synth_sine_table(float *t)
{
    for (int i = 0; i <= SYNTH_SINE_N; i++)
        t[i] = (float)synth_sin(2 * SYNTH_PI * (double)i / SYNTH_SINE_N);
}

uint32_t synth_phase_inc(double hz, double sr)
{
    double f = hz / sr;
    if (!(f > 0)) return 0;
    if (f >= 0.5) f = 0.4999;
    return (uint32_t)(f * 4294967296.0);
}

void synth_white(struct rng *r, float *x, long n, float amp)
{
    const float k = amp * (1.0f / 8388608.0f); /* 24-bit integers -> [-amp, amp) */
    long i = 0;
    for (; i + 1 < n; i += 2) {
        uint64_t u = rng_u64(r);
        x[i] = (float)((int32_t)(uint32_t)(u >> 32) >> 8) * k;
        x[i + 1] = (float)((int32_t)(uint32_t)u >> 8) * k;
    }
    if (i < n) x[i] = (float)((int32_t)(uint32_t)(rng_u64(r) >> 32) >> 8) * k;
}

void synth_white_add(struct rng *r, float *x, long n, float amp)
{
    const float k = amp * (1.0f / 8388608.0f);
    long i = 0;
    for (; i + 1 < n; i += 2) {
        uint64_t u = rng_u64(r);
        x[i] += (float)((int32_t)(uint32_t)(u >> 32) >> 8) * k;
        x[i + 1] += (float)((int32_t)(uint32_t)u >> 8) * k;
    }
    if (i < n) x[i] += (float)((int32_t)(uint32_t)(rng_u64(r) >> 32) >> 8) * k;
}

/* ---- filters ------------------------------------------------------------------------ */

void synth_biquad_set(struct synth_biquad *f, enum synth_biquad_kind kind, double hz, double q,
                      double gain_db, double sr)
{
    if (hz < 5) hz = 5;
    if (hz > 0.45 * sr) hz = 0.45 * sr;
    if (q < 0.1) q = 0.1;
    double w = 2 * SYNTH_PI * hz / sr, c = synth_cos(w), s = synth_sin(w);
    double alpha = s / (2 * q), A = synth_db(gain_db * 0.5);
    double b0, b1, b2, a0, a1, a2;
    switch (kind) {
    case SYNTH_LOWPASS:
        b0 = (1 - c) / 2, b1 = 1 - c, b2 = (1 - c) / 2;
        a0 = 1 + alpha, a1 = -2 * c, a2 = 1 - alpha;
        break;
    case SYNTH_HIGHPASS:
        b0 = (1 + c) / 2, b1 = -(1 + c), b2 = (1 + c) / 2;
        a0 = 1 + alpha, a1 = -2 * c, a2 = 1 - alpha;
        break;
    case SYNTH_BANDPASS:
        b0 = alpha, b1 = 0, b2 = -alpha;
        a0 = 1 + alpha, a1 = -2 * c, a2 = 1 - alpha;
        break;
    case SYNTH_PEAK:
        b0 = 1 + alpha * A, b1 = -2 * c, b2 = 1 - alpha * A;
        a0 = 1 + alpha / A, a1 = -2 * c, a2 = 1 - alpha / A;
        break;
    case SYNTH_LOWSHELF: {
        double sq = 2 * sqrt(A) * alpha;
        b0 = A * ((A + 1) - (A - 1) * c + sq), b1 = 2 * A * ((A - 1) - (A + 1) * c);
        b2 = A * ((A + 1) - (A - 1) * c - sq);
        a0 = (A + 1) + (A - 1) * c + sq, a1 = -2 * ((A - 1) + (A + 1) * c);
        a2 = (A + 1) + (A - 1) * c - sq;
        break;
    }
    default: { /* SYNTH_HIGHSHELF */
        double sq = 2 * sqrt(A) * alpha;
        b0 = A * ((A + 1) + (A - 1) * c + sq), b1 = -2 * A * ((A - 1) + (A + 1) * c);
        b2 = A * ((A + 1) + (A - 1) * c - sq);
        a0 = (A + 1) - (A - 1) * c + sq, a1 = 2 * ((A - 1) - (A + 1) * c);
        a2 = (A + 1) - (A - 1) * c - sq;
        break;
    }
    }
    f->b0 = (float)(b0 / a0), f->b1 = (float)(b1 / a0), f->b2 = (float)(b2 / a0);
    f->a1 = (float)(a1 / a0), f->a2 = (float)(a2 / a0);
}

void synth_biquad_init(struct synth_biquad *f, enum synth_biquad_kind kind, double hz, double q,
                       double gain_db, double sr)
{
    f->z1 = f->z2 = 0;
    synth_biquad_set(f, kind, hz, q, gain_db, sr);
}

void synth_biquad_run(struct synth_biquad *f, float *x, long n)
{
    float b0 = f->b0, b1 = f->b1, b2 = f->b2, a1 = f->a1, a2 = f->a2, z1 = f->z1, z2 = f->z2;
    for (long i = 0; i < n; i++) {
        float in = x[i], out = b0 * in + z1;
        z1 = b1 * in - a1 * out + z2;
        z2 = b2 * in - a2 * out;
        x[i] = out;
    }
    /* Flush denormals: a filter ringing out in silence would otherwise crawl. */
    if (z1 > -1e-20f && z1 < 1e-20f) z1 = 0;
    if (z2 > -1e-20f && z2 < 1e-20f) z2 = 0;
    f->z1 = z1, f->z2 = z2;
}

float synth_onepole_coef(double hz, double sr)
{
    return (float)(1 - synth_exp2(-2 * SYNTH_PI * hz / sr * 1.44269504088896340736));
}

void synth_colour(float *x, long n, int colour, double sr)
{
    if (colour == 1) {
        float b0 = 0, b1 = 0, b2 = 0;
        for (long i = 0; i < n; i++) {
            float w = x[i];
            b0 = 0.99765f * b0 + w * 0.0990460f;
            b1 = 0.96300f * b1 + w * 0.2965164f;
            b2 = 0.57000f * b2 + w * 1.0526913f;
            x[i] = b0 + b1 + b2 + w * 0.1848f;
        }
    } else if (colour == 2) {
        float a = 1 - synth_onepole_coef(20, sr), y = 0;
        for (long i = 0; i < n; i++) {
            y = a * y + x[i];
            x[i] = y;
        }
    }
}

double synth_rms(const float *x, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n > 0 ? sqrt(s / (double)n) : 0;
}

void synth_scale(float *x, long n, float g)
{
    for (long i = 0; i < n; i++) x[i] *= g;
}

void synth_mix(float *y, const float *x, long n, float g)
{
    for (long i = 0; i < n; i++) y[i] += g * x[i];
}

/* ---- envelopes ---------------------------------------------------------------------- */

void synth_wander(struct rng *r, float *env, long n_blocks, double rate_hz, double depth_db,
                  double sr)
{
    double period = sr / (rate_hz > 0.01 ? rate_hz : 0.01) / SYNTH_BLOCK; /* in blocks */
    if (period < 1) period = 1;
    double g0 = synth_db(depth_db * (2 * rng_uniform(r) - 1));
    double g1 = synth_db(depth_db * (2 * rng_uniform(r) - 1));
    /* Start at a random point of the first interval, so segments do not all start on a
     * control point. */
    double pos = rng_uniform(r);
    for (long b = 0; b < n_blocks; b++) {
        env[b] = (float)(g0 + (g1 - g0) * pos);
        pos += 1 / period;
        while (pos >= 1) {
            pos -= 1;
            g0 = g1;
            g1 = synth_db(depth_db * (2 * rng_uniform(r) - 1));
        }
    }
}

void synth_apply_env(float *x, long n, const float *env)
{
    for (long b = 0, i0 = 0; i0 < n; b++, i0 += SYNTH_BLOCK) {
        float e = env[b], de = (env[b + 1] - env[b]) * (1.0f / SYNTH_BLOCK);
        long m = n - i0 < SYNTH_BLOCK ? n - i0 : SYNTH_BLOCK;
        for (long j = 0; j < m; j++) x[i0 + j] *= e + de * (float)j;
    }
}

/* ---- reverberation ------------------------------------------------------------------ */

int synth_reverb(const float *x, float *y, long n, double rt60_s, double size, double damp_hz,
                 double sr)
{
    static const double comb_ms[4] = {29.7, 37.1, 41.1, 43.7}, ap_ms[2] = {5.0, 1.7};
    long len[6], total = 0;
    for (int i = 0; i < 6; i++) {
        len[i] = (long)((i < 4 ? comb_ms[i] * size : ap_ms[i - 4]) * 1e-3 * sr) + 1;
        total += len[i];
    }
    float *buf = mem_calloc((size_t)total, sizeof *buf);
    if (!buf) return STATUS_NOMEM;
    float *line[6], g[4], state[4] = {0};
    long pos[6] = {0};
    for (int i = 0, off = 0; i < 6; off += (int)len[i], i++) line[i] = buf + off;
    for (int i = 0; i < 4; i++) /* decay by 60 dB in rt60_s: g = 10^(-3 len / (rt60 sr)) */
        g[i] = (float)synth_exp2(-3 * 3.32192809488736234787 * (double)len[i] / (rt60_s * sr));
    float damp = 1 - synth_onepole_coef(damp_hz, sr), keep = 1 - damp;
    const float in_gain = 0.25f;
    for (long t = 0; t < n; t++) {
        float in = x[t] * in_gain, acc = 0;
        for (int i = 0; i < 4; i++) {
            float o = line[i][pos[i]];
            state[i] = o * keep + state[i] * damp;
            line[i][pos[i]] = in + state[i] * g[i];
            if (++pos[i] == len[i]) pos[i] = 0;
            acc += o;
        }
        for (int i = 4; i < 6; i++) {
            float o = line[i][pos[i]];
            line[i][pos[i]] = acc + o * 0.5f;
            acc = o - acc;
            if (++pos[i] == len[i]) pos[i] = 0;
        }
        y[t] = acc;
    }
    mem_free(buf);
    return 0;
}
