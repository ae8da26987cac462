/* swiglu_backward: the C twin on the host, shaders/swiglu_backward.comp on Vulkan. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_swiglu_backward(lgpu_exec *ex, const lgpu_swiglu_backward_params *p, lgpu_ref g, lgpu_ref u,
                            lgpu_ref dy, lgpu_ref dg, lgpu_ref du) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "swiglu_backward: NULL exec or params");
    if (p->n == 0) return 0;
    size_t nb = (size_t)p->n * sizeof(float);
    int st;
    if ((st = op_check_ref(g, nb, "swiglu_backward", "g")) || (st = op_check_ref(u, nb, "swiglu_backward", "u")) ||
        (st = op_check_ref(dy, nb, "swiglu_backward", "dy")) ||
        (st = op_check_ref(dg, nb, "swiglu_backward", "dg")) || (st = op_check_ref(du, nb, "swiglu_backward", "du")))
        return st;
    if (dg.buf == du.buf && dg.off == du.off)
        return lgpu_set_error(LGPU_EINVAL, "swiglu_backward: dg and du are the same memory");
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_swiglu_backward(p, lgpu_ref_host(g), lgpu_ref_host(u), lgpu_ref_host(dy), lgpu_ref_host(dg),
                                 lgpu_ref_host(du), lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = "swiglu_backward", .op = "swiglu_backward", .params = p, .params_size = sizeof *p};
    op_bind(&d, g, nb, false);
    op_bind(&d, u, nb, false);
    op_bind(&d, dy, nb, false);
    op_bind(&d, dg, nb, true);
    op_bind(&d, du, nb, true);
    d.spec[0] = op_wg_size(caps, 256);
    d.n_spec = 1;
    if ((st = op_grid(caps, LGPU_CEIL_DIV((uint64_t)p->n, d.spec[0]), d.groups, "swiglu_backward"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
