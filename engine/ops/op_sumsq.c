/* sumsq: the C twin on the host, shaders/sumsq.comp on Vulkan. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

int lgpu_op_sumsq(lgpu_exec *ex, const lgpu_sumsq_params *p, lgpu_ref x, lgpu_ref out) {
    static const char op[] = "sumsq";
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "%s: NULL exec or params", op);
    if (p->block == 0 || p->block % 1024 || p->block > (1u << 20))
        return lgpu_set_error(LGPU_EINVAL, "%s: block %u is not a multiple of 1024 in [1024, 2^20]", op, p->block);
    if (p->n == 0) return 0;
    uint32_t nblocks = (uint32_t)LGPU_CEIL_DIV((uint64_t)p->n, p->block);
    size_t xb = (size_t)p->n * sizeof(float), ob = (size_t)nblocks * sizeof(float);
    int st;
    if ((st = op_check_ref(x, xb, op, "x")) || (st = op_check_ref(out, ob, op, "out"))) return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_sumsq(p, lgpu_ref_host(x), lgpu_ref_host(out), lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = op_use_subgroup(caps) ? "sumsq" : "sumsq_nosg",
                       .op = op,
                       .params = p,
                       .params_size = sizeof *p};
    op_bind(&d, x, xb, false);
    op_bind(&d, out, ob, true);
    d.spec[0] = op_wg_size(caps, 256);
    d.n_spec = 1;
    if ((st = op_grid(caps, nblocks, d.groups, op))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
