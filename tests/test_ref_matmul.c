/* lgpu_ref_matmul (plain C and AVX2 kernel families) against the exact
 * oracle lgpu_ref_matmul_exact, every W type, odd shapes, accumulate,
 * row_offset, strides; bit-identical results for 1, 2 and 3 threads; Q4_0
 * repacked in 8-row groups. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "quant/quant.h"
#include "ref/ref_matmul.h"
#include "ref/ref_ops.h"

static const int all_types[] = {LGPU_TYPE_F32,  LGPU_TYPE_F16,  LGPU_TYPE_BF16, LGPU_TYPE_Q8_0,
                                LGPU_TYPE_Q4_0, LGPU_TYPE_Q4_K, LGPU_TYPE_Q6_K};

/* NMSE tolerance of lgpu_ref_matmul against the exact oracle, per case and
 * over a whole sweep of one type. Float W, and every type on the plain
 * kernels: only float-vs-double accumulation (observed < 1e-12). Quantized W
 * on AVX2: x is rounded to int8 with one scale per 32 values (Q8_0/Q4_0) or
 * per 256 values (Q4_K/Q6_K); over a sweep the NMSE is ~3e-5 / ~5e-5, a
 * single case with few outputs and K = 32 can reach ~5e-4. */
static int exact_path(int type, int isa) {
    return isa == LGPU_MM_ISA_PLAIN || type == LGPU_TYPE_F32 || type == LGPU_TYPE_F16 || type == LGPU_TYPE_BF16;
}
static double case_tolerance(int type, int isa) { return exact_path(type, isa) ? 1e-10 : 5e-3; }
static double sweep_tolerance(int type, int isa) { return exact_path(type, isa) ? 1e-10 : 1.5e-4; }

typedef struct {
    int type, M, N, K, accumulate, row_offset, x_pad, y_pad;
} mm_case;

/* Runs one case on the selected kernel family; returns the NMSE against the
 * oracle and adds its numerator and denominator to *num, *den. */
static double run_case(const mm_case *cs, int isa, tu_rng *r, double *sum_num, double *sum_den) {
    const int M = cs->M, N = cs->N, K = cs->K, Ntot = cs->N + cs->row_offset + 3;
    const size_t xs = (size_t)K + cs->x_pad, ys = (size_t)Ntot + cs->y_pad;
    const size_t rb = lgpu_type_row_bytes(cs->type, K);
    float *wf = malloc((size_t)Ntot * K * sizeof *wf);
    uint8_t *wq = malloc((size_t)Ntot * rb);
    float *x = malloc(M * xs * sizeof *x);
    float *y0 = malloc(M * ys * sizeof *y0), *ye = malloc(M * ys * sizeof *ye);
    float *yt[3];
    for (int t = 0; t < 3; t++) yt[t] = malloc(M * ys * sizeof *yt[t]);
    assert_true(wf && wq && x && y0 && ye && yt[0] && yt[1] && yt[2]);
    for (size_t i = 0; i < (size_t)Ntot * K; i++) wf[i] = tu_rng_normal(r);
    TU_OK(lgpu_quantize_rows(cs->type, wf, Ntot, K, wq));
    for (size_t i = 0; i < M * xs; i++) x[i] = tu_rng_normal(r);
    for (size_t i = 0; i < M * ys; i++) y0[i] = tu_rng_normal(r) * 4;

    lgpu_matmul_params p = {.M = (uint32_t)M, .N = (uint32_t)N, .K = (uint32_t)K, .x_stride = (uint32_t)xs,
                            .y_stride = (uint32_t)ys, .accumulate = (uint32_t)cs->accumulate,
                            .wtype = (uint32_t)cs->type, .row_offset = (uint32_t)cs->row_offset};
    const uint8_t *w = wq + (size_t)cs->row_offset * rb; /* W binding starts at row row_offset */
    memcpy(ye, y0, M * ys * sizeof *ye);
    lgpu_ref_matmul_exact(&p, w, NULL, x, ye);
    lgpu_ref_matmul_set_isa(isa);
    for (int t = 0; t < 3; t++) {
        memcpy(yt[t], y0, M * ys * sizeof *ye);
        lgpu_ref_matmul(&p, w, NULL, x, yt[t], t + 1);
    }
    lgpu_ref_matmul_set_isa(LGPU_MM_ISA_AUTO);

    /* bit-identical whatever the thread count */
    if (memcmp(yt[0], yt[1], M * ys * sizeof *ye) || memcmp(yt[0], yt[2], M * ys * sizeof *ye))
        fail_msg("%s M=%d N=%d K=%d: results differ between 1, 2 and 3 threads", lgpu_type_name(cs->type), M, N, K);
    /* only columns [row_offset, row_offset + N) of each row are written */
    double num = 0, den = 0;
    for (int m = 0; m < M; m++)
        for (size_t j = 0; j < ys; j++) {
            size_t i = m * ys + j;
            if ((int)j < cs->row_offset || (int)j >= cs->row_offset + N) {
                if (memcmp(&yt[0][i], &y0[i], sizeof(float)) || memcmp(&ye[i], &y0[i], sizeof(float)))
                    fail_msg("%s: y[%d][%zu] outside the written columns changed", lgpu_type_name(cs->type), m, j);
                continue;
            }
            /* compare the products, without the accumulated y0 */
            double ref = ye[i] - (cs->accumulate ? y0[i] : 0), got = yt[0][i] - (cs->accumulate ? y0[i] : 0);
            num += (got - ref) * (got - ref);
            den += ref * ref;
        }
    double nmse = den > 0 ? num / den : num;
    *sum_num += num;
    *sum_den += den;
    free(wf);
    free(wq);
    free(x);
    free(y0);
    free(ye);
    for (int t = 0; t < 3; t++) free(yt[t]);
    return nmse;
}

