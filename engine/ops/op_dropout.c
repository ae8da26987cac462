/* dropout: the C twin on the host, shaders/dropout.comp on Vulkan. */
#include <math.h>

#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_dropout(lgpu_exec *ex, const lgpu_dropout_params *p, lgpu_ref x, lgpu_ref y) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "dropout: NULL exec or params");
    if (!(p->scale >= 1.0f) || !isfinite(p->scale))
        return lgpu_set_error(LGPU_EINVAL, "dropout: scale %g must be finite and >= 1 (1 / (1 - p); see "
                              "lgpu_dropout_params_make)", (double)p->scale);
    if (p->accumulate > 1)
        return lgpu_set_error(LGPU_EINVAL, "dropout: accumulate %u must be 0 or 1", p->accumulate);
    if (p->n == 0) return 0;
    size_t nb = (size_t)p->n * sizeof(float);
    int st;
    if ((st = op_check_ref(x, nb, "dropout", "x")) || (st = op_check_ref(y, nb, "dropout", "y"))) return st;
    /* each element is read before it is written, but only at its own index:
     * y may be x itself, not overlap it elsewhere */
    if (x.buf == y.buf && x.off != y.off && x.off < y.off + nb && y.off < x.off + nb)
        return lgpu_set_error(LGPU_EINVAL, "dropout: y [%zu, %zu) partly overlaps x [%zu, %zu)", y.off, y.off + nb,
                              x.off, x.off + nb);
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_dropout(p, lgpu_ref_host(x), lgpu_ref_host(y), lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = "dropout", .op = "dropout", .params = p, .params_size = sizeof *p};
    op_bind(&d, x, nb, false);
    op_bind(&d, y, nb, true);
    d.spec[0] = op_wg_size(caps, 256);
    d.n_spec = 1;
    /* one invocation per group of 4 elements (one Philox call) */
    uint64_t groups = LGPU_CEIL_DIV((uint64_t)p->n, 4);
    if ((st = op_grid(caps, LGPU_CEIL_DIV(groups, d.spec[0]), d.groups, "dropout"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
