/* gemm: the C twin on the host, shaders/gemm.comp on Vulkan (one build; the
 * transposes are push constants, the tile shape specialization constants
 * chosen per call by op_pick_tiles). */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_gemm(lgpu_exec *ex, const lgpu_gemm_params *p, lgpu_ref a, lgpu_ref b, lgpu_ref c) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "gemm: NULL exec or params");
    if (p->M == 0 || p->N == 0) return 0;
    lgpu_gemm_params q = *p; /* strides 0 mean contiguous, as in the twin */
    if (!q.lda) q.lda = q.trans_a ? q.M : q.K;
    if (!q.ldb) q.ldb = q.trans_b ? q.K : q.N;
    if (!q.ldc) q.ldc = q.N;
    q.trans_a = q.trans_a != 0;
    q.trans_b = q.trans_b != 0;
    q.accumulate = q.accumulate != 0;
    p = &q;
    uint32_t a_min = p->trans_a ? p->M : p->K, b_min = p->trans_b ? p->K : p->N;
    if (p->lda < a_min)
        return lgpu_set_error(LGPU_EINVAL, "gemm: lda %u < %u (%s)", p->lda, a_min, p->trans_a ? "M, trans_a" : "K");
    if (p->ldb < b_min)
        return lgpu_set_error(LGPU_EINVAL, "gemm: ldb %u < %u (%s)", p->ldb, b_min, p->trans_b ? "K, trans_b" : "N");
    if (p->ldc < p->N) return lgpu_set_error(LGPU_EINVAL, "gemm: ldc %u < N %u", p->ldc, p->N);
    /* elements each operand spans (A and B none when K = 0) */
    uint64_t ae = !p->K ? 0 : p->trans_a ? (uint64_t)(p->K - 1) * p->lda + p->M : (uint64_t)(p->M - 1) * p->lda + p->K;
    uint64_t be = !p->K ? 0 : p->trans_b ? (uint64_t)(p->N - 1) * p->ldb + p->K : (uint64_t)(p->K - 1) * p->ldb + p->N;
    uint64_t ce = (uint64_t)(p->M - 1) * p->ldc + p->N;
    if (ae > UINT32_MAX || be > UINT32_MAX || ce > UINT32_MAX)
        return lgpu_set_error(LGPU_ERANGE, "gemm: a (%llu), b (%llu) or c (%llu) elements exceed 2^32",
                              (unsigned long long)ae, (unsigned long long)be, (unsigned long long)ce);
    size_t ab = (size_t)ae * sizeof(float), bb = (size_t)be * sizeof(float), cb = (size_t)ce * sizeof(float);
    int st;
    if ((st = op_check_ref(a, ab, "gemm", "a")) || (st = op_check_ref(b, bb, "gemm", "b")) ||
        (st = op_check_ref(c, cb, "gemm", "c")))
        return st;

    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_gemm(p, lgpu_ref_host(a), lgpu_ref_host(b), lgpu_ref_host(c), lgpu_exec_threads(ex));
        return 0;
    }

    const lgpu_dev_caps *caps = op_caps(ex);
    op_tiles t = op_pick_tiles(caps, p->M, p->N);
    lgpu_dispatch d = {.shader = "gemm", .op = "gemm", .params = p, .params_size = sizeof *p};
    /* K = 0 reads neither a nor b: bind c in their places (a 0-byte binding
     * would mean "to the end of the segment") */
    op_bind(&d, p->K ? a : c, p->K ? ab : cb, false);
    op_bind(&d, p->K ? b : c, p->K ? bb : cb, false);
    op_bind(&d, c, cb, true);
    uint32_t spec[] = {t.wg, t.br, t.bc, 16 /* BK */, t.tr, t.tc};
    memcpy(d.spec, spec, sizeof spec);
    d.n_spec = 6;
    if ((st = op_tile_grid(caps, &t, p->M, p->N, d.groups, "gemm"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
