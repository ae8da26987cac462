/* matmul_backward: the C twin on the host (which also reads Q4_0 repacked in
 * 8-row groups, w_x8), shaders/matmul_backward.comp on Vulkan, one build per
 * weight type (matmul_backward_<t>), tiles chosen per call by op_pick_tiles.
 *
 * W may span several buffer segments (the buffer created with unit = row
 * bytes): one dispatch per segment (op_each_segment), binding the whole rows
 * it holds, with row_offset telling the shader which dy columns pair with
 * them; the first dispatch writes dx (or adds to it when the caller
 * accumulates), the later ones add to it, ordered by the exec's barriers. */
#include <stdio.h>

#include "ops/op_common.h"
#include "ref/ref_ops.h"

typedef struct {
    lgpu_exec *ex;
    const lgpu_matmul_backward_params *p;
    const char *shader;
    lgpu_ref w, dy, dx;
    size_t dyb, dxb;
    uint32_t spec[7]; /* the tiles; NF4: its compute type */
    uint32_t n_spec;
    uint32_t groups[3];
    const op_weight *wt;
} mmb_ctx;

static int mmb_dispatch(const mmb_ctx *c, lgpu_ref w, size_t wbind, uint32_t r0, uint32_t r1) {
    lgpu_matmul_backward_params sp = *c->p;
    sp.N = r1 - r0;
    sp.row_offset = r0;
    if (r0 > 0) sp.accumulate = 1; /* later segments add to the first's sums */
    lgpu_dispatch d = {.shader = c->shader, .op = c->shader, .params = &sp, .params_size = sizeof sp};
    op_bind(&d, w, wbind, false);
    op_bind(&d, c->dy, c->dyb, false);
    op_bind(&d, c->dx, c->dxb, true);
    if (c->wt->nf4) op_bind(&d, c->wt->side, c->wt->side_bytes, false);
    memcpy(d.spec, c->spec, sizeof c->spec);
    d.n_spec = c->n_spec;
    memcpy(d.groups, c->groups, sizeof c->groups);
    return lgpu_exec_dispatch(c->ex, &d);
}

static int mmb_segment(void *ctx, const op_seg_rows *part) {
    const mmb_ctx *c = ctx;
    return mmb_dispatch(c, lgpu_ref_at(c->w.buf, part->lo), part->hi - part->lo, part->r0, part->r1);
}

int lgpu_op_matmul_backward(lgpu_exec *ex, const lgpu_matmul_backward_params *p, lgpu_ref w, lgpu_ref dy,
                            lgpu_ref dx) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "matmul_backward: NULL exec or params");
    if (p->M == 0 || p->K == 0) return 0;
    const char *tname = op_type_suffix(p->wtype);
    if (!tname)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "matmul_backward: weight type %u (%s)", p->wtype,
                              lgpu_type_name((int)p->wtype) ? lgpu_type_name((int)p->wtype) : "unknown");
    if (p->row_offset != 0)
        return lgpu_set_error(LGPU_EINVAL, "matmul_backward: row_offset is set by the op layer; pass 0");
    int st = op_check_x8(ex, p->w_x8, p->wtype, p->N, "matmul_backward");
    if (st) return st;
    op_weight wt;
    if ((st = op_weight_resolve(p->wtype, p->N, p->K, w, "matmul_backward", &wt))) return st;
    lgpu_matmul_backward_params q = *p; /* strides 0 mean contiguous rows, as in the twin */
    if (!q.dy_stride) q.dy_stride = q.N;
    if (!q.dx_stride) q.dx_stride = q.K;
    q.accumulate = q.accumulate != 0;
    p = &q;
    if (p->dy_stride < p->N || p->dx_stride < p->K)
        return lgpu_set_error(LGPU_EINVAL, "matmul_backward: strides dy %u < N %u or dx %u < K %u", p->dy_stride,
                              p->N, p->dx_stride, p->K);
    uint64_t dye = (uint64_t)(p->M - 1) * p->dy_stride + p->N, dxe = (uint64_t)(p->M - 1) * p->dx_stride + p->K;
    if (dye > UINT32_MAX || dxe > UINT32_MAX)
        return lgpu_set_error(LGPU_ERANGE, "matmul_backward: dy (%llu) or dx (%llu) elements exceed 2^32",
                              (unsigned long long)dye, (unsigned long long)dxe);
    size_t dyb = (size_t)dye * sizeof(float), dxb = (size_t)dxe * sizeof(float), wb = wt.bytes;
    if ((st = op_check_ref(dy, dyb, "matmul_backward", "dy")) || (st = op_check_ref(dx, dxb, "matmul_backward", "dx")) ||
        (st = op_check_ref(w, 0, "matmul_backward", "w")))
        return st;
    if (op_ref_avail(w) < wb)
        return lgpu_set_error(LGPU_ERANGE, "matmul_backward: W of %u rows (%s, K = %u) needs %zu bytes from offset "
                              "%zu, buffer has %zu", p->N, tname, p->K, wb, w.off, op_ref_avail(w));

    if (lgpu_exec_is_host(ex)) {
        if ((st = op_check_ref(w, wb, "matmul_backward", "w"))) return st;
        const void *side = wt.nf4 ? lgpu_ref_host(wt.side) : NULL;
        if (side && ((const lgpu_nf4_side *)side)->n_blocks < lgpu_nf4_blocks((int64_t)p->N * p->K))
            return lgpu_set_error(LGPU_EINVAL, "matmul_backward: the side table covers %u blocks, W has %lld",
                                  ((const lgpu_nf4_side *)side)->n_blocks,
                                  (long long)lgpu_nf4_blocks((int64_t)p->N * p->K));
        lgpu_ref_matmul_backward(p, lgpu_ref_host(w), side, lgpu_ref_host(dy), lgpu_ref_host(dx),
                                 lgpu_exec_threads(ex));
        return 0;
    }

    const lgpu_dev_caps *caps = op_caps(ex);
    if ((st = op_check_storage(caps, p->wtype, "matmul_backward", "weights"))) return st;
    char shader[40];
    snprintf(shader, sizeof shader, "matmul_backward_%s", tname);
    op_tiles t = op_pick_tiles(caps, p->M, p->K);
    mmb_ctx c = {ex, p, shader, w, dy, dx, dyb, dxb, {t.wg, t.br, t.bc, 16 /* BN */, t.tr, t.tc, wt.compute_type},
                 wt.nf4 ? 7 : 6, {0}, &wt};
    if ((st = op_tile_grid(caps, &t, p->M, p->K, c.groups, "matmul_backward"))) return st;
    /* N = 0: the empty sum, one dispatch that reads no W (dx bound in its place) */
    if (p->N == 0) return mmb_dispatch(&c, dx, dxb, 0, 0);
    return op_each_segment_units(w, p->N, wt.unit_rows, wt.unit_bytes, wb, caps->min_storage_align,
                                 "matmul_backward", "W", mmb_segment, &c);
}
