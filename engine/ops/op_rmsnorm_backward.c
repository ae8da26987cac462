/* rmsnorm_backward: the C twin on the host, shaders/rmsnorm_backward.comp on Vulkan. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_rmsnorm_backward(lgpu_exec *ex, const lgpu_rmsnorm_backward_params *p, lgpu_ref x, lgpu_ref w,
                             lgpu_ref dy, lgpu_ref dx) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "rmsnorm_backward: NULL exec or params");
    if (p->M == 0) return 0;
    if (p->N == 0) return lgpu_set_error(LGPU_EINVAL, "rmsnorm_backward: N is 0");
    size_t xb = (size_t)p->M * p->N * sizeof(float), wb = (size_t)p->N * sizeof(float);
    if (xb / sizeof(float) > UINT32_MAX)
        return lgpu_set_error(LGPU_ERANGE, "rmsnorm_backward: M*N = %zu elements exceed 2^32", xb / sizeof(float));
    int st;
    if ((st = op_check_ref(x, xb, "rmsnorm_backward", "x")) || (st = op_check_ref(w, wb, "rmsnorm_backward", "w")) ||
        (st = op_check_ref(dy, xb, "rmsnorm_backward", "dy")) ||
        (st = op_check_ref(dx, xb, "rmsnorm_backward", "dx")))
        return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_rmsnorm_backward(p, lgpu_ref_host(x), lgpu_ref_host(w), lgpu_ref_host(dy), lgpu_ref_host(dx),
                                  lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = op_use_subgroup(caps) ? "rmsnorm_backward" : "rmsnorm_backward_nosg",
                       .op = "rmsnorm_backward",
                       .params = p,
                       .params_size = sizeof *p};
    op_bind(&d, x, xb, false);
    op_bind(&d, w, wb, false);
    op_bind(&d, dy, xb, false);
    op_bind(&d, dx, xb, true); /* read too when accumulating: a written range orders against earlier writes */
    /* one workgroup per row: fewer invocations for short rows */
    d.spec[0] = op_wg_size(caps, p->N >= 2048 ? 256 : p->N >= 512 ? 128 : 64);
    d.n_spec = 1;
    if ((st = op_grid(caps, p->M, d.groups, "rmsnorm_backward"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
