/* gemm.h: single-precision matrix products, the only door to OpenBLAS.
 *
 * Row-major: C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C, where op(A) is A or
 * A^T as trans_a says; lda, ldb, ldc are row strides in floats. gemm() runs on the calling
 * thread only (kernels call it from inside their own parallel regions); gemm_parallel()
 * splits the product over threads_get() threads.
 */
#ifndef BASIN_CORE_GEMM_H
#define BASIN_CORE_GEMM_H

void gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
          const float *b, int ldb, float beta, float *c, int ldc);
void gemm_parallel(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                   int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* The BLAS kernel in use ("Haswell", "SkylakeX", ...), for benchmark reports. */
const char *gemm_backend(void);

#endif
