/* admm.h: ADMM fine-tuning toward a structured budget (FAU, DCASE 2023; ref:
 * mission-anchors 3.4): training minimises L(W) + (rho / 2) |W - Z + U|^2 over the prunable
 * weights, where Z is the projection of W + U onto the structures that meet the budget
 * (structured_search_at: the smallest-norm channel groups removed until MACs <= A and
 * parameters <= B, the rest of W + U kept) and U the scaled dual:
 *   every step       g += rho (W - Z + U)
 *   every update     Z = P(W + U); U += W - Z      (the training loop: each epoch's start)
 * so the weights of the groups Z removes are pulled to zero while the loss keeps the rest
 * useful; `prune structured` with the same budget then cuts them at little cost.
 * CP-ResNet with groups=1 only (as structured.h).
 */
#ifndef BASIN_TRAIN_ADMM_H
#define BASIN_TRAIN_ADMM_H

struct model;

struct admm {
    struct model *m;            /* borrowed */
    double max_macs;            /* A (< 0: none) */
    long max_params;            /* B (< 0: none) */
    double rho;
    int f, t;                   /* the input the MACs are counted for */
    float *z, *u;               /* (n_params) Z and U in the store's layout; 0 outside weights */
    float *v;                   /* (n_params) scratch: W + U */
    int n_updates;
    double primal;              /* |W - Z| over the prunable weights after the last update */
    double removed_norm;        /* |W| over the weights Z removes, after the last update */
    int n_removed, n_groups;    /* channel groups Z removes, of those that could go */
};

/* Z = P(W), U = 0. Errors as structured_search (STATUS_UNSUPPORTED, STATUS_INVALID when the
 * budget cannot be met), STATUS_INVALID for rho <= 0, STATUS_NOMEM. */
int admm_create(struct admm **out, struct model *m, double max_macs, long max_params, double rho, int f, int t);
void admm_destroy(struct admm *a);   /* NULL is a no-op */
/* g += rho (w - z + u) over the prunable weights (w, g: the store's layout). */
void admm_gradient(const struct admm *a, const float *w, float *g);
/* Z = P(W + U), U += W - Z, and the figures above. Errors as structured_search. */
int admm_update(struct admm *a);

#endif
