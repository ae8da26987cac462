/* rmsnorm: the C twin on the host, shaders/rmsnorm.comp on Vulkan. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_rmsnorm(lgpu_exec *ex, const lgpu_rmsnorm_params *p, lgpu_ref x, lgpu_ref w, lgpu_ref y) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "rmsnorm: NULL exec or params");
    if (p->M == 0) return 0;
    if (p->N == 0) return lgpu_set_error(LGPU_EINVAL, "rmsnorm: N is 0");
    size_t xb = (size_t)p->M * p->N * sizeof(float), wb = (size_t)p->N * sizeof(float);
    int st;
    if ((st = op_check_ref(x, xb, "rmsnorm", "x")) || (st = op_check_ref(w, wb, "rmsnorm", "w")) ||
        (st = op_check_ref(y, xb, "rmsnorm", "y")))
        return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_rmsnorm(p, lgpu_ref_host(x), lgpu_ref_host(w), lgpu_ref_host(y), lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = op_use_subgroup(caps) ? "rmsnorm" : "rmsnorm_nosg",
                       .op = "rmsnorm",
                       .params = p,
                       .params_size = sizeof *p};
    op_bind(&d, x, xb, false);
    op_bind(&d, w, wb, false);
    op_bind(&d, y, xb, true);
    /* one workgroup per row: fewer invocations for short rows */
    d.spec[0] = op_wg_size(caps, p->N >= 2048 ? 256 : p->N >= 512 ? 128 : 64);
    d.n_spec = 1;
    if ((st = op_grid(caps, p->M, d.groups, "rmsnorm"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
