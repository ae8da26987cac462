/* cross_entropy_stats / cross_entropy_grad: the C twins on the host,
 * shaders/cross_entropy_stats.comp and cross_entropy_grad.comp on Vulkan. */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

/* The chunk z: M rows of C logits, row stride z_stride; its bytes in *zb. */
static int check_chunk(const char *op, uint32_t M, uint32_t C, uint32_t z_stride, uint32_t v0, size_t *zb) {
    if (C == 0) return lgpu_set_error(LGPU_EINVAL, "%s: C is 0", op);
    if (M > 1 && z_stride < C)
        return lgpu_set_error(LGPU_EINVAL, "%s: z_stride %u < C %u (rows overlap)", op, z_stride, C);
    if ((uint64_t)v0 + C > (uint64_t)INT32_MAX + 1)
        return lgpu_set_error(LGPU_ERANGE, "%s: vocabulary ids v0 %u + C %u exceed 2^31", op, v0, C);
    uint64_t n = (uint64_t)(M - 1) * z_stride + C;
    if (n > UINT32_MAX)
        return lgpu_set_error(LGPU_ERANGE, "%s: z spans %llu elements, more than 2^32", op, (unsigned long long)n);
    *zb = (size_t)n * sizeof(float);
    return 0;
}

int lgpu_op_cross_entropy_stats(lgpu_exec *ex, const lgpu_cross_entropy_stats_params *p, lgpu_ref z,
                                lgpu_ref target, lgpu_ref stats, lgpu_ref loss) {
    static const char op[] = "cross_entropy_stats";
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "%s: NULL exec or params", op);
    if (p->M == 0) return 0;
    size_t zb, tb = (size_t)p->M * sizeof(int32_t), sb = (size_t)p->M * 4 * sizeof(float);
    size_t lb = (size_t)p->M * sizeof(float);
    int st;
    if ((st = check_chunk(op, p->M, p->C, p->z_stride, p->v0, &zb))) return st;
    if ((st = op_check_ref(z, zb, op, "z")) || (st = op_check_ref(target, tb, op, "target")) ||
        (st = op_check_ref(stats, sb, op, "stats")) || (p->last && (st = op_check_ref(loss, lb, op, "loss"))))
        return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_cross_entropy_stats(p, lgpu_ref_host(z), lgpu_ref_host(target), lgpu_ref_host(stats),
                                     p->last ? lgpu_ref_host(loss) : NULL, lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = op_use_subgroup(caps) ? "cross_entropy_stats" : "cross_entropy_stats_nosg",
                       .op = op,
                       .params = p,
                       .params_size = sizeof *p};
    op_bind(&d, z, zb, false);
    op_bind(&d, target, tb, false);
    op_bind(&d, stats, sb, true);
    if (p->last) op_bind(&d, loss, lb, true); /* else the shader never touches binding 3 */
    /* one workgroup per row: fewer invocations for short chunks */
    d.spec[0] = op_wg_size(caps, p->C >= 2048 ? 256 : p->C >= 512 ? 128 : p->C >= 64 ? 64 : 32);
    d.n_spec = 1;
    if ((st = op_grid(caps, p->M, d.groups, op))) return st;
    return lgpu_exec_dispatch(ex, &d);
}

int lgpu_op_cross_entropy_grad(lgpu_exec *ex, const lgpu_cross_entropy_grad_params *p, lgpu_ref z,
                               lgpu_ref target, lgpu_ref stats) {
    static const char op[] = "cross_entropy_grad";
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "%s: NULL exec or params", op);
    if (p->M == 0) return 0;
    size_t zb, tb = (size_t)p->M * sizeof(int32_t), sb = (size_t)p->M * 4 * sizeof(float);
    int st;
    if ((st = check_chunk(op, p->M, p->C, p->z_stride, p->v0, &zb))) return st;
    if ((st = op_check_ref(z, zb, op, "z")) || (st = op_check_ref(target, tb, op, "target")) ||
        (st = op_check_ref(stats, sb, op, "stats")))
        return st;
    if (lgpu_exec_is_host(ex)) {
        lgpu_ref_cross_entropy_grad(p, lgpu_ref_host(z), lgpu_ref_host(target), lgpu_ref_host(stats),
                                    lgpu_exec_threads(ex));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = "cross_entropy_grad", .op = op, .params = p, .params_size = sizeof *p};
    op_bind(&d, z, zb, true);
    op_bind(&d, target, tb, false);
    op_bind(&d, stats, sb, false);
    uint64_t n = (uint64_t)p->M * p->C; /* one invocation per element */
    if (n > UINT32_MAX)
        return lgpu_set_error(LGPU_ERANGE, "%s: M %u x C %u exceeds 2^32 elements", op, p->M, p->C);
    d.spec[0] = op_wg_size(caps, 256);
    d.n_spec = 1;
    if ((st = op_grid(caps, LGPU_CEIL_DIV(n, d.spec[0]), d.groups, op))) return st;
    return lgpu_exec_dispatch(ex, &d);
}
