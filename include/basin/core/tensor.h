/* tensor.h: shape letters and the tensor view every layer shares.
 *
 * Layout is float32, row-major, NCHW. The letters, used in every shape comment:
 *   N batch, C channels, F mel bins (height), T frames (width),
 *   O output channels, I input channels, K kernel size, M classes.
 * Features are (N, C, F, T); conv weights (O, I/groups, KF, KT) as in PyTorch; linear
 * weights (O, I).
 */
#ifndef BASIN_CORE_TENSOR_H
#define BASIN_CORE_TENSOR_H

#define TENSOR_MAX_DIMS 4

/* A view: it never owns data. */
struct tensor {
    float *data;
    int n_dims;
    int shape[TENSOR_MAX_DIMS];
};

/* Product of shape[0..n_dims); 1 for a scalar (n_dims 0). */
long tensor_numel_of(int n_dims, const int *shape);
static inline long tensor_numel(const struct tensor *t) { return tensor_numel_of(t->n_dims, t->shape); }

/* Format a shape as "(32, 1, 5, 5)" into buf; returns buf. */
char *tensor_shape_str(char *buf, int n_buf, int n_dims, const int *shape);

#endif
