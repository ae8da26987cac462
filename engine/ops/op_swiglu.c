/* swiglu: the C twin on the host, shaders/swiglu.comp on Vulkan. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_swiglu(lgpu_exec *ex, const lgpu_swiglu_params *p, lgpu_ref g, lgpu_ref u, lgpu_ref y) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "swiglu: NULL exec or params");
    if (p->n == 0) return 0;
    size_t nb = (size_t)p->n * sizeof(float);
    int st;
    if ((st = op_check_ref(g, nb, "swiglu", "g")) || (st = op_check_ref(u, nb, "swiglu", "u")) ||
        (st = op_check_ref(y, nb, "swiglu", "y")))
        return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_swiglu(p, lgpu_ref_host(g), lgpu_ref_host(u), lgpu_ref_host(y), lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = "swiglu", .op = "swiglu", .params = p, .params_size = sizeof *p};
    op_bind(&d, g, nb, false);
    op_bind(&d, u, nb, false);
    op_bind(&d, y, nb, true);
    d.spec[0] = op_wg_size(caps, 256);
    d.n_spec = 1;
    if ((st = op_grid(caps, LGPU_CEIL_DIV((uint64_t)p->n, d.spec[0]), d.groups, "swiglu"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