static void sweep(int isa) {
    static const int Ms[] = {1, 3, 31}, Ns[] = {1, 31, 155, 172};
    static const int Ks_block[] = {32, 64, 256, 512}, Ks_k[] = {256, 512}, Ks_float[] = {32, 155, 172, 256};
    tu_rng r;
    tu_rng_seed(&r, 42 + isa);
    int idx = 0;
    for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++) {
        const int type = all_types[ti];
        const int *Ks = lgpu_type_block_elems(type) == 1 ? Ks_float : lgpu_type_block_elems(type) == 32 ? Ks_block : Ks_k;
        const int nK = lgpu_type_block_elems(type) == 256 ? 2 : 4;
        double worst = 0, num = 0, den = 0;
        for (int mi = 0; mi < 3; mi++)
            for (int ni = 0; ni < 4; ni++)
                for (int ki = 0; ki < nK; ki++, idx++) {
                    mm_case cs = {type, Ms[mi], Ns[ni], Ks[ki], idx % 2, idx % 3 == 0 ? 5 : 0, idx % 4 == 1 ? 3 : 0,
                                  idx % 5 == 2 ? 7 : 0};
                    double e = run_case(&cs, isa, &r, &num, &den);
                    if (e > worst) worst = e;
                    if (!(e <= case_tolerance(type, isa)))
                        fail_msg("%s isa %d M=%d N=%d K=%d acc=%d row_offset=%d: NMSE %.3g > %.3g", lgpu_type_name(type),
                                 isa, cs.M, cs.N, cs.K, cs.accumulate, cs.row_offset, e, case_tolerance(type, isa));
                }
        print_message("isa %d %-5s NMSE vs exact: sweep %.3g, worst case %.3g\n", isa, lgpu_type_name(type), num / den,
                      worst);
        if (!(num / den <= sweep_tolerance(type, isa)))
            fail_msg("%s isa %d: sweep NMSE %.3g > %.3g", lgpu_type_name(type), isa, num / den,
                     sweep_tolerance(type, isa));
    }
}

static void test_plain_sweep(void **state) {
    (void)state;
    sweep(LGPU_MM_ISA_PLAIN);
}

static void test_auto_sweep(void **state) {
    (void)state;
    lgpu_ref_matmul_set_isa(LGPU_MM_ISA_AUTO);
    if (lgpu_ref_matmul_isa() != LGPU_MM_ISA_AVX2) {
        print_message("CPU lacks AVX2+FMA+F16C: only the plain kernels are tested\n");
        skip();
    }
    sweep(LGPU_MM_ISA_AVX2);
}

