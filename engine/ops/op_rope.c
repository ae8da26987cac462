/* rope and its backward: the C twins on the host, shaders/rope.comp on
 * Vulkan (the backward sets its specialization constant INVERSE: the same
 * rotation by -a, with the same angle reduction). */
#include "ops/op_common.h"
#include "ref/ref_ops.h"

static int rope(lgpu_exec *ex, const lgpu_rope_params *p, lgpu_ref x, lgpu_ref pos, lgpu_ref inv_freq, bool inverse) {
    const char *op = inverse ? "rope_backward" : "rope", *xn = inverse ? "dx" : "x";
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "%s: NULL exec or params", op);
    if (p->T == 0 || p->n_heads == 0) return 0;
    if (p->head_dim == 0 || p->head_dim % 2)
        return lgpu_set_error(LGPU_EINVAL, "%s: head_dim %u is not a positive even number", op, p->head_dim);
    uint64_t row = (uint64_t)p->n_heads * p->head_dim;
    if (p->T > 1 && p->token_stride < row)
        return lgpu_set_error(LGPU_EINVAL, "%s: token_stride %u < n_heads*head_dim %llu (tokens overlap)", op,
                              p->token_stride, (unsigned long long)row);
    size_t xb = ((size_t)(p->T - 1) * p->token_stride + row) * sizeof(float);
    size_t pb = (size_t)p->T * sizeof(int32_t), fb = (size_t)p->head_dim / 2 * sizeof(float);
    int st;
    if ((st = op_check_ref(x, xb, op, xn)) || (st = op_check_ref(pos, pb, op, "pos")) ||
        (st = op_check_ref(inv_freq, fb, op, "inv_freq")))
        return st;
    if (lgpu_exec_is_host(ex)) {
        (inverse ? lgpu_ref_rope_backward : lgpu_ref_rope)(p, lgpu_ref_host(x), lgpu_ref_host(pos),
                                                           lgpu_ref_host(inv_freq));
        return 0;
    }
    const lgpu_dev_caps *caps = op_caps(ex);
    lgpu_dispatch d = {.shader = "rope", .op = op, .params = p, .params_size = sizeof *p};
    op_bind(&d, x, xb, true);
    op_bind(&d, pos, pb, false);
    op_bind(&d, inv_freq, fb, false);
    d.spec[0] = op_wg_size(caps, 256);
    d.spec[1] = inverse; /* INVERSE */
    d.n_spec = 2;
    uint64_t n = (uint64_t)p->T * p->n_heads * (p->head_dim / 2);
    if (n > UINT32_MAX)
        return lgpu_set_error(LGPU_ERANGE, "%s: %llu rotations exceed 2^32", op, (unsigned long long)n);
    if ((st = op_grid(caps, LGPU_CEIL_DIV(n, d.spec[0]), d.groups, op))) return st;
    return lgpu_exec_dispatch(ex, &d);
}

int lgpu_op_rope(lgpu_exec *ex, const lgpu_rope_params *p, lgpu_ref x, lgpu_ref pos, lgpu_ref inv_freq) {
    return rope(ex, p, x, pos, inv_freq, false);
}

int lgpu_op_rope_backward(lgpu_exec *ex, const lgpu_rope_params *p, lgpu_ref dx, lgpu_ref pos, lgpu_ref inv_freq) {
    return rope(ex, p, dx, pos, inv_freq, true);
}
