/* lora: the per-row LoRA update (engine/params/lora.h); the C twin
 * lgpu_ref_lora on the host, shaders/lora.comp on Vulkan, one workgroup per
 * listed row. */
#include <string.h>

#include "ops/op_common.h"
#include "ref/ref_ops.h"

/* Host path: the lists are readable now, so every entry is checked before
 * the twin runs (the shader skips bad entries instead). */
static int check_entries(const lgpu_lora_op_params *p, const int32_t *rows, const int32_t *table) {
    const uint32_t words = 1 + 2 * p->n_stack;
    for (uint32_t e = 0; e < p->n_rows; e++) {
        const int32_t *r = rows + (size_t)e * words;
        if (r[0] < 0 || (uint32_t)r[0] >= p->n_tokens)
            return lgpu_set_error(LGPU_ERANGE, "lora: entry %u: row %d outside the %u tokens", e, r[0], p->n_tokens);
        for (uint32_t k = 0; k < p->n_stack; k++) {
            int32_t a = r[1 + 2 * k];
            if (a < 0) continue;
            if ((uint32_t)a >= p->n_adapters)
                return lgpu_set_error(LGPU_ERANGE, "lora: entry %u: adapter %d of %u", e, a, p->n_adapters);
            const int32_t *t = table + ((size_t)a * p->table_stride + p->table_index) * 4;
            uint64_t rank = (uint32_t)t[2], ao = (uint32_t)t[0], bo = (uint32_t)t[1];
            if (rank > LGPU_LORA_OP_MAX_RANK)
                return lgpu_set_error(LGPU_ERANGE, "lora: adapter %d: rank %llu above %d", a, (unsigned long long)rank,
                                      LGPU_LORA_OP_MAX_RANK);
            if (rank && (ao + rank * p->in > p->w_size || bo + rank * p->out > p->w_size))
                return lgpu_set_error(LGPU_ERANGE, "lora: adapter %d: A at %llu or B at %llu (rank %llu) outside the "
                                      "%u weights", a, (unsigned long long)ao, (unsigned long long)bo,
                                      (unsigned long long)rank, p->w_size);
        }
    }
    return 0;
}

int lgpu_op_lora(lgpu_exec *ex, const lgpu_lora_op_params *p, lgpu_ref x, lgpu_ref w, lgpu_ref table, lgpu_ref rows,
                 lgpu_ref y) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "lora: NULL exec or params");
    if (!p->n_rows) return 0;
    if (!p->in || !p->out || !p->n_tokens || !p->n_stack || !p->n_adapters || !p->w_size ||
        p->table_index >= p->table_stride || p->x_stride < p->in || p->y_stride < p->out)
        return lgpu_set_error(LGPU_EINVAL, "lora: bad shape (in %u, out %u, tokens %u, stack %u, adapters %u, "
                              "table %u of %u, strides %u/%u)", p->in, p->out, p->n_tokens, p->n_stack,
                              p->n_adapters, p->table_index, p->table_stride, p->x_stride, p->y_stride);
    if (p->n_rows > p->n_tokens)
        return lgpu_set_error(LGPU_EINVAL, "lora: %u entries for %u tokens", p->n_rows, p->n_tokens);
    const size_t f = sizeof(float);
    size_t xb = ((size_t)(p->n_tokens - 1) * p->x_stride + p->in) * f;
    size_t yb = ((size_t)(p->n_tokens - 1) * p->y_stride + p->out) * f;
    size_t rb = (size_t)p->n_rows * (1 + 2 * p->n_stack) * 4, wb = (size_t)p->w_size * f;
    size_t tb = (size_t)p->n_adapters * p->table_stride * 16;
    int st;
    if ((st = op_check_ref(x, xb, "lora", "x")) || (st = op_check_ref(w, wb, "lora", "w")) ||
        (st = op_check_ref(table, tb, "lora", "table")) || (st = op_check_ref(rows, rb, "lora", "rows")) ||
        (st = op_check_ref(y, yb, "lora", "y")))
        return st;
    if (lgpu_exec_is_host(ex)) {
        const int32_t *r = lgpu_ref_host(rows), *t = lgpu_ref_host(table);
        if ((st = check_entries(p, r, t))) return st;
        lgpu_ref_lora(p, lgpu_ref_host(x), lgpu_ref_host(w), t, r, lgpu_ref_host(y), lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = "lora", .op = "lora", .params = p, .params_size = sizeof *p};
    op_bind(&d, x, xb, false);
    op_bind(&d, y, yb, true);
    op_bind(&d, w, wb, false);
    op_bind(&d, table, tb, false);
    op_bind(&d, rows, rb, false);
    /* the size depends on the shape only, never on the batch: a row gets the
     * same bits alone or batched */
    d.spec[0] = op_wg_size(caps, p->in <= 256 && p->out <= 256 ? 64 : 256);
    d.n_spec = 1;
    if ((st = op_grid(caps, p->n_rows, d.groups, "lora"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
