/* gemm.c: the only file that talks to OpenBLAS (DESIGN.md section 1).
 *
 * OpenBLAS is pinned to one thread: basin's kernels split their work over OpenMP threads and
 * call gemm() from inside them, so there is a single thread pool and no oversubscription.
 * gemm_parallel() splits a large product by columns (or rows when N is small) itself.
 */
#include "basin/core/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>

#include "basin/core/threads.h"

extern char *openblas_get_corename(void);
extern void openblas_set_num_threads(int n);

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    openblas_set_num_threads(1);
}

void gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
          const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    pthread_once(&once, init_once);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
}

void gemm_parallel(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                   int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    int nt = threads_get();
    long work = (long)m * n * k;
    if (nt <= 1 || work < (1L << 18) || omp_in_parallel()) {
        gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    pthread_once(&once, init_once);
    int split_n = n >= 16 * nt; /* split columns when there are enough, else rows */
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), nth = omp_get_num_threads();
        if (split_n) {
            int per = (n + nth - 1) / nth;
            per = (per + 15) / 16 * 16;
            int j0 = t * per, j1 = j0 + per < n ? j0 + per : n;
            if (j0 < j1) {
                const float *bb = trans_b ? b + (long)j0 * ldb : b + j0;
                gemm(trans_a, trans_b, m, j1 - j0, k, alpha, a, lda, bb, ldb, beta, c + j0, ldc);
            }
        } else {
            int per = (m + nth - 1) / nth;
            int i0 = t * per, i1 = i0 + per < m ? i0 + per : m;
            if (i0 < i1) {
                const float *aa = trans_a ? a + i0 : a + (long)i0 * lda;
                gemm(trans_a, trans_b, i1 - i0, n, k, alpha, aa, lda, b, ldb, beta,
                     c + (long)i0 * ldc, ldc);
            }
        }
    }
}

const char *gemm_backend(void)
{
    pthread_once(&once, init_once);
    return openblas_get_corename();
}
