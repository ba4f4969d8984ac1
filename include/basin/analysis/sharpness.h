/* sharpness.h: epsilon-sharpness of a loss surface (Keskar et al. 2017, as ASC_Sharpness
 * computes it on a stored 2-D landscape).
 *
 *   S = 100 (max over the disc of radius eps - min over the grid) / (1 + min over the grid)
 *
 * ref: mission-anchors 1.6 (ASC_Sharpness calculate_curvature_value_folder.py
 * calculate_sharpness, 2-D mode). The disc is centred on the grid's centre (the
 * unperturbed weights); membership is decided in integer index space,
 * (2i - (n-1))^2 + (2j - (n-1))^2 <= (2R)^2 with R = round(eps / step) cells and step =
 * 2 range / (n-1) (indices doubled so an even n works), never on float coordinates, whose
 * rounding makes the reference code's disc asymmetric (77 points instead of 81 on its
 * 11 x 11 grid). As in the reference, the minimum is over the whole grid, not the centre.
 * On a 1-D slice the disc is the interval |2i - (n-1)| <= 2R (the reference's 1-D mode,
 * an asymmetric window around the argmin, is not reproduced). basin_ref.py eps_sharpness
 * computes the same.
 *
 * Over several direction pairs (the paper: seeds 42, 43, 44) the figures are the mean, the
 * sample standard deviation (n - 1, as the paper's results table: its Std column is the
 * sample deviation of the three pairs) and the maximum.
 *
 * Live use: points not computed yet are NaN and left out, and the result says how many of
 * the disc's points are still missing, so a view can show the figure settling.
 */
#ifndef BASIN_ANALYSIS_SHARPNESS_H
#define BASIN_ANALYSIS_SHARPNESS_H

struct sharpness {
    double s;                   /* the figure over the points there are (NaN: none) */
    double max_disc;            /* max of the disc's points there are */
    double min_grid;            /* min of the grid's points there are */
    int radius;                 /* R in cells */
    int n_disc;                 /* points in the disc */
    int n_disc_missing;         /* of them, not computed yet (NaN) */
    int n_missing;              /* points of the grid not computed yet */
};

/* R = round(eps / step), step = 2 range / (n - 1) (round half up, as floor(x + 0.5)). */
int sharpness_radius(double eps, double range, int n);

/* Sharpness of loss (n_y, n_x), [iy * n_x + ix], NaN where missing, with disc radius R
 * cells around the centre; n_y is n_x (a grid) or 1 (a slice). */
void sharpness_of(const double *loss, int n_x, int n_y, int radius, struct sharpness *out);

/* 1 when (ix, iy) lies in the disc of radius R of an n_x x n_y grid. */
int sharpness_in_disc(int ix, int iy, int n_x, int n_y, int radius);

struct sharpness_stats {
    int n;                      /* figures that are numbers */
    double mean, std, max;      /* std: sample (n - 1), 0 for n = 1; NaN for n = 0 */
};
/* Statistics of s[0..n), NaN entries left out. */
void sharpness_stats(const double *s, int n, struct sharpness_stats *out);

#endif
