/* optim.c: SGD, Adam and AdamW over one flat parameter array, as torch.optim 1.13 does.
 *
 * Key idea: replicate PyTorch's single-tensor code path operation by operation, so weights
 * agree with PyTorch's bit for bit (checked on 4096 elements and 5 steps of every
 * configuration in tests/data/optim/make_ref.py). Three details make that work:
 * - Hyper-parameters: PyTorch holds the user's decimals as doubles, derives 1 - beta,
 *   1 - dampening, 1 - lr*wd, lr / bias_correction1 and sqrt(bias_correction2) in double and
 *   casts each scalar to float where a float kernel consumes it. struct optim stores floats,
 *   so each is first mapped back to the decimal it came from (0.999f -> 0.999): with
 *   (double)0.999f instead, 1 - beta2 would be off by 1.3e-5 relative.
 * - Rounding: every tensor op rounds to float, except that the AVX2 kernels fuse
 *   `add(x, y, alpha)` (x + alpha*y) and addcmul (v + value*g*g) into one fma. These are
 *   written as explicit fmaf() calls and the compiler may contract nothing else, so the
 *   result does not depend on vectorisation, -fno-math-errno or the thread count.
 * - Order: Adam's denom = sqrt(v) / (float)sqrt(bc2) + eps, then addcdiv
 *   w + ((float)(-lr/bc1) * m) / denom; AdamW scales w by 1 - lr*wd before the update.
 * The mask is a select, so masked elements keep w, m and v bit for bit. Large n is shared
 * out over threads_get() OpenMP threads.
 *
 * ref: torch/optim/sgd.py _single_tensor_sgd (torch 1.13)
 * ref: torch/optim/adam.py _single_tensor_adam, non-capturable branch (torch 1.13)
 * ref: torch/optim/adamw.py _single_tensor_adamw (torch 1.13)
 * ref: ATen native/ufunc/add.h (vectorised add = fmadd), PointwiseOpsKernel.cpp (addcmul,
 *      addcdiv: self + value * t1 * t2, self + value * t1 / t2)
 * ref: Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization" (AdamW)
 */
#include "basin/core/optim.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <strings.h>

#include "basin/core/status.h"
#include "basin/core/threads.h"

/* GCC's default for gnu11 (-ffp-contract=fast) fuses a*b + c even across statements, e.g.
 * AdamW's w * (1 - lr*wd) into the update that follows, which PyTorch rounds in between.
 * The kernels turn contraction off; the fusions PyTorch does make are spelled as fmaf().
 * (Clang contracts only within one expression by default, and none of ours can be.)
 */
#if defined(__GNUC__) && !defined(__clang__)
#define OPTIM_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define OPTIM_NO_CONTRACT
#endif

/* Below this many elements the step runs on the calling thread: thread start-up would cost
 * more than the loop (a step is a few flops per element, memory bound).
 */
#define OPTIM_PARALLEL_MIN (1L << 16)

static const char *const kind_names[] = {"sgd", "adam", "adamw"};

void optim_init(struct optim *o, enum optim_kind kind)
{
    CHECK((unsigned)kind <= OPTIM_ADAMW);
    *o = (struct optim){0};
    o->kind = kind;
    o->lr = kind == OPTIM_SGD ? 0.01f : 1e-3f;
    o->weight_decay = kind == OPTIM_ADAMW ? 0.01f : 0.0f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
}

int optim_kind_parse(const char *name, enum optim_kind *out)
{
    CHECK(name && out);
    for (int k = 0; k <= OPTIM_ADAMW; k++) {
        if (!strcasecmp(name, kind_names[k])) {
            *out = (enum optim_kind)k;
            return STATUS_OK;
        }
    }
    return status_set(STATUS_INVALID, "unknown optimiser '%s' (expected sgd, adam or adamw)",
                      name);
}

const char *optim_kind_name(enum optim_kind kind)
{
    return (unsigned)kind <= OPTIM_ADAMW ? kind_names[kind] : "unknown";
}

/* PyTorch's ValueError checks, per kind, written as !(0 <= x) so that NaN is refused too
 * (PyTorch's SGD lets a NaN lr through; nobody wants that).
 */
