/* adamw: the C twin on the host, shaders/adamw.comp on Vulkan. */
#include <math.h>

#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_adamw(lgpu_exec *ex, const lgpu_adamw_params *p, lgpu_ref param, lgpu_ref grad, lgpu_ref m,
                  lgpu_ref v) {
    static const char op[] = "adamw";
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "%s: NULL exec or params", op);
    if (p->n == 0) return 0;
    if (!(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1))
        return lgpu_set_error(LGPU_EINVAL, "%s: beta1 %g and beta2 %g must lie in [0, 1)", op, p->beta1, p->beta2);
    if (!(p->one_minus_beta1 > 0 && p->one_minus_beta1 <= 1) || !(p->one_minus_beta2 > 0 && p->one_minus_beta2 <= 1))
        return lgpu_set_error(LGPU_EINVAL,
                              "%s: one_minus_beta1 %g and one_minus_beta2 %g must lie in (0, 1]: set them to 1 - beta "
                              "(computed in double)",
                              op, p->one_minus_beta1, p->one_minus_beta2);
    if (!(p->eps >= 0) || !isfinite(p->eps)) return lgpu_set_error(LGPU_EINVAL, "%s: eps %g is not >= 0", op, p->eps);
    if (!isfinite(p->lr) || !isfinite(p->weight_decay) || !isfinite(p->c1) || !isfinite(p->c2) ||
        !isfinite(p->grad_scale))
        return lgpu_set_error(LGPU_EINVAL, "%s: lr %g, weight_decay %g, c1 %g, c2 %g or grad_scale %g is not finite",
                              op, p->lr, p->weight_decay, p->c1, p->c2, p->grad_scale);
    size_t nb = (size_t)p->n * sizeof(float);
    int st;
    if ((st = op_check_ref(param, nb, op, "param")) || (st = op_check_ref(grad, nb, op, "grad")) ||
        (st = op_check_ref(m, nb, op, "m")) || (st = op_check_ref(v, nb, op, "v")))
        return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_adamw(p, lgpu_ref_host(param), lgpu_ref_host(grad), lgpu_ref_host(m), lgpu_ref_host(v),
                       lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = "adamw", .op = op, .params = p, .params_size = sizeof *p};
    op_bind(&d, param, nb, true);
    op_bind(&d, grad, nb, false);
    op_bind(&d, m, nb, true);
    op_bind(&d, v, nb, true);
    d.spec[0] = op_wg_size(caps, 256);
    d.n_spec = 1;
    if ((st = op_grid(caps, LGPU_CEIL_DIV((uint64_t)p->n, d.spec[0]), d.groups, op))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
