/* optim.h: optimisers with PyTorch's exact update rules (torch.optim, version 1.13).
 *
 * One step updates a flat parameter array w (n) from its gradient g using moment buffers
 * m and v in the same layout (the parameter store's), so the whole model is one loop.
 *   SGD:   g += wd*w; buf = g on the first step, else buf = momentum*buf + (1-dampening)*g;
 *          g = nesterov ? g + momentum*buf : buf; w -= lr*g            (buf in m)
 *   Adam:  g += wd*w; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 *          w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *   AdamW: w *= 1 - lr*wd, then Adam without the wd term.
 */
#ifndef BASIN_CORE_OPTIM_H
#define BASIN_CORE_OPTIM_H

enum optim_kind { OPTIM_SGD, OPTIM_ADAM, OPTIM_ADAMW };

struct optim {
    enum optim_kind kind;
    float lr;
    float momentum, dampening;   /* SGD */
    int nesterov;                /* SGD; needs momentum > 0 and dampening 0, as PyTorch */
    float weight_decay;
    float beta1, beta2, eps;     /* Adam, AdamW */
    long step;                   /* steps taken so far; the next step is step + 1 */
};

/* PyTorch's defaults for kind: lr 0.01 (SGD, no momentum) or 1e-3 (Adam/AdamW), betas
 * (0.9, 0.999), eps 1e-8, weight decay 0 (Adam, SGD) or 0.01 (AdamW). */
void optim_init(struct optim *o, enum optim_kind kind);

/* Parse "sgd", "adam", "adamw"; returns 0 or STATUS_INVALID. */
int optim_kind_parse(const char *name, enum optim_kind *out);
const char *optim_kind_name(enum optim_kind kind);

/* Check the hyper-parameters as PyTorch does (lr >= 0, momentum >= 0, betas in [0, 1),
 * nesterov needs momentum > 0 and dampening 0). Returns 0 or STATUS_INVALID. */
int optim_validate(const struct optim *o);

/* Advance o->step and update w in place. m is used by SGD with momentum and by Adam(W);
 * v by Adam(W) only; both start zeroed. A NULL mask updates every element; otherwise
 * elements with mask 0 are left untouched (pruned weights stay pruned). */
void optim_step(struct optim *o, long n, float *w, const float *g, float *m, float *v,
                const float *mask);

#endif
