/* znorm.c: per-bin feature statistics (mean, unbiased std) and z-normalisation.
 *
 * Key idea: each added block is reduced to (count, mean, M2) per bin in double with a
 * two-pass sum, then merged into the running totals with Chan, Golub and LeVeque's pairwise
 * update: mean += d * n_b / n, M2 += M2_b + d^2 * n_a * n_b / n (d = mean_b - mean_a).
 *
 * ref: kkoutini/cpjku_dcase20 datasets.py: cal_mean, cal_std (torch .std(0), unbiased),
 *      norm_func (x - tr_mean) / tr_std; mission-anchors 2.5 step 5.
 * ref: Chan, Golub, LeVeque, "Algorithms for computing the sample variance" (1983).
 */
#include "basin/dsp/znorm.h"

#include <math.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"

int znorm_init(struct znorm *z, int n_bins)
{
    CHECK(n_bins >= 1);
    memset(z, 0, sizeof *z);
    z->mean = mem_calloc((size_t)n_bins, sizeof(double));
    z->m2 = mem_calloc((size_t)n_bins, sizeof(double));
    if (!z->mean || !z->m2) {
        znorm_fini(z);
        return STATUS_NOMEM;
    }
    z->n_bins = n_bins;
    return STATUS_OK;
}

void znorm_fini(struct znorm *z)
{
    mem_free(z->mean);
    mem_free(z->m2);
    memset(z, 0, sizeof *z);
}

/* Merge (n_b, mean_b, m2_b) into bin f of z, whose count is n_a. */
static void merge_bin(struct znorm *z, int f, long n_a, long n_b, double mean_b, double m2_b)
{
    double n = (double)(n_a + n_b), d = mean_b - z->mean[f];
    z->mean[f] += d * (double)n_b / n;
    z->m2[f] += m2_b + d * d * (double)n_a * (double)n_b / n;
}

void znorm_add(struct znorm *z, const float *x, long n_frames)
{
    CHECK(n_frames >= 1);
    for (int f = 0; f < z->n_bins; f++) {
        const float *row = x + (long)f * n_frames;
        double s = 0.0;
        for (long t = 0; t < n_frames; t++) s += row[t];
        double mean = s / (double)n_frames, m2 = 0.0;
        for (long t = 0; t < n_frames; t++) {
            double d = row[t] - mean;
            m2 += d * d;
        }
        merge_bin(z, f, z->count, n_frames, mean, m2);
    }
    z->count += n_frames;
}

void znorm_merge(struct znorm *dst, const struct znorm *src)
{
    CHECK(dst->n_bins == src->n_bins);
    if (!src->count) return;
    for (int f = 0; f < dst->n_bins; f++)
        merge_bin(dst, f, dst->count, src->count, src->mean[f], src->m2[f]);
    dst->count += src->count;
}

int znorm_finish(const struct znorm *z, float *mean, float *std)
{
    if (z->count < 2)
        return status_set(STATUS_INVALID,
                          "feature statistics need at least 2 frames per bin, got %ld", z->count);
    for (int f = 0; f < z->n_bins; f++) {
        mean[f] = (float)z->mean[f];
        std[f] = (float)sqrt(z->m2[f] / (double)(z->count - 1));
    }
    return STATUS_OK;
}

void znorm_apply(int n_bins, long n_frames, float *x, const float *mean, const float *std)
{
    for (int f = 0; f < n_bins; f++) {
        float *row = x + (long)f * n_frames;
        float mu = mean[f], sd = std[f] > 0.0f ? std[f] : 1.0f;
        for (long t = 0; t < n_frames; t++) row[t] = (row[t] - mu) / sd;
    }
}
