/* get_rows: the C twin on the host, shaders/get_rows.comp (one build per
 * embedding type) on Vulkan.
 *
 * A table larger than the device's max binding spans several buffer
 * segments: one dispatch per segment (op_each_segment), each binding the
 * whole rows that segment holds (the buffer must be created with unit = row
 * bytes so no row straddles a boundary). The first dispatch (row_offset 0) also writes zero
 * rows for ids outside its range; later ones overwrite the tokens whose ids
 * they hold, ordered after it by the exec's write-after-write barrier.
 * Out-of-range ids give zero rows on both devices; the host path, which can
 * read the ids when the op runs, also logs a warning. */
#include <stdio.h>

#include "ops/op_common.h"
#include "ref/ref_ops.h"

static void warn_bad_ids(const lgpu_get_rows_params *p, const int32_t *ids) {
    for (uint32_t t = 0; t < p->T; t++)
        if (ids[t] < 0 || (uint32_t)ids[t] >= p->n_rows) {
            lgpu_log(LGPU_LOG_WARN, "get_rows: ids[%u] = %d is outside [0, %u): zero row", t, ids[t], p->n_rows);
            return;
        }
}

/* One dispatch per segment of the table (op_each_segment). */
typedef struct {
    lgpu_exec *ex;
    const lgpu_get_rows_params *p;
    const char *shader;
    lgpu_ref e, ids, y;
    size_t ib, yb;
    uint32_t wg, groups[3];
} gr_ctx;

static int gr_segment(void *ctx, const op_seg_rows *part) {
    const gr_ctx *c = ctx;
    lgpu_get_rows_params sp = *c->p;
    sp.row_offset = part->r0;
    sp.n_rows = part->r1 - part->r0;
    lgpu_dispatch d = {.shader = c->shader, .op = c->shader, .params = &sp, .params_size = sizeof sp};
    op_bind(&d, lgpu_ref_at(c->e.buf, part->lo), part->hi - part->lo, false);
    op_bind(&d, c->ids, c->ib, false);
    op_bind(&d, c->y, c->yb, true);
    d.spec[0] = c->wg;
    d.n_spec = 1;
    memcpy(d.groups, c->groups, sizeof d.groups);
    return lgpu_exec_dispatch(c->ex, &d);
}

int lgpu_op_get_rows(lgpu_exec *ex, const lgpu_get_rows_params *p, lgpu_ref e, lgpu_ref ids, lgpu_ref y) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "get_rows: NULL exec or params");
    if (p->T == 0) return 0;
    const char *suffix = op_type_suffix(p->etype);
    if (!suffix) return lgpu_set_error(LGPU_EUNSUPPORTED, "get_rows: embedding type %u", p->etype);
    if (p->row_offset != 0) return lgpu_set_error(LGPU_EINVAL, "get_rows: row_offset is set by the op layer; pass 0");
    int st = op_check_x8(ex, p->e_x8, p->etype, p->n_rows, "get_rows");
    if (st) return st;
    size_t rb = lgpu_type_row_bytes((int)p->etype, p->K);
    if (p->K == 0 || rb == 0)
        return lgpu_set_error(LGPU_EINVAL, "get_rows: K = %u is not a positive multiple of the %s block size", p->K,
                              lgpu_type_name((int)p->etype));
    if (p->n_rows == 0) return lgpu_set_error(LGPU_EINVAL, "get_rows: n_rows is 0");
    size_t eb = (size_t)p->n_rows * rb, ib = (size_t)p->T * sizeof(int32_t), yb = (size_t)p->T * p->K * sizeof(float);
    if ((st = op_check_ref(ids, ib, "get_rows", "ids")) || (st = op_check_ref(y, yb, "get_rows", "y")) ||
        (st = op_check_ref(e, 0, "get_rows", "e")))
        return st;
    if (op_ref_avail(e) < eb)
        return lgpu_set_error(LGPU_ERANGE, "get_rows: table of %u rows x %zu bytes needs %zu bytes, buffer has %zu",
                              p->n_rows, rb, eb, op_ref_avail(e));

    if (lgpu_exec_is_host(ex)) {
        if ((st = op_check_ref(e, eb, "get_rows", "e"))) return st;
        lgpu_ref_get_rows(p, lgpu_ref_host(e), lgpu_ref_host(ids), lgpu_ref_host(y));
        warn_bad_ids(p, lgpu_ref_host(ids));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    if ((st = op_check_storage(caps, p->etype, "get_rows", "embeddings"))) return st;
    uint64_t n = (uint64_t)p->T * p->K;
    if (n > UINT32_MAX) return lgpu_set_error(LGPU_ERANGE, "get_rows: %llu values exceed 2^32", (unsigned long long)n);
    uint32_t wg = op_wg_size(caps, 256);
    uint32_t groups[3] = {0};
    if ((st = op_grid(caps, LGPU_CEIL_DIV(n, wg), groups, "get_rows"))) return st;

    char shader[32];
    snprintf(shader, sizeof shader, "get_rows_%s", suffix);
    gr_ctx c = {ex, p, shader, e, ids, y, ib, yb, wg, {groups[0], groups[1], groups[2]}};
    return op_each_segment(e, p->n_rows, rb, caps->min_storage_align, "get_rows", "table", gr_segment, &c);
}