/* The oracle itself on a case small enough to work out by hand. */
static void test_exact_by_hand(void **state) {
    (void)state;
    const float w[2 * 3] = {1, 2, 3, -1, 0.5f, 4};
    const float x[2 * 3] = {1, 1, 1, 2, -2, 0.25f};
    float y[2 * 2] = {10, 10, 10, 10};
    lgpu_matmul_params p = {.M = 2, .N = 2, .K = 3, .x_stride = 3, .y_stride = 2, .accumulate = 1,
                            .wtype = LGPU_TYPE_F32};
    lgpu_ref_matmul_exact(&p, w, NULL, x, y);
    const float want[4] = {16, 13.5f, 8.75f, 8}; /* 10 + 6, 10 + 3.5, 10 - 1.25, 10 - 2 */
    for (int i = 0; i < 4; i++) assert_true(y[i] == want[i]);
    for (int isa = LGPU_MM_ISA_PLAIN; isa <= LGPU_MM_ISA_AVX2; isa++) {
        float z[4] = {10, 10, 10, 10};
        lgpu_ref_matmul_set_isa(isa);
        lgpu_ref_matmul(&p, w, NULL, x, z, 2);
        for (int i = 0; i < 4; i++) assert_true(z[i] == want[i]);
        p.accumulate = 0;
        lgpu_ref_matmul(&p, w, NULL, x, z, 1);
        for (int i = 0; i < 4; i++) assert_true(z[i] == want[i] - 10);
        p.accumulate = 1;
    }
    lgpu_ref_matmul_set_isa(LGPU_MM_ISA_AUTO);
}

/* A y element must not depend on how rows are grouped into tiles or split
 * into segments, nor on how many x rows come together (a batch of decodes
 * must give each sequence the bits it gets alone): computing W rows one at a
 * time (row_offset), or x rows one at a time, gives the same bits. M = 9
 * covers the batched Q4_0 path (M >= 4) with a partial group of x rows. */
static void test_rowwise_identical(void **state) {
    (void)state;
    enum { M = 9, N = 13, K = 512 };
    tu_rng r;
    tu_rng_seed(&r, 9);
    float *wf = malloc(N * K * sizeof *wf), x[M * K], yall[M * N], yone[M * N];
    uint8_t *wq = malloc(N * K * sizeof(float)); /* the largest row size */
    for (int i = 0; i < N * K; i++) wf[i] = tu_rng_normal(&r);
    for (int i = 0; i < M * K; i++) x[i] = tu_rng_normal(&r);
    for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++) {
        const int type = all_types[ti];
        const size_t rb = lgpu_type_row_bytes(type, K);
        TU_OK(lgpu_quantize_rows(type, wf, N, K, wq));
        lgpu_matmul_params p = {.M = M, .N = N, .K = K, .x_stride = K, .y_stride = N, .wtype = (uint32_t)type};
        lgpu_ref_matmul(&p, wq, NULL, x, yall, 2);
        for (int n = 0; n < N; n++) {
            lgpu_matmul_params q = p;
            q.N = 1;
            q.row_offset = (uint32_t)n;
            lgpu_ref_matmul(&q, wq + n * rb, NULL, x, yone, 1);
        }
        if (memcmp(yall, yone, sizeof yall)) fail_msg("%s: row-at-a-time result differs", lgpu_type_name(type));
        for (int m = 0; m < M; m++) {
            lgpu_matmul_params q = p;
            q.M = 1;
            lgpu_ref_matmul(&q, wq, NULL, x + m * K, yone + m * N, 1);
        }
        if (memcmp(yall, yone, sizeof yall)) fail_msg("%s: x-row-at-a-time result differs", lgpu_type_name(type));
    }
    free(wf);
    free(wq);
}

/* Q4_0 repacked in 8-row groups (the host path's layout for Q4_0 models):
 * each row dequantizes (and get_rows reads) exactly as the Q4_0 row; the
 * exact oracle and the plain kernels give the Q4_0 bits; the AVX2 kernel is
 * within the quantized tolerances, independent of the thread count and of
 * how many x rows come together. */
