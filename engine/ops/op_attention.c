/* attention: the C twin (threaded) on the host, shaders/attention.comp on
 * Vulkan. The host path checks the block table first (LGPU_ERANGE); the
 * shader masks keys with invalid slots instead. With an lse operand
 * (training) the push constants carry save_lse = 1 and lse is binding 7;
 * without it binding 7 is the exec's dummy buffer, never written. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

#define ATT_WG 128

int lgpu_op_attention(lgpu_exec *ex, const lgpu_attention_params *p, lgpu_ref q, lgpu_ref tok_seq, lgpu_ref tok_pos,
                      lgpu_ref block_table, lgpu_ref k_pool, lgpu_ref v_pool, lgpu_ref out, lgpu_ref lse) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "attention: NULL exec or params");
    if (p->T == 0 || p->n_heads == 0) return 0;
    if (p->n_kv_heads == 0 || p->n_heads % p->n_kv_heads)
        return lgpu_set_error(LGPU_EINVAL, "attention: n_heads %u is not a multiple of n_kv_heads %u", p->n_heads,
                              p->n_kv_heads);
    if (p->head_dim == 0 || p->head_dim > LGPU_ATTN_MAX_HEAD_DIM)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "attention: head_dim %u not in [1, %d]", p->head_dim,
                              LGPU_ATTN_MAX_HEAD_DIM);
    if (p->block_size == 0 || p->max_blocks == 0)
        return lgpu_set_error(LGPU_EINVAL, "attention: block_size %u and max_blocks %u must be positive",
                              p->block_size, p->max_blocks);
    const size_t esz = lgpu_kv_elem_bytes(p->kv_type);
    if (!esz) return lgpu_set_error(LGPU_EINVAL, "attention: kv_type %u is neither F32 nor F16", p->kv_type);
    uint64_t row = (uint64_t)p->n_heads * p->head_dim;
    if (p->T > 1 && p->q_stride < row)
        return lgpu_set_error(LGPU_EINVAL, "attention: q_stride %u < n_heads*head_dim %llu", p->q_stride,
                              (unsigned long long)row);
    size_t qb = ((size_t)(p->T - 1) * p->q_stride + row) * sizeof(float);
    size_t ob = (size_t)p->T * row * sizeof(float), tb = (size_t)p->T * sizeof(int32_t);
    int st;
    if ((st = op_check_ref(q, qb, "attention", "q")) || (st = op_check_ref(tok_seq, tb, "attention", "tok_seq")) ||
        (st = op_check_ref(tok_pos, tb, "attention", "tok_pos")) ||
        (st = op_check_ref(block_table, sizeof(int32_t), "attention", "block_table")) ||
        (st = op_check_ref(k_pool, op_ref_avail(k_pool), "attention", "k_pool")) ||
        (st = op_check_ref(v_pool, op_ref_avail(v_pool), "attention", "v_pool")) ||
        (st = op_check_ref(out, ob, "attention", "out")) ||
        (lse.buf && (st = op_check_ref(lse, (size_t)p->T * p->n_heads * sizeof(float), "attention", "lse"))))
        return st;
    if (lgpu_exec_is_host(ex)) {
        const int32_t *seq = lgpu_ref_host(tok_seq), *pos = lgpu_ref_host(tok_pos), *table = lgpu_ref_host(block_table);
        size_t pool = op_ref_avail(k_pool) < op_ref_avail(v_pool) ? op_ref_avail(k_pool) : op_ref_avail(v_pool);
        size_t slots = pool / ((size_t)p->n_kv_heads * p->head_dim * esz);
        for (uint32_t t = 0; t < p->T; t++) {
            if (seq[t] < 0 || pos[t] < 0) continue;
            uint32_t n_blk = (uint32_t)pos[t] / p->block_size + 1;
            if ((st = lgpu_op_check_blocks("attention", t, table, op_ref_avail(block_table) / sizeof(int32_t), seq[t],
                                           0, n_blk, p->max_blocks, p->block_size, slots)))
                return st;
        }
        lgpu_ref_attention(p, lgpu_ref_host(q), seq, pos, table, lgpu_ref_host(k_pool), lgpu_ref_host(v_pool),
                           lgpu_ref_host(out), lse.buf ? lgpu_ref_host(lse) : NULL, lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    static const char *const shader[2][2] = {{"attention_nosg", "attention"}, {"attention_f16_nosg", "attention_f16"}};
    lgpu_attention_params pc = *p;
    pc.save_lse = lse.buf != NULL;
    lgpu_dispatch d = {.shader = shader[p->kv_type == LGPU_TYPE_F16][op_use_subgroup(caps)],
                       .op = "attention",
                       .params = &pc,
                       .params_size = sizeof pc};
    op_bind(&d, q, qb, false);
    op_bind(&d, tok_seq, tb, false);
    op_bind(&d, tok_pos, tb, false);
    op_bind(&d, block_table, 0, false);
    op_bind(&d, k_pool, 0, false);
    op_bind(&d, v_pool, 0, false);
    op_bind(&d, out, ob, true);
    if (lse.buf) op_bind(&d, lse, (size_t)p->T * p->n_heads * sizeof(float), true);
    /* the shader works on vec4s and keeps one vec4 of the output per invocation */
    d.spec[0] = op_wg_size(caps, ATT_WG);
    if (p->head_dim % 4 || p->head_dim / 4 > d.spec[0])
        return lgpu_set_error(LGPU_EUNSUPPORTED,
                              "attention: the shader needs head_dim %u to be a multiple of 4 and at most %u", p->head_dim,
                              4 * d.spec[0]);
    d.n_spec = 1;
    if ((st = op_grid(caps, (uint64_t)p->T * p->n_heads, d.groups, "attention"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