int optim_validate(const struct optim *o)
{
    if ((unsigned)o->kind > OPTIM_ADAMW)
        return status_set(STATUS_INVALID, "unknown optimiser kind %d", (int)o->kind);
    const char *name = kind_names[o->kind];
    if (!(o->lr >= 0))
        return status_set(STATUS_INVALID, "%s: invalid learning rate: %g", name, o->lr);
    if (o->kind == OPTIM_SGD) {
        if (!(o->momentum >= 0))
            return status_set(STATUS_INVALID, "sgd: invalid momentum value: %g", o->momentum);
    } else {
        if (!(o->eps >= 0))
            return status_set(STATUS_INVALID, "%s: invalid epsilon value: %g", name, o->eps);
        if (!(o->beta1 >= 0 && o->beta1 < 1))
            return status_set(STATUS_INVALID, "%s: invalid beta parameter at index 0: %g",
                              name, o->beta1);
        if (!(o->beta2 >= 0 && o->beta2 < 1))
            return status_set(STATUS_INVALID, "%s: invalid beta parameter at index 1: %g",
                              name, o->beta2);
    }
    if (!(o->weight_decay >= 0))
        return status_set(STATUS_INVALID, "%s: invalid weight_decay value: %g", name,
                          o->weight_decay);
    if (o->kind == OPTIM_SGD && o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return status_set(STATUS_INVALID,
                          "sgd: nesterov momentum requires a momentum and zero dampening");
    return STATUS_OK;
}

/* The decimal a user typed for x: the shortest one (at most 9 significant digits) that
 * rounds to x, as the nearest double (what Python holds). 0 and non-finite x map to
 * themselves; so does x whose scale falls outside the exact powers of ten (never a sane
 * hyper-parameter).
 */
static double decimal_of(float x)
{
    static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (x == 0 || !isfinite(x)) return x;
    int e = (int)floor(log10(fabs((double)x)));
    for (int digits = 1; digits <= 9; digits++) {
        int k = digits - 1 - e; /* x * 10^k has `digits` digits before the point */
        double r;
        if (k >= 0 && k <= 22) r = nearbyint(x * p10[k]) / p10[k];
        else if (k < 0 && k >= -22) r = nearbyint(x / p10[-k]) * p10[-k];
        else break;
        if ((float)r == x) return r;
    }
    return x;
}

/* Run range(args, i0, i1) over [0, n): on the calling thread for small n, else one
 * contiguous, 16-element aligned slice per thread. The update is elementwise, so the split
 * never changes a result. Each range function below always-inlines its kernel with the
 * flags as constants, so every specialisation is a branch-free, vectorisable loop.
 */
static void run_ranges(void (*range)(const void *args, long i0, long i1), const void *args,
                       long n)
{
    int nt = n >= OPTIM_PARALLEL_MIN ? threads_get() : 1;
    if (nt <= 1) {
        range(args, 0, n);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        long t = omp_get_thread_num(), k = omp_get_num_threads();
        long i0 = t == 0 ? 0 : (n / k * t) & ~15L, i1 = t == k - 1 ? n : (n / k * (t + 1)) & ~15L;
        range(args, i0, i1);
    }
}

struct sgd_args {
    float *w, *m;
    const float *g, *mask;
    float wd, mom, damp1, neg_lr; /* as PyTorch's float kernels see them */
    int use_wd, first, nesterov;
};

/* g += wd*w; buf = g (first step) or momentum*buf + (1-dampening)*g;
 * g = nesterov ? g + momentum*buf : buf; w -= lr*g. PyTorch's momentum == 0 path keeps no
 * buffer and ignores nesterov; so does this one (m untouched, may be NULL).
 */
static inline __attribute__((always_inline)) OPTIM_NO_CONTRACT void
sgd_kernel(const struct sgd_args *a, long i0, long i1, int has_mask, int has_mom)
{
    float *restrict w = a->w, *restrict m = a->m;
    const float *restrict g = a->g, *restrict mask = a->mask;
    const float wd = a->wd, mom = a->mom, damp1 = a->damp1, neg_lr = a->neg_lr;
    const int use_wd = a->use_wd, first = a->first, nesterov = a->nesterov;
    for (long i = i0; i < i1; i++) {
        const int keep = has_mask ? mask[i] != 0 : 1;
        float d = g[i];
        d = use_wd ? fmaf(wd, w[i], d) : d;
        if (has_mom) {
            const float b = first ? d : fmaf(damp1, d, m[i] * mom);
            m[i] = keep ? b : m[i];
            d = nesterov ? fmaf(mom, b, d) : b;
        }
        w[i] = keep ? fmaf(neg_lr, d, w[i]) : w[i];
    }
}

OPTIM_NO_CONTRACT static void sgd_range(const void *args, long i0, long i1)
{
    const struct sgd_args *a = args;
    if (a->mask) {
        if (a->m) sgd_kernel(a, i0, i1, 1, 1);
        else sgd_kernel(a, i0, i1, 1, 0);
    } else {
        if (a->m) sgd_kernel(a, i0, i1, 0, 1);
        else sgd_kernel(a, i0, i1, 0, 0);
    }
}

static void sgd_step(const struct optim *o, long n, float *w, const float *g, float *m,
                     const float *mask)
{
    const int use_mom = o->momentum != 0;
    CHECK(!use_mom || m);
    struct sgd_args a = {
        .w = w, .m = use_mom ? m : NULL, .g = g, .mask = mask,
        .wd = o->weight_decay, .mom = o->momentum, .neg_lr = -o->lr,
        .damp1 = (float)(1.0 - decimal_of(o->dampening)),
        .use_wd = o->weight_decay != 0, .first = o->step == 1, .nesterov = o->nesterov,
    };
    run_ranges(sgd_range, &a, n);
}

struct adam_args {
    float *w, *m, *v;
    const float *g, *mask;
    float b1, b2, one_b1, one_b2, neg_step_size, bc2_sqrt, eps, l2, decay;
    int use_l2, adamw;
};

/* Adam: g += wd*w (L2); AdamW: w *= 1 - lr*wd (decoupled). Then the moments and
 * w + (-lr/bc1 * m) / (sqrt(v) / sqrt(bc2) + eps). GCC vectorises this loop only under
 * -fno-math-errno (otherwise sqrtf keeps a branch to set errno on negative input, which v
 * never is): about 7x faster per element; the results are the same bits either way.
 */
static inline __attribute__((always_inline)) OPTIM_NO_CONTRACT void
adam_kernel(const struct adam_args *a, long i0, long i1, int has_mask)
{
    float *restrict w = a->w, *restrict m = a->m, *restrict v = a->v;
    const float *restrict g = a->g, *restrict mask = a->mask;
    const float b1 = a->b1, b2 = a->b2, one_b1 = a->one_b1, one_b2 = a->one_b2;
    const float neg_step_size = a->neg_step_size, bc2_sqrt = a->bc2_sqrt, eps = a->eps;
    const float l2 = a->l2, decay = a->decay;
    const int use_l2 = a->use_l2, adamw = a->adamw;
    for (long i = i0; i < i1; i++) {
        const int keep = has_mask ? mask[i] != 0 : 1;
        float wi = w[i], d = g[i];
        d = use_l2 ? fmaf(l2, wi, d) : d;
        wi = adamw ? wi * decay : wi;
        const float mi = fmaf(one_b1, d, m[i] * b1);
        const float vi = fmaf(one_b2 * d, d, v[i] * b2);
        const float denom = sqrtf(vi) / bc2_sqrt + eps;
        wi = wi + neg_step_size * mi / denom;
        m[i] = keep ? mi : m[i];
        v[i] = keep ? vi : v[i];
        w[i] = keep ? wi : w[i];
    }
}

OPTIM_NO_CONTRACT static void adam_range(const void *args, long i0, long i1)
{
    const struct adam_args *a = args;
    if (a->mask) adam_kernel(a, i0, i1, 1);
    else adam_kernel(a, i0, i1, 0);
}

static void adam_step(const struct optim *o, long n, float *w, const float *g, float *m,
                      float *v, const float *mask)
{
    CHECK(m && v);
    const int adamw = o->kind == OPTIM_ADAMW;
    const double lr = decimal_of(o->lr), wd = decimal_of(o->weight_decay);
    const double beta1 = decimal_of(o->beta1), beta2 = decimal_of(o->beta2);
    const double bc1 = 1 - pow(beta1, (double)o->step), bc2 = 1 - pow(beta2, (double)o->step);
    struct adam_args a = {
        .w = w, .m = m, .v = v, .g = g, .mask = mask,
        .b1 = o->beta1, .b2 = o->beta2, .eps = o->eps,
        .one_b1 = (float)(1 - beta1), .one_b2 = (float)(1 - beta2),
        .neg_step_size = (float)(-(lr / bc1)), .bc2_sqrt = (float)sqrt(bc2),
        .l2 = adamw ? 0.0f : o->weight_decay, .decay = (float)(1 - lr * wd),
        .use_l2 = !adamw && o->weight_decay != 0, .adamw = adamw,
    };
    run_ranges(adam_range, &a, n);
}

void optim_step(struct optim *o, long n, float *w, const float *g, float *m, float *v,
                const float *mask)
{
    CHECK(n >= 0 && o->step >= 0 && (unsigned)o->kind <= OPTIM_ADAMW);
    CHECK(n == 0 || (w && g));
    o->step++;
    if (o->kind == OPTIM_SGD) sgd_step(o, n, w, g, m, mask);
    else adam_step(o, n, w, g, m, v, mask);
}
