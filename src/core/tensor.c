/* tensor.c: shape helpers (see tensor.h). */
#include "basin/core/tensor.h"

#include <stdio.h>

long tensor_numel_of(int n_dims, const int *shape)
{
    long n = 1;
    for (int i = 0; i < n_dims; i++) n *= shape[i];
    return n;
}

char *tensor_shape_str(char *buf, int n_buf, int n_dims, const int *shape)
{
    int k = snprintf(buf, (size_t)n_buf, "(");
    for (int i = 0; i < n_dims && k < n_buf; i++)
        k += snprintf(buf + k, (size_t)(n_buf - k), i ? ", %d" : "%d", shape[i]);
    if (k < n_buf) snprintf(buf + k, (size_t)(n_buf - k), n_dims == 1 ? ",)" : ")");
    return buf;
}
