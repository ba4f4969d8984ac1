/* trajectory.c: PCA of a training path through its Gram matrix, and a run's checkpoints.
 *
 * Key idea: E (epochs) is small and the parameter count large, so the principal
 * directions come from the E x E Gram matrix of the centred difference vectors (cyclic
 * Jacobi, in double), never from a P x P covariance; a direction is then the combination
 * of the difference vectors its eigenvector weighs.
 *
 * ref: Li et al. 2018 section 7 (PCA of [theta_i - theta_n]); loss-landscape
 *      projection.py setup_PCA_directions (differences from the final weights, sklearn
 *      PCA, which centres) and project_trajectory (each checkpoint's difference projected
 *      on the unit directions).
 */
#include "basin/analysis/trajectory.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"

/* Eigen-decomposition of the symmetric n x n matrix a (destroyed) by cyclic Jacobi
 * rotations: eigenvalues in ev (n), eigenvectors in the columns of v (n x n). */
static void jacobi(double *a, int n, double *ev, double *v)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) v[i * n + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, diag = 0;
        for (int i = 0; i < n; i++) {
            diag += a[i * n + i] * a[i * n + i];
            for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
        }
        if (off <= 1e-30 * diag || off == 0) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                const double apq = a[p * n + q];
                if (apq == 0) continue;
                const double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                const double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                const double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) { /* columns p, q */
                    const double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) { /* rows p, q */
                    const double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {
                    const double vkp = v[k * n + p], vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < n; i++) ev[i] = a[i * n + i];
}

void trajectory_fini(struct trajectory *t)
{
    mem_free(t->d1);
    mem_free(t->d2);
    mem_free(t->xy);
    mem_free(t->residual);
    mem_free(t->distance);
    memset(t, 0, sizeof *t);
}

int trajectory_pca(struct trajectory *t, const float *const *w, int n_points, long n_params,
                   const unsigned char *use)
{
    memset(t, 0, sizeof *t);
    if (n_points < 3)
        return status_set(STATUS_INVALID, "trajectory: %d weight vectors; the PCA of a path needs 3 at least "
                          "(the start, an epoch, the end)", n_points);
    const int E = n_points - 1;     /* rows w_e - w_E, e < E */
    const float *end = w[E];
    double *R = mem_calloc((size_t)E * E, sizeof *R), *G = mem_calloc((size_t)E * E, sizeof *G);
    double *V = mem_calloc((size_t)E * E, sizeof *V), *ev = mem_calloc((size_t)E, sizeof *ev);
    double *rowmean = mem_calloc((size_t)E, sizeof *rowmean);
    t->n_points = n_points;
    t->n_params = n_params;
    t->d1 = mem_calloc((size_t)n_params + 1, sizeof *t->d1);
    t->d2 = mem_calloc((size_t)n_params + 1, sizeof *t->d2);
    t->xy = mem_calloc((size_t)n_points * 2, sizeof *t->xy);
    t->residual = mem_calloc((size_t)n_points, sizeof *t->residual);
    t->distance = mem_calloc((size_t)n_points, sizeof *t->distance);
    int s = STATUS_OK;
    if (!R || !G || !V || !ev || !rowmean || !t->d1 || !t->d2 || !t->xy || !t->residual || !t->distance) {
        s = status_set(STATUS_NOMEM, "trajectory: out of memory");
        goto done;
    }
    /* R_ij = r_i . r_j with r_e = w_e - w_E */
    for (int i = 0; i < E; i++)
        for (int j = i; j < E; j++) {
            double sum = 0;
            for (long p = 0; p < n_params; p++) {
                if (use && !use[p]) continue;
                sum += ((double)w[i][p] - end[p]) * ((double)w[j][p] - end[p]);
            }
            R[i * E + j] = R[j * E + i] = sum;
        }
    /* centred: G_ij = (r_i - m) . (r_j - m), m the mean row */
    double all = 0;
    for (int i = 0; i < E; i++) {
        for (int j = 0; j < E; j++) rowmean[i] += R[i * E + j] / E;
        all += rowmean[i] / E;
    }
    double trace = 0;
    for (int i = 0; i < E; i++)
        for (int j = 0; j < E; j++) G[i * E + j] = R[i * E + j] - rowmean[i] - rowmean[j] + all;
    for (int i = 0; i < E; i++) trace += G[i * E + i];
    jacobi(G, E, ev, V);
    int top[2] = {-1, -1};
    for (int i = 0; i < E; i++) {
        if (top[0] < 0 || ev[i] > ev[top[0]]) top[1] = top[0], top[0] = i;
        else if (top[1] < 0 || ev[i] > ev[top[1]]) top[1] = i;
    }
    if (!(trace > 0) || top[1] < 0 || !(ev[top[1]] > 1e-12 * ev[top[0]])) {
        s = status_set(STATUS_INVALID, "trajectory: the path does not move in two independent directions "
                       "(variance %.3g and %.3g)", top[0] >= 0 ? ev[top[0]] : 0.0, top[1] >= 0 ? ev[top[1]] : 0.0);
        goto done;
    }
    for (int k = 0; k < 2; k++) {
        const double *u = V + top[k];  /* column top[k], stride E */
        float *d = k ? t->d2 : t->d1;
        double usum = 0;
        for (int e = 0; e < E; e++) usum += u[e * E];
        /* d = sum_e u_e (r_e - m) = sum_e u_e r_e - (sum_e u_e) m */
        double norm = 0;
        for (long p = 0; p < n_params; p++) {
            if (use && !use[p]) continue;
            double v = 0, mean = 0;
            for (int e = 0; e < E; e++) {
                const double r = (double)w[e][p] - end[p];
                v += u[e * E] * r;
                mean += r / E;
            }
            v -= usum * mean;
            d[p] = (float)v;
            norm += v * v;
        }
        norm = sqrt(norm);
        for (long p = 0; p < n_params; p++) d[p] = (float)(d[p] / norm);
        t->explained[k] = ev[top[k]] / trace;
    }
    for (int e = 0; e < n_points; e++) {
        double x = 0, y = 0, dd = 0;
        for (long p = 0; p < n_params; p++) {
            if (use && !use[p]) continue;
            const double r = (double)w[e][p] - end[p];
            x += r * t->d1[p];
            y += r * t->d2[p];
            dd += r * r;
        }
        t->xy[2 * e] = x, t->xy[2 * e + 1] = y;
        t->distance[e] = sqrt(dd);
        t->residual[e] = sqrt(fmax(0.0, dd - x * x - y * y));
    }
    for (int k = 0; k < 2; k++)
        if (t->xy[k] > 0) {
            float *d = k ? t->d2 : t->d1;
            for (long p = 0; p < n_params; p++) d[p] = -d[p];
            for (int e = 0; e < n_points; e++) t->xy[2 * e + k] = 0.0 - t->xy[2 * e + k]; /* never -0 */
        }
done:
    mem_free(R);
    mem_free(G);
    mem_free(V);
    mem_free(ev);
    mem_free(rowmean);
    if (s) trajectory_fini(t);
    return s;
}

