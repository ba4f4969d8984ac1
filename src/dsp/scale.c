/* scale.c: decibels (fast vectorised log10) and A-weighting.
 *
 * Key idea: a spectrogram needs hundreds of thousands of logarithms per clip (cpjku takes
 * the log of every FFT bin), and libm's scalar log10f costs more than the FFTs. scale_log10
 * splits x = 2^e * m with m in [sqrt(1/2), sqrt(2)) by bit manipulation and evaluates
 * ln m with Cephes' logf polynomial (no division), all in branch-free code the compiler
 * vectorises: 8 logarithms in about a dozen fused multiply-adds.
 *
 * ref: Cephes Math Library, logf.c (S. Moshier): the minimax polynomial for ln(1 + t).
 * ref: librosa.power_to_db (ref 1.0, amin 1e-10, top_db), librosa.amplitude_to_db,
 *      librosa.A_weighting (IEC 61672:2003 constants, min_db -80).
 */
#include "basin/dsp/scale.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "basin/core/status.h"

#define LOG10_2 0.30102999566398119521f
#define LOG10_E 0.43429448190325182765f

static inline float log10_one(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    /* Fold the mantissa into [sqrt(1/2), sqrt(2)) with integer operations only (they
     * if-convert and vectorise where a float select may not): 0x3fb504f3 is sqrt(2). */
    uint32_t mant = (bits & 0x007fffffu) | 0x3f800000u;
    uint32_t big = mant > 0x3fb504f3u;
    mant -= big << 23;
    int e = (int)(bits >> 23) - 127 + (int)big;
    float m;
    memcpy(&m, &mant, sizeof m);
    /* ln(1 + t) = t - t^2/2 + t^3 P(t), P Cephes' minimax polynomial (logf.c). */
    float t = m - 1.0f, t2 = t * t;
    float p = 7.0376836292e-2f;
    p = p * t - 1.1514610310e-1f;
    p = p * t + 1.1676998740e-1f;
    p = p * t - 1.2420140846e-1f;
    p = p * t + 1.4249322787e-1f;
    p = p * t - 1.6668057665e-1f;
    p = p * t + 2.0000714765e-1f;
    p = p * t - 2.4999993993e-1f;
    p = p * t + 3.3333331174e-1f;
    float ln_m = t - 0.5f * t2 + t * t2 * p;
    return (float)e * LOG10_2 + LOG10_E * ln_m;
}

void scale_log10(long n, float *y, const float *x)
{
#pragma omp simd
    for (long i = 0; i < n; i++) y[i] = log10_one(x[i]);
}

float scale_db(long n, float *y, const float *x, float amin, float mult)
{
    CHECK(amin >= 1e-30f);
    float top = -INFINITY;
#pragma omp simd reduction(max : top)
    for (long i = 0; i < n; i++) {
        float v = x[i] > amin ? x[i] : amin;
        v = mult * log10_one(v);
        y[i] = v;
        top = v > top ? v : top;
    }
    return top;
}

void scale_floor(long n, float *y, float floor_db)
{
#pragma omp simd
    for (long i = 0; i < n; i++) y[i] = y[i] > floor_db ? y[i] : floor_db;
}

double scale_a_weighting(double hz, double min_db)
{
    /* ref: librosa.A_weighting: c = (12194.217, 20.598997, 107.65265, 737.86223)^2. */
    const double c0 = 12194.217 * 12194.217, c1 = 20.598997 * 20.598997;
    const double c2 = 107.65265 * 107.65265, c3 = 737.86223 * 737.86223;
    double f2 = hz * hz;
    if (f2 <= 0.0) return min_db; /* log10(0) = -inf, clipped */
    double w = 2.0 + 20.0 * (log10(c0) + 2.0 * log10(f2) - log10(f2 + c0) - log10(f2 + c1) -
                             0.5 * log10(f2 + c2) - 0.5 * log10(f2 + c3));
    return w > min_db ? w : min_db;
}
