/* argmax: the C twin on the host, shaders/argmax.comp on Vulkan. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_argmax(lgpu_exec *ex, const lgpu_argmax_params *p, lgpu_ref x, lgpu_ref idx) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "argmax: NULL exec or params");
    if (p->M == 0) return 0;
    if (p->N == 0) return lgpu_set_error(LGPU_EINVAL, "argmax: N is 0");
    size_t xb = (size_t)p->M * p->N * sizeof(float), ib = (size_t)p->M * sizeof(int32_t);
    int st;
    if ((st = op_check_ref(x, xb, "argmax", "x")) || (st = op_check_ref(idx, ib, "argmax", "idx"))) return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_argmax(p, lgpu_ref_host(x), lgpu_ref_host(idx));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = op_use_subgroup(caps) ? "argmax" : "argmax_nosg",
                       .op = "argmax",
                       .params = p,
                       .params_size = sizeof *p};
    op_bind(&d, x, xb, false);
    op_bind(&d, idx, ib, true);
    d.spec[0] = op_wg_size(caps, p->N >= 2048 ? 256 : p->N >= 512 ? 128 : 64);
    d.n_spec = 1;
    if ((st = op_grid(caps, p->M, d.groups, "argmax"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
