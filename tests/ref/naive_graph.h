/* naive_graph.h: a double-precision interpreter of a struct graph, built from the naive op
 * twins, for whole-model checks: plan forward vs this, and finite-difference gradients of
 * this vs plan_backward (damping, masks, residual fan-out, fused relus, channel roll). */
#ifndef BASIN_TESTS_NAIVE_GRAPH_H
#define BASIN_TESTS_NAIVE_GRAPH_H

#include "basin/core/graph.h"

/* Run g on x (n, C, F, T) in double with parameters w (store.n_params doubles, applied as
 * w * damping * mask from g's store) and BN buffers buf (store.n_buffers doubles, read in
 * eval mode; untouched). Dropout is the identity (tests set p = 0 to train). Writes the
 * output of node `tap` (the graph's output when tap < 0) into out, and returns its size
 * per sample through *size, or -1 when the input does not fit. */
int naive_graph_forward(const struct graph *g, int n, int c, int f, int t, const double *x,
                        const double *w, const double *buf, int train, int tap, double *out,
                        long *size);

#endif
