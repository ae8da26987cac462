/* scale: the C twin on the host, shaders/scale.comp on Vulkan. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_scale(lgpu_exec *ex, const lgpu_scale_params *p, lgpu_ref x, lgpu_ref y) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "scale: NULL exec or params");
    if (p->n == 0) return 0;
    size_t nb = (size_t)p->n * sizeof(float);
    int st;
    if ((st = op_check_ref(x, nb, "scale", "x")) || (st = op_check_ref(y, nb, "scale", "y"))) return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_scale(p, lgpu_ref_host(x), lgpu_ref_host(y));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = "scale", .op = "scale", .params = p, .params_size = sizeof *p};
    op_bind(&d, x, nb, false);
    op_bind(&d, y, nb, true);
    d.spec[0] = op_wg_size(caps, 256);
    d.n_spec = 1;
    if ((st = op_grid(caps, LGPU_CEIL_DIV((uint64_t)p->n, d.spec[0]), d.groups, "scale"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
