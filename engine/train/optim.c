/* AdamW with global-norm clipping (train/optim.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/optim.h"

#define SUMSQ_BLOCK (1u << 16) /* elements per partial sum of squares */

struct lgpu_optim {
    lgpu_lora *lora;
    lgpu_adamw_config cfg;
    uint64_t t;
    lgpu_buf **m, **v;  /* per layer */
    lgpu_buf *partial;  /* sums of squares, SUMSQ_BLOCK elements each */
    size_t n_partial;   /* partials of the largest layer */
    float *partial_host;
};

int lgpu_optim_create(lgpu_lora *lora, const lgpu_adamw_config *cfg, lgpu_optim **out) {
    if (!lora || !cfg || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_optim_create: NULL argument");
    *out = NULL;
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1) || !(cfg->eps > 0) ||
        !(cfg->weight_decay >= 0))
        return lgpu_set_error(LGPU_EINVAL, "AdamW: betas (%g, %g) must be in [0, 1), eps %g > 0, weight decay %g >= 0",
                              cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay);
    lgpu_optim *o = calloc(1, sizeof *o);
    if (!o) return lgpu_set_error(LGPU_ENOMEM, "lgpu_optim_create");
    o->lora = lora;
    o->cfg = *cfg;
    lgpu_dev *dev = lora->model->dev;
    int st = 0;
    if (!(o->m = calloc(lora->n_layers, sizeof *o->m)) || !(o->v = calloc(lora->n_layers, sizeof *o->v))) {
        st = lgpu_set_error(LGPU_ENOMEM, "lgpu_optim_create");
        goto fail;
    }
    for (uint32_t l = 0; l < lora->n_layers; l++) {
        size_t b = lora->layer[l].bytes, np = (b / 4 + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
        if (np > o->n_partial) o->n_partial = np;
        if ((st = lgpu_buf_create(dev, b, b, &o->m[l])) || (st = lgpu_buf_create(dev, b, b, &o->v[l])) ||
            (st = lgpu_buf_fill_zero(o->m[l], 0, b)) || (st = lgpu_buf_fill_zero(o->v[l], 0, b)))
            goto fail;
    }
    size_t pb = o->n_partial * sizeof(float);
    if ((st = lgpu_buf_create(dev, (pb + 255) / 256 * 256, (pb + 255) / 256 * 256, &o->partial))) goto fail;
    if (!(o->partial_host = malloc(pb))) {
        st = lgpu_set_error(LGPU_ENOMEM, "lgpu_optim_create");
        goto fail;
    }
    *out = o;
    return 0;
fail:
    lgpu_optim_destroy(o);
    return st;
}

void lgpu_optim_destroy(lgpu_optim *o) {
    if (!o) return;
    for (uint32_t l = 0; l < o->lora->n_layers; l++) {
        if (o->m) lgpu_buf_destroy(o->m[l]);
        if (o->v) lgpu_buf_destroy(o->v[l]);
    }
    free(o->m);
    free(o->v);
    lgpu_buf_destroy(o->partial);
    free(o->partial_host);
    free(o);
}

/* Sum of squares of every gradient, in double, in a fixed order: layer by
 * layer, each layer's partial sums (lgpu_op_sumsq) added on the host. */
static int grad_sumsq(lgpu_optim *o, lgpu_exec *ex, lgpu_buf *const *grad, double *out) {
    double sum = 0;
    for (uint32_t l = 0; l < o->lora->n_layers; l++) {
        uint32_t n = (uint32_t)(o->lora->layer[l].bytes / 4);
        size_t np = (n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
        lgpu_sumsq_params p = {.n = n, .block = SUMSQ_BLOCK};
        int st = lgpu_exec_begin(ex);
        if (!st) st = lgpu_op_sumsq(ex, &p, lgpu_ref_at(grad[l], 0), lgpu_ref_at(o->partial, 0));
        if (!st) st = lgpu_exec_submit(ex);
        if (!st) st = lgpu_buf_read(o->partial, 0, o->partial_host, np * sizeof(float));
        if (st) return st;
        for (size_t i = 0; i < np; i++) sum += o->partial_host[i];
    }
    *out = sum;
    return 0;
}

int lgpu_optim_step(lgpu_optim *o, lgpu_exec *ex, lgpu_buf *const *grad, float lr, double *grad_norm) {
    if (!o || !ex || !grad) return lgpu_set_error(LGPU_EINVAL, "lgpu_optim_step: NULL argument");
    double ss;
    int st = grad_sumsq(o, ex, grad, &ss);
    if (st) return st;
    double norm = sqrt(ss);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm))
        return lgpu_set_error(LGPU_ERANGE, "training diverged: the gradient norm is %g (lower the learning rate)", norm);
    /* torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), at most 1 */
    double coef = 1.0;
    if (o->cfg.max_grad_norm > 0) {
        coef = o->cfg.max_grad_norm / (norm + 1e-6);
        if (coef > 1.0) coef = 1.0;
    }
    o->t++;
    double t = (double)o->t;
    /* 1 - beta in double, rounded once, as torch does (in float 1 - 0.999f
     * is 1.3e-5 off 0.001) */
    lgpu_adamw_params p = {.lr = lr, .beta1 = o->cfg.beta1, .beta2 = o->cfg.beta2, .eps = o->cfg.eps,
                           .one_minus_beta1 = (float)(1.0 - (double)o->cfg.beta1),
                           .one_minus_beta2 = (float)(1.0 - (double)o->cfg.beta2),
                           .weight_decay = o->cfg.weight_decay,
                           .c1 = (float)(1.0 / (1.0 - pow(o->cfg.beta1, t))),
                           .c2 = (float)(1.0 / sqrt(1.0 - pow(o->cfg.beta2, t))), .grad_scale = (float)coef};
    if ((st = lgpu_exec_begin(ex))) return st;
    for (uint32_t l = 0; l < o->lora->n_layers && !st; l++) {
        p.n = (uint32_t)(o->lora->layer[l].bytes / 4);
        st = lgpu_op_adamw(ex, &p, lgpu_ref_at(o->lora->layer[l].buf, 0), lgpu_ref_at(grad[l], 0),
                           lgpu_ref_at(o->m[l], 0), lgpu_ref_at(o->v[l], 0));
    }
    if (!st) st = lgpu_exec_submit(ex);
    return st;
}

uint64_t lgpu_optim_steps(const lgpu_optim *o) { return o ? o->t : 0; }
void lgpu_optim_set_steps(lgpu_optim *o, uint64_t t) { o->t = t; }

int lgpu_optim_get(const lgpu_optim *o, uint32_t l, void *m, void *v) {
    if (!o || l >= o->lora->n_layers) return lgpu_set_error(LGPU_EINVAL, "lgpu_optim_get: layer %u", l);
    size_t b = o->lora->layer[l].bytes;
    int st = lgpu_buf_read(o->m[l], 0, m, b);
    return st ? st : lgpu_buf_read(o->v[l], 0, v, b);
}

int lgpu_optim_set(lgpu_optim *o, uint32_t l, const void *m, const void *v) {
    if (!o || l >= o->lora->n_layers) return lgpu_set_error(LGPU_EINVAL, "lgpu_optim_set: layer %u", l);
    size_t b = o->lora->layer[l].bytes;
    int st = lgpu_buf_write(o->m[l], 0, m, b);
    return st ? st : lgpu_buf_write(o->v[l], 0, v, b);
}