struct found {
    int epoch;
    char *path;
};

static int cmp_found(const void *a, const void *b)
{
    const struct found *x = a, *y = b;
    return (x->epoch > y->epoch) - (x->epoch < y->epoch);
}

int trajectory_list(const char *dir, char ***paths, int **epochs, int *n)
{
    *paths = NULL, *epochs = NULL, *n = 0;
    DIR *d = opendir(dir);
    if (!d) return status_set(STATUS_IO, "%s: %s", dir, strerror(errno));
    struct found *v = NULL;
    int k = 0, cap = 0, s = STATUS_OK;
    for (struct dirent *de; (de = readdir(d)) && !s;) {
        int e, used = 0;
        if (sscanf(de->d_name, "checkpoint-%d.safetensors%n", &e, &used) != 1 || de->d_name[used] || e < 0) continue;
        if (k == cap) {
            cap = cap ? 2 * cap : 16;
            struct found *nv = mem_realloc(v, sizeof *v * (size_t)cap);
            if (!nv) {
                s = status_set(STATUS_NOMEM, "trajectory: out of memory");
                break;
            }
            v = nv;
        }
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        v[k].path = mem_alloc(len);
        if (!v[k].path) {
            s = status_set(STATUS_NOMEM, "trajectory: out of memory");
            break;
        }
        snprintf(v[k].path, len, "%s/%s", dir, de->d_name);
        v[k++].epoch = e;
    }
    closedir(d);
    if (!s && !k)
        s = status_set(STATUS_NOT_FOUND, "%s: no checkpoint-<epoch>.safetensors files (train keep=all writes one per "
                       "epoch)", dir);
    if (!s) {
        qsort(v, (size_t)k, sizeof *v, cmp_found);
        *paths = mem_alloc(sizeof **paths * (size_t)k);
        *epochs = mem_alloc(sizeof **epochs * (size_t)k);
        if (!*paths || !*epochs) s = status_set(STATUS_NOMEM, "trajectory: out of memory");
    }
    if (s) {
        for (int i = 0; i < k; i++) mem_free(v[i].path);
        mem_free(v);
        mem_free(*paths), mem_free(*epochs);
        *paths = NULL, *epochs = NULL;
        return s;
    }
    for (int i = 0; i < k; i++) (*paths)[i] = v[i].path, (*epochs)[i] = v[i].epoch;
    *n = k;
    mem_free(v);
    return STATUS_OK;
}

void trajectory_list_free(char **paths, int *epochs, int n)
{
    for (int i = 0; paths && i < n; i++) mem_free(paths[i]);
    mem_free(paths);
    mem_free(epochs);
}
