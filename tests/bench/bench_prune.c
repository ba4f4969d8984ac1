/* bench_prune.c: dense vs structured-pruned default model, forward time (bench_prune.h). */
#include "bench_prune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "basin/core/rng.h"
#include "basin/core/threads.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/model/structured.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds per clip, best of 5 passes over n clips. */
static double per_clip(struct model *m, int n, int f, int t, const float *x, float *logits)
{
    struct predictor *p;
    if (predictor_create(&p, m, n, m->cfg.in_ch, f, t)) return NAN;
    double best = INFINITY;
    for (int r = 0; r < 6; r++) {
        double t0 = now_s();
        predictor_logits(p, n, x, logits, NULL);
        double dt = now_s() - t0;
        if (r && dt < best) best = dt;   /* the first pass warms up */
    }
    predictor_destroy(p);
    return best / n;
}

int bench_prune(void)
{
    struct model *m, *small;
    if (model_load(&m, "assets/default-model.safetensors")) {
        printf("bench prune: no assets/default-model.safetensors (make assets)\n");
        return 1;
    }
    const int f = 64, t = 1001, n = 8;   /* 10 s at the demo front end */
    struct structured_plan p;
    if (structured_search(m, -1, -1, f, t, &p)) return 1;
    double half = p.macs_before / 2;
    structured_plan_fini(&p);
    if (structured_search(m, half, -1, f, t, &p) || structured_extract(m, &p, &small)) return 1;
    long nx = (long)n * m->cfg.in_ch * f * t;
    float *x = malloc(sizeof(float) * (size_t)nx), *l = malloc(sizeof(float) * (size_t)n * 16);
    struct rng r;
    rng_seed(&r, 1);
    rng_fill_normal(&r, x, nx, 0, 1);
    printf("\ndefault model dense (%.3g MACs, %ld parameters) vs structured-pruned to half its MACs (%.3g, %ld)\n",
           p.macs_before, p.params_before, p.macs_after, p.params_after);
    for (int nt = 1; nt <= 2; nt++) {
        threads_set(nt);
        double d = per_clip(m, n, f, t, x, l), s = per_clip(small, n, f, t, x, l);
        printf("  %d thread%s: dense %.3f ms per clip, pruned %.3f ms: %.2fx faster (MACs %.2fx fewer)\n", nt,
               nt > 1 ? "s" : "", 1e3 * d, 1e3 * s, d / s, p.macs_before / p.macs_after);
        printf("RESULT prune threads %d dense_ms %.4f pruned_ms %.4f speedup %.3f macs_ratio %.3f\n", nt, 1e3 * d,
               1e3 * s, d / s, p.macs_before / p.macs_after);
    }
    free(x);
    free(l);
    structured_plan_fini(&p);
    model_destroy(small);
    model_destroy(m);
    return 0;
}
