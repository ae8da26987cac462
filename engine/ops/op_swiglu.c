/* swiglu: the C twin on the host, shaders/swiglu.comp on Vulkan. */
#include "core/parallel.h"
#include "ops/op_common.h"
#include "ref/ref_ops.h"

typedef struct {
    const float *g, *u;
    float *y;
} swiglu_host;

static void swiglu_range(void *ctx, int64_t begin, int64_t end, int thread) {
    const swiglu_host *h = ctx;
    lgpu_swiglu_params q = {.n = (uint32_t)(end - begin)};
    (void)thread;
    lgpu_ref_swiglu(&q, h->g + begin, h->u + begin, h->y + begin);
}

int lgpu_op_swiglu(lgpu_exec *ex, const lgpu_swiglu_params *p, lgpu_ref g, lgpu_ref u, lgpu_ref y) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "swiglu: NULL exec or params");
    if (p->n == 0) return 0;
    size_t nb = (size_t)p->n * sizeof(float);
    int st;
    if ((st = op_check_ref(g, nb, "swiglu", "g")) || (st = op_check_ref(u, nb, "swiglu", "u")) ||
        (st = op_check_ref(y, nb, "swiglu", "y")))
        return st;
    if (lgpu_exec_is_host(ex)) { /* pointwise: any split gives the same bits */
        swiglu_host h = {lgpu_ref_host(g), lgpu_ref_host(u), lgpu_ref_host(y)};
        lgpu_parallel_for(p->n < OP_HOST_PARALLEL_MIN ? 1 : lgpu_exec_threads(ex), p->n, swiglu_range, &h);
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
