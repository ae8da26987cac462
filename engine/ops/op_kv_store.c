/* kv_store: the C twin on the host, shaders/kv_store.comp on Vulkan.
 * On the host every slot is checked first (a bad block table is an
 * LGPU_ERANGE error); the shader, which cannot report, skips such tokens and
 * never writes outside the pools. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_check_blocks(const char *op, uint32_t t, const int32_t *table, size_t table_len, int32_t seq,
                         uint32_t blk_begin, uint32_t blk_end, uint32_t max_blocks, uint32_t block_size,
                         size_t pool_slots) {
    if (blk_end > max_blocks) blk_end = max_blocks;
    for (uint32_t blk = blk_begin; blk < blk_end; blk++) {
        size_t i = (size_t)seq * max_blocks + blk;
        if (i >= table_len)
            return lgpu_set_error(LGPU_ERANGE, "%s: token %u: block table entry %zu (seq %d, block %u) is past the table (%zu entries)",
                                  op, t, i, seq, blk, table_len);
        int32_t b = table[i];
        if (b >= 0 && ((size_t)b + 1) * block_size > pool_slots)
            return lgpu_set_error(LGPU_ERANGE, "%s: token %u: block id %d (seq %d, block %u) is past the pools (%zu slots)",
                                  op, t, b, seq, blk, pool_slots);
    }
    return 0;
}

int lgpu_op_kv_store(lgpu_exec *ex, const lgpu_kv_store_params *p, lgpu_ref k, lgpu_ref v, lgpu_ref tok_seq,
                     lgpu_ref tok_pos, lgpu_ref block_table, lgpu_ref k_pool, lgpu_ref v_pool) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "kv_store: NULL exec or params");
    if (p->T == 0) return 0;
    if (p->kv_dim == 0 || p->block_size == 0 || p->max_blocks == 0)
        return lgpu_set_error(LGPU_EINVAL, "kv_store: kv_dim %u, block_size %u, max_blocks %u must be positive",
                              p->kv_dim, p->block_size, p->max_blocks);
    const size_t esz = lgpu_kv_elem_bytes(p->kv_type);
    if (!esz) return lgpu_set_error(LGPU_EINVAL, "kv_store: kv_type %u is neither F32 nor F16", p->kv_type);
    if (p->kv_type == LGPU_TYPE_F16 && p->kv_dim % 2)
        return lgpu_set_error(LGPU_EINVAL, "kv_store: an F16 cache needs an even kv_dim, not %u", p->kv_dim);
    if (p->T > 1 && p->src_stride < p->kv_dim)
        return lgpu_set_error(LGPU_EINVAL, "kv_store: src_stride %u < kv_dim %u", p->src_stride, p->kv_dim);
    size_t sb = ((size_t)(p->T - 1) * p->src_stride + p->kv_dim) * sizeof(float);
    size_t tb = (size_t)p->T * sizeof(int32_t);
    int st;
    if ((st = op_check_ref(k, sb, "kv_store", "k")) || (st = op_check_ref(v, sb, "kv_store", "v")) ||
        (st = op_check_ref(tok_seq, tb, "kv_store", "tok_seq")) ||
        (st = op_check_ref(tok_pos, tb, "kv_store", "tok_pos")) ||
        (st = op_check_ref(block_table, sizeof(int32_t), "kv_store", "block_table")) ||
        (st = op_check_ref(k_pool, op_ref_avail(k_pool), "kv_store", "k_pool")) ||
        (st = op_check_ref(v_pool, op_ref_avail(v_pool), "kv_store", "v_pool")))
        return st;
    if (lgpu_exec_is_host(ex)) {
        const int32_t *seq = lgpu_ref_host(tok_seq), *pos = lgpu_ref_host(tok_pos), *table = lgpu_ref_host(block_table);
        size_t pool = op_ref_avail(k_pool) < op_ref_avail(v_pool) ? op_ref_avail(k_pool) : op_ref_avail(v_pool);
        size_t slots = pool / ((size_t)p->kv_dim * esz);
        for (uint32_t t = 0; t < p->T; t++) {
            if (seq[t] < 0 || pos[t] < 0) continue;
            uint32_t blk = (uint32_t)pos[t] / p->block_size;
            if ((st = lgpu_op_check_blocks("kv_store", t, table, op_ref_avail(block_table) / sizeof(int32_t), seq[t],
                                           blk, blk + 1, p->max_blocks, p->block_size, slots)))
                return st;
        }
        lgpu_ref_kv_store(p, lgpu_ref_host(k), lgpu_ref_host(v), seq, pos, table, lgpu_ref_host(k_pool),
                          lgpu_ref_host(v_pool));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = p->kv_type == LGPU_TYPE_F16 ? "kv_store_f16" : "kv_store",
                       .op = "kv_store",
                       .params = p,
                       .params_size = sizeof *p};
    op_bind(&d, k, sb, false);
    op_bind(&d, v, sb, false);
    op_bind(&d, tok_seq, tb, false);
    op_bind(&d, tok_pos, tb, false);
    op_bind(&d, block_table, 0, false);
    op_bind(&d, k_pool, 0, true);
    op_bind(&d, v_pool, 0, true);
    d.spec[0] = op_wg_size(caps, 256);
    d.n_spec = 1;
    uint64_t n = (uint64_t)p->T * p->kv_dim / (p->kv_type == LGPU_TYPE_F16 ? 2 : 1); /* F16: a pair each */
    if (n > UINT32_MAX) return lgpu_set_error(LGPU_ERANGE, "kv_store: %llu values exceed 2^32", (unsigned long long)n);
    if ((st = op_grid(caps, LGPU_CEIL_DIV(n, d.spec[0]), d.groups, "kv_store"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