static void test_repacked_q4_0(void **state) {
    (void)state;
    static const int Ms[] = {1, 3, 9, 31}, Ns[] = {8, 16, 40}, Ks[] = {32, 64, 512};
    tu_rng r;
    tu_rng_seed(&r, 77);
    double num = 0, den = 0;
    int idx = 0;
    for (int ni = 0; ni < 3; ni++)
        for (int ki = 0; ki < 3; ki++) {
            const int N = Ns[ni], K = Ks[ki];
            const size_t rb = lgpu_type_row_bytes(LGPU_TYPE_Q4_0, K);
            float *wf = malloc((size_t)N * K * sizeof *wf), *row = malloc(K * sizeof *row), *rowx = malloc(K * sizeof *rowx);
            uint8_t *wq = malloc(N * rb), *wx = malloc(N * rb);
            assert_true(wf && row && rowx && wq && wx);
            for (int i = 0; i < N * K; i++) wf[i] = tu_rng_normal(&r);
            TU_OK(lgpu_quantize_rows(LGPU_TYPE_Q4_0, wf, N, K, wq));
            TU_OK(lgpu_repack_q4_0_x8(wq, wx, N, K));
            for (int n = 0; n < N; n++) {
                TU_OK(lgpu_dequantize_row(LGPU_TYPE_Q4_0, wq + n * rb, row, K));
                lgpu_dequantize_row_q4_0_x8(wx, n, K, rowx);
                assert_memory_equal(row, rowx, K * sizeof *row);
            }
            /* get_rows over the repacked table, ids in any order */
            int32_t ids[3] = {N - 1, 0, N / 2};
            float *g = malloc(3 * K * sizeof *g), *gx = malloc(3 * K * sizeof *gx);
            lgpu_get_rows_params gp = {.T = 3, .K = (uint32_t)K, .n_rows = (uint32_t)N, .etype = LGPU_TYPE_Q4_0};
            lgpu_ref_get_rows(&gp, wq, ids, g);
            gp.e_x8 = 1;
            lgpu_ref_get_rows(&gp, wx, ids, gx);
            assert_memory_equal(g, gx, 3 * K * sizeof *g);
            free(g), free(gx);
            for (int mi = 0; mi < 4; mi++, idx++) {
                const int M = Ms[mi], ys = N + (idx % 2 ? 3 : 0);
                float *x = malloc((size_t)M * K * sizeof *x), *y0 = malloc((size_t)M * ys * sizeof *y0);
                float *ye = malloc((size_t)M * ys * sizeof *ye), *yq = malloc((size_t)M * ys * sizeof *yq);
                float *yt[3], *yone = malloc((size_t)M * ys * sizeof *yone);
                for (int t = 0; t < 3; t++) yt[t] = malloc((size_t)M * ys * sizeof *yt[t]);
                for (int i = 0; i < M * K; i++) x[i] = tu_rng_normal(&r);
                for (int i = 0; i < M * ys; i++) y0[i] = tu_rng_normal(&r);
                lgpu_matmul_params p = {.M = (uint32_t)M, .N = (uint32_t)N, .K = (uint32_t)K, .x_stride = (uint32_t)K,
                                        .y_stride = (uint32_t)ys, .accumulate = (uint32_t)(idx % 3 == 0),
                                        .wtype = LGPU_TYPE_Q4_0};
                lgpu_matmul_params px = p;
                px.w_x8 = 1;
                const size_t yb = (size_t)M * ys * sizeof *ye;
                /* oracle and plain kernels: the same bits as from the Q4_0 rows */
                memcpy(ye, y0, yb), memcpy(yq, y0, yb);
                lgpu_ref_matmul_exact(&p, wq, NULL, x, ye);
                lgpu_ref_matmul_exact(&px, wx, NULL, x, yq);
                assert_memory_equal(ye, yq, yb);
                lgpu_ref_matmul_set_isa(LGPU_MM_ISA_PLAIN);
                memcpy(yq, y0, yb), memcpy(yt[0], y0, yb);
                lgpu_ref_matmul(&p, wq, NULL, x, yq, 2);
                lgpu_ref_matmul(&px, wx, NULL, x, yt[0], 2);
                assert_memory_equal(yq, yt[0], yb);
                lgpu_ref_matmul_set_isa(LGPU_MM_ISA_AUTO);
                /* the fast kernel: 1, 2, 3 threads, then x rows one at a time */
                for (int t = 0; t < 3; t++) {
                    memcpy(yt[t], y0, yb);
                    lgpu_ref_matmul(&px, wx, NULL, x, yt[t], t + 1);
                }
                assert_memory_equal(yt[0], yt[1], yb);
                assert_memory_equal(yt[0], yt[2], yb);
                memcpy(yone, y0, yb);
                for (int m = 0; m < M; m++) {
                    lgpu_matmul_params q = px;
                    q.M = 1;
                    lgpu_ref_matmul(&q, wx, NULL, x + m * K, yone + m * ys, 1);
                }
                assert_memory_equal(yt[0], yone, yb);
                double cn = 0, cd = 0;
                for (int i = 0; i < M * ys; i++) {
                    double ref = ye[i] - (p.accumulate ? y0[i] : 0), got = yt[0][i] - (p.accumulate ? y0[i] : 0);
                    cn += (got - ref) * (got - ref), cd += ref * ref;
                }
                if (!(cn / cd <= case_tolerance(LGPU_TYPE_Q4_0, lgpu_ref_matmul_isa())))
                    fail_msg("q4_0x8 M=%d N=%d K=%d: NMSE %.3g", M, N, K, cn / cd);
                num += cn, den += cd;
                free(x), free(y0), free(ye), free(yq), free(yone);
                for (int t = 0; t < 3; t++) free(yt[t]);
            }
            free(wf), free(row), free(rowx), free(wq), free(wx);
        }
    print_message("q4_0x8 NMSE vs exact: sweep %.3g\n", num / den);
    assert_true(num / den <= sweep_tolerance(LGPU_TYPE_Q4_0, lgpu_ref_matmul_isa()));
    uint8_t a[2 * 18 * 7], b[sizeof a];
    assert_int_equal(lgpu_repack_q4_0_x8(a, b, 7, 32), LGPU_EINVAL); /* rows not a multiple of 8 */
    assert_int_equal(lgpu_repack_q4_0_x8(a, a, 8, 32), LGPU_EINVAL); /* in place */
}

