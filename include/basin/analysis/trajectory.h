/* trajectory.h: the path of the weights during training, projected on its two principal
 * directions (Li et al. 2018, section 7, "Visualizing optimization paths").
 *
 * Given the weights after each epoch w_0 (the start), ..., w_E (the end), the matrix of
 * the differences from the end, rows w_e - w_E for e < E (the paper's M = [theta_0 -
 * theta_n; ...; theta_{n-1} - theta_n]), is reduced by PCA: its rows are centred (their
 * mean subtracted, as loss-landscape's projection.py does with sklearn's PCA) and the
 * two leading right singular vectors are the directions d1, d2 (unit norm, orthogonal).
 * They come from the E x E Gram matrix of the centred rows (Jacobi eigenvalues in
 * double), so the cost is E^2 dot products of the parameter count, whatever its size.
 * Every epoch's point is the projection of w_e - w_E (not centred) onto d1 and d2, so the
 * end lies at the origin, where the landscape (landscape.h) is centred; the residual is
 * the part of w_e - w_E outside the plane (why a path and contours may disagree).
 *
 * Signs: each direction is oriented so that the start's coordinate along it is not
 * positive (the path runs from the left / bottom towards the origin).
 *
 * Only the entries with use[j] set count (NULL: all), e.g. the >= 2-D weights: the other
 * entries of d1, d2 are zero. The directions are not filter-normalised; the coordinates
 * are distances in weight space.
 *
 * A run's checkpoints: `train keep=all` writes checkpoint-<e>.safetensors for the start
 * (e = 0) and after every epoch; trajectory_list finds them.
 */
#ifndef BASIN_ANALYSIS_TRAJECTORY_H
#define BASIN_ANALYSIS_TRAJECTORY_H

#include <stddef.h>

struct trajectory {
    int n_points;               /* E + 1 */
    long n_params;
    float *d1, *d2;             /* (n_params) unit principal directions; owned */
    double explained[2];        /* their share of the centred rows' variance */
    double *xy;                 /* (n_points, 2) coordinates of w_e - w_E */
    double *residual;           /* (n_points) || w_e - w_E - projection || */
    double *distance;           /* (n_points) || w_e - w_E || */
};

/* PCA of the path w[0..n_points) (each n_params floats; w[n_points - 1] is the end).
 * n_points >= 3 (two differences at least). STATUS_INVALID (too few points, or a path
 * that does not move in two independent directions: the message says so), STATUS_NOMEM.
 * Release with trajectory_fini. */
int trajectory_pca(struct trajectory *t, const float *const *w, int n_points, long n_params,
                   const unsigned char *use);
void trajectory_fini(struct trajectory *t);

/* The checkpoint-<e>.safetensors files of folder dir, sorted by e: paths (each
 * mem_alloc'ed, *paths too; release with trajectory_list_free) and epochs. STATUS_IO
 * (the folder cannot be read), STATUS_NOT_FOUND (no such file: "train keep=all writes
 * them"), STATUS_NOMEM. */
int trajectory_list(const char *dir, char ***paths, int **epochs, int *n);
void trajectory_list_free(char **paths, int *epochs, int n);

#endif
