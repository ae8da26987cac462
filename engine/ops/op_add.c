/* y = a + b (shaders/add.comp; twin lgpu_ref_add). The grid goes 2D when
 * the n/WG workgroups exceed max_wg_count[0]. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_add(lgpu_exec *ex, const lgpu_add_params *p, lgpu_ref a, lgpu_ref b, lgpu_ref y) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "add: NULL exec or params");
    if (!p->n) return 0;
    size_t bytes = (size_t)p->n * sizeof(float);
    int st;
    if ((st = op_check_ref(a, bytes, "add", "a")) || (st = op_check_ref(b, bytes, "add", "b")) ||
        (st = op_check_ref(y, bytes, "add", "y")))
        return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_add(p, lgpu_ref_host(a), lgpu_ref_host(b), lgpu_ref_host(y));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = "add", .op = "add", .params = p, .params_size = sizeof *p};
    op_bind(&d, a, bytes, false);
    op_bind(&d, b, bytes, false);
    op_bind(&d, y, bytes, true);
    d.spec[0] = op_wg_size(caps, 256);
    d.n_spec = 1;
    if ((st = op_grid(caps, LGPU_CEIL_DIV((uint64_t)p->n, d.spec[0]), d.groups, "add"))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
