/* softmax: the C twin on the host, shaders/softmax.comp on Vulkan. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_softmax(lgpu_exec *ex, const lgpu_softmax_params *p, lgpu_ref x, lgpu_ref y) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "softmax: NULL exec or params");
    if (p->M == 0) return 0;
    if (p->N == 0) return lgpu_set_error(LGPU_EINVAL, "softmax: N is 0");
    size_t xb = (size_t)p->M * p->N * sizeof(float);
    int st;
    if ((st = op_check_ref(x, xb, "softmax", "x")) || (st = op_check_ref(y, xb, "softmax", "y"))) return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_softmax(p, lgpu_ref_host(x), lgpu_ref_host(y));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = op_use_subgroup(caps) ? "softmax" : "softmax_nosg",
                       .op = "softmax",
                       .params = p,
                       .params_size = sizeof *p};
    op_bind(&d, x, xb, false);
    op_bind(&d, y, xb, true);
    d.spec[0] = op_wg_size(caps, p->N >= 2048 ? 256 : p->N >= 512 ? 128 : 64);
    d.n_spec = 1;
    if ((st = op_grid(caps, p->M, d.groups, "softmax"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
