/* sharpness.c: epsilon-sharpness of a loss grid with disc membership in index space.
 *
 * ref: mission-anchors 1.6 (calculate_sharpness: 100 (L_max disc - L_min grid) /
 *      (1 + L_min grid); the float-coordinate trap), 1.7 (mean, std, max over the pairs
 *      42, 43, 44; EIHW/ASC_Sharpness "ICASSP Sharpness Experiment Results" Std column =
 *      sample standard deviation); basin_ref.py eps_sharpness.
 */
#include "basin/analysis/sharpness.h"

#include <math.h>

int sharpness_radius(double eps, double range, int n)
{
    if (n < 2 || !(range > 0) || !(eps >= 0)) return 0;
    return (int)floor(eps / (2.0 * range / (n - 1)) + 0.5);
}

int sharpness_in_disc(int ix, int iy, int n_x, int n_y, int radius)
{
    long dx = 2L * ix - (n_x - 1), dy = n_y > 1 ? 2L * iy - (n_y - 1) : 0;
    return dx * dx + dy * dy <= 4L * radius * radius;
}

void sharpness_of(const double *loss, int n_x, int n_y, int radius, struct sharpness *out)
{
    double lo = NAN, hi = NAN;
    int n_disc = 0, disc_missing = 0, missing = 0;
    for (int iy = 0; iy < n_y; iy++)
        for (int ix = 0; ix < n_x; ix++) {
            double v = loss[(long)iy * n_x + ix];
            int in = sharpness_in_disc(ix, iy, n_x, n_y, radius), have = !isnan(v);
            n_disc += in;
            if (!have) {
                missing++;
                disc_missing += in;
                continue;
            }
            if (isnan(lo) || v < lo) lo = v;
            if (in && (isnan(hi) || v > hi)) hi = v;
        }
    out->radius = radius;
    out->n_disc = n_disc;
    out->n_disc_missing = disc_missing;
    out->n_missing = missing;
    out->min_grid = lo;
    out->max_disc = hi;
    out->s = isnan(lo) || isnan(hi) ? NAN : 100.0 * (hi - lo) / (1.0 + lo);
}

void sharpness_stats(const double *s, int n, struct sharpness_stats *out)
{
    int k = 0;
    double sum = 0, mx = NAN;
    for (int i = 0; i < n; i++) {
        if (isnan(s[i])) continue;
        k++;
        sum += s[i];
        if (isnan(mx) || s[i] > mx) mx = s[i];
    }
    out->n = k;
    out->max = mx;
    out->mean = k ? sum / k : NAN;
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(s[i])) ss += (s[i] - out->mean) * (s[i] - out->mean);
    out->std = k > 1 ? sqrt(ss / (k - 1)) : k == 1 ? 0 : NAN;
}
