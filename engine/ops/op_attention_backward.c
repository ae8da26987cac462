/* attention_backward: the C twin (threaded) on the host; on Vulkan two
 * dispatches, shaders/attention_backward_dq.comp (one workgroup per (row,
 * head): d and dq) then attention_backward_dkv.comp (one per (row, kv head):
 * dk and dv). The second reads d, which the first writes, so the exec puts a
 * barrier between them. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

#define ATT_BW_WG 128

int lgpu_op_attention_backward(lgpu_exec *ex, const lgpu_attention_backward_params *p, lgpu_ref q, lgpu_ref k,
                               lgpu_ref v, lgpu_ref o, lgpu_ref dout, lgpu_ref lse, lgpu_ref d, lgpu_ref dq,
                               lgpu_ref dk, lgpu_ref dv) {
    static const char *op = "attention_backward";
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "%s: NULL exec or params", op);
    if (p->B == 0 || p->T == 0 || p->n_heads == 0) return 0;
    if (p->n_kv_heads == 0 || p->n_heads % p->n_kv_heads)
        return lgpu_set_error(LGPU_EINVAL, "%s: n_heads %u is not a multiple of n_kv_heads %u", op, p->n_heads,
                              p->n_kv_heads);
    if (p->head_dim == 0 || p->head_dim > LGPU_ATTN_MAX_HEAD_DIM)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: head_dim %u not in [1, %d]", op, p->head_dim,
                              LGPU_ATTN_MAX_HEAD_DIM);
    const uint64_t rows = (uint64_t)p->B * p->T;
    const uint64_t qe = rows * p->n_heads * p->head_dim, ke = rows * p->n_kv_heads * p->head_dim;
    if (qe > UINT32_MAX / 4 || rows * p->n_heads > UINT32_MAX / 4) /* the shaders index vec4s with uint */
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: B*T*n_heads*head_dim = %llu is too large", op,
                              (unsigned long long)qe);
    const size_t qb = (size_t)qe * sizeof(float), kb = (size_t)ke * sizeof(float);
    const size_t lb = (size_t)(rows * p->n_heads) * sizeof(float);
    int st;
    if ((st = op_check_ref(q, qb, op, "q")) || (st = op_check_ref(k, kb, op, "k")) ||
        (st = op_check_ref(v, kb, op, "v")) || (st = op_check_ref(o, qb, op, "o")) ||
        (st = op_check_ref(dout, qb, op, "dout")) || (st = op_check_ref(lse, lb, op, "lse")) ||
        (st = op_check_ref(d, lb, op, "d")) || (st = op_check_ref(dq, qb, op, "dq")) ||
        (st = op_check_ref(dk, kb, op, "dk")) || (st = op_check_ref(dv, kb, op, "dv")))
        return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_attention_backward(p, lgpu_ref_host(q), lgpu_ref_host(k), lgpu_ref_host(v), lgpu_ref_host(o),
                                    lgpu_ref_host(dout), lgpu_ref_host(lse), lgpu_ref_host(d), lgpu_ref_host(dq),
                                    lgpu_ref_host(dk), lgpu_ref_host(dv), lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    const uint32_t wg = op_wg_size(caps, ATT_BW_WG);
    /* both shaders work on vec4s and keep one vec4 column per invocation */
    if (p->head_dim % 4 || p->head_dim / 4 > wg)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: the shaders need head_dim %u to be a multiple of 4 and at most %u",
                              op, p->head_dim, 4 * wg);

    lgpu_dispatch d1 = {.shader = "attention_backward_dq", .op = "attention_backward_dq", .params = p,
                        .params_size = sizeof *p};
    op_bind(&d1, q, qb, false);
    op_bind(&d1, k, kb, false);
    op_bind(&d1, v, kb, false);
    op_bind(&d1, o, qb, false);
    op_bind(&d1, dout, qb, false);
    op_bind(&d1, lse, lb, false);
    op_bind(&d1, d, lb, true);
    op_bind(&d1, dq, qb, true);
    d1.spec[0] = wg;
    d1.n_spec = 1;
    if ((st = op_grid(caps, rows * p->n_heads, d1.groups, op))) return st;
    if ((st = lgpu_exec_dispatch(ex, &d1))) return st;

    lgpu_dispatch d2 = {.shader = "attention_backward_dkv", .op = "attention_backward_dkv", .params = p,
                        .params_size = sizeof *p};
    op_bind(&d2, q, qb, false);
    op_bind(&d2, k, kb, false);
    op_bind(&d2, v, kb, false);
    op_bind(&d2, dout, qb, false);
    op_bind(&d2, lse, lb, false);
    op_bind(&d2, d, lb, false);
    op_bind(&d2, dk, kb, true);
    op_bind(&d2, dv, kb, true);
    d2.spec[0] = wg;
    d2.n_spec = 1;
    if ((st = op_grid(caps, rows * p->n_kv_heads, d2.groups, op))) return st;
    return lgpu_exec_dispatch(ex, &d2);
}