static void count_range(void *ctx, int64_t b, int64_t e, int thread) {
    int *hits = ctx;
    (void)thread;
    for (int64_t i = b; i < e; i++) __atomic_fetch_add(&hits[i], 1, __ATOMIC_RELAXED);
}

static void nested_range(void *ctx, int64_t b, int64_t e, int thread) {
    int *hits = ctx;
    (void)thread;
    for (int64_t i = b; i < e; i++) lgpu_parallel_for(2, 10, count_range, hits + i * 10); /* runs inline */
}

static void test_parallel_for(void **state) {
    (void)state;
    int hits[1000];
    for (int nt = 1; nt <= 5; nt++)
        for (int n = 0; n <= 1000; n += n < 20 ? 1 : 97) {
            memset(hits, 0, sizeof hits);
            lgpu_parallel_for(nt, n, count_range, hits);
            for (int i = 0; i < n; i++) assert_int_equal(hits[i], 1);
        }
    memset(hits, 0, sizeof hits);
    lgpu_parallel_for(2, 100, nested_range, hits);
    for (int i = 0; i < 1000; i++) assert_int_equal(hits[i], 1);
    assert_true(lgpu_default_threads() >= 1);
    setenv("LGPU_THREADS", "3", 1);
    assert_int_equal(lgpu_default_threads(), 3);
    unsetenv("LGPU_THREADS");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_for),     cmocka_unit_test(test_exact_by_hand),
        cmocka_unit_test(test_plain_sweep),      cmocka_unit_test(test_auto_sweep),
        cmocka_unit_test(test_rowwise_identical), cmocka_unit_test(test_repacked_q4_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
