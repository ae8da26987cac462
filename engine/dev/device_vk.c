/* The Vulkan side of the device interface: maps device handles, buffers and
 * execs onto engine/vk (lgpu_vk_dev, one lgpu_vk_seg per segment,
 * lgpu_vk_exec) and resolves each dispatch binding's ref to a segment and an
 * offset inside it, with the range, alignment and texel checks. The only
 * file above engine/vk that calls it. */
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "dev/device_impl.h"
#include "vk/vk.h"

_Static_assert(LGPU_MAX_BINDINGS == LGPU_VK_MAX_BINDINGS, "dispatch binding limits of dev and vk");
_Static_assert(LGPU_MAX_SPEC == LGPU_VK_MAX_SPEC, "specialization constant limits of dev and vk");
_Static_assert(LGPU_TEXEL_BYTES == LGPU_VK_TEXEL_BYTES, "texel size of dev and vk");

/* ---- devices ---- */

int lgpu_dev_vk_open(lgpu_dev *dev, const char *selector, char *reason, size_t reason_len) {
    int st = lgpu_vk_dev_open(selector, &dev->vk, dev->name, sizeof dev->name, reason, reason_len, &dev->caps);
    if (st || !dev->vk) return st;
    dev->kind = LGPU_DEV_VULKAN;
    dev->threads = lgpu_default_threads();
    snprintf(dev->reason, sizeof dev->reason, "%s", reason);
    return 0;
}

void lgpu_dev_vk_close(lgpu_dev *dev) {
    lgpu_vk_dev_destroy(dev->vk);
    dev->vk = NULL;
}

void lgpu_dev_vk_memory(const lgpu_dev *dev, size_t *used, size_t *budget) {
    lgpu_vk_mem_budget(dev->vk, used, budget);
}

/* ---- buffers ---- */

int lgpu_dev_vk_buf_alloc(lgpu_buf *buf) {
    lgpu_vk_dev *vd = buf->dev->vk;
    int st = lgpu_vk_mem_precheck(vd, buf->size);
    if (st) return st;
    lgpu_vk_seg *vs = calloc((size_t)buf->n_seg, sizeof *vs);
    if (!vs) return lgpu_set_error(LGPU_ENOMEM, "buffer of %zu bytes: segment table", buf->size);
    for (int i = 0; i < buf->n_seg; i++) buf->seg[i].vk = &vs[i];
    for (int i = 0; i < buf->n_seg; i++) {
        if ((st = lgpu_vk_seg_create(vd, buf->seg[i].len, &vs[i]))) {
            lgpu_dev_vk_buf_free(buf);
            return st;
        }
        buf->seg[i].host = vs[i].mem.map;
    }
    return 0;
}

void lgpu_dev_vk_buf_free(lgpu_buf *buf) {
    if (!buf->n_seg || !buf->seg[0].vk) return;
    lgpu_vk_seg *vs = buf->seg[0].vk; /* the table: segment i is vs[i] */
    for (int i = 0; i < buf->n_seg; i++) {
        lgpu_vk_seg_destroy(buf->dev->vk, &vs[i]);
        buf->seg[i].vk = NULL;
        buf->seg[i].host = NULL;
    }
    free(vs);
}

typedef enum { COPY_WRITE, COPY_READ, COPY_ZERO } copy_op;

/* Apply op to [off, off+n) segment by segment. */
static int each_segment(const lgpu_buf *buf, size_t off, uint8_t *host, size_t n, copy_op op) {
    lgpu_vk_dev *vd = buf->dev->vk;
    while (n) {
        const lgpu_seg *s = &buf->seg[lgpu_buf_seg_index(buf, off)];
        size_t in = off - s->start, k = s->len - in < n ? s->len - in : n;
        int st = op == COPY_WRITE  ? lgpu_vk_seg_write(vd, s->vk, in, host, k)
                 : op == COPY_READ ? lgpu_vk_seg_read(vd, s->vk, in, host, k)
                                   : lgpu_vk_seg_fill_zero(vd, s->vk, in, k);
        if (st) return st;
        off += k;
        n -= k;
        if (host) host += k;
    }
    return 0;
}

int lgpu_dev_vk_buf_write(lgpu_buf *buf, size_t off, const void *src, size_t n) {
    return each_segment(buf, off, (uint8_t *)(uintptr_t)src, n, COPY_WRITE);
}

int lgpu_dev_vk_buf_read(const lgpu_buf *buf, size_t off, void *dst, size_t n) {
    return each_segment(buf, off, dst, n, COPY_READ);
}

int lgpu_dev_vk_buf_fill_zero(lgpu_buf *buf, size_t off, size_t n) {
    return each_segment(buf, off, NULL, n, COPY_ZERO);
}

bool lgpu_texel_viewable(const lgpu_dev *dev, lgpu_ref r, size_t size) {
    const lgpu_dev_caps *c = &dev->caps;
    if (dev->kind != LGPU_DEV_VULKAN || !c->texel_buffers || !r.buf || r.buf->dev != dev || r.off >= r.buf->size)
        return false;
    const lgpu_seg *s = &r.buf->seg[lgpu_buf_seg_index(r.buf, r.off)];
    size_t in = r.off - s->start, align = c->min_texel_align ? c->min_texel_align : 1;
    if (in % align || size > s->len - in) return false;
    return (size + LGPU_TEXEL_BYTES - 1) / LGPU_TEXEL_BYTES <= lgpu_vk_texel_view_elems(c, s->vk, in);
}

/* ---- execs ---- */

int lgpu_dev_vk_exec_create(lgpu_exec *ex) { return lgpu_vk_exec_create(ex->dev->vk, &ex->vk); }

void lgpu_dev_vk_exec_destroy(lgpu_exec *ex) {
    lgpu_vk_exec_destroy(ex->vk);
    ex->vk = NULL;
}

int lgpu_dev_vk_exec_begin(lgpu_exec *ex) { return lgpu_vk_exec_begin(ex->vk); }
int lgpu_dev_vk_exec_submit(lgpu_exec *ex) { return lgpu_vk_exec_submit(ex->vk); }

/* Binding i of d as a segment, the offset inside it and the range. */
static int resolve(const lgpu_exec *ex, const lgpu_dispatch *d, int i, lgpu_vk_binding *out) {
    const lgpu_binding *b = &d->bind[i];
    const char *op = d->op ? d->op : d->shader;
    const lgpu_buf *buf = b->ref.buf;
    if (!buf) return lgpu_set_error(LGPU_EINVAL, "%s: binding %d has no buffer", op, i);
    if (buf->dev != ex->dev) return lgpu_set_error(LGPU_EINVAL, "%s: binding %d is on another device", op, i);
    if (b->ref.off >= buf->size)
        return lgpu_set_error(LGPU_EINVAL, "%s: binding %d offset %zu is past the buffer end (%zu bytes)", op, i,
                              b->ref.off, buf->size);
    const lgpu_seg *s = &buf->seg[lgpu_buf_seg_index(buf, b->ref.off)];
    size_t in = b->ref.off - s->start, range = b->size ? b->size : s->len - in;
    if (range > s->len - in)
        return lgpu_set_error(LGPU_EINVAL,
                              "%s: binding %d [%zu, +%zu) crosses the end of its segment at %zu (segments of %zu bytes)",
                              op, i, b->ref.off, range, s->start + s->len, buf->seg_len);
    const lgpu_dev_caps *caps = &ex->dev->caps;
    size_t align = b->texel ? caps->min_texel_align : caps->min_storage_align;
    if (!align) align = 1;
    if (in % align)
        return lgpu_set_error(LGPU_EINVAL, "%s: binding %d offset %zu is not a multiple of %zu", op, i, b->ref.off,
                              align);
    if (b->texel) {
        size_t tb = LGPU_TEXEL_BYTES, n = lgpu_vk_texel_view_elems(caps, s->vk, in);
        if (b->write || !caps->texel_buffers || (range + tb - 1) / tb > n)
            return lgpu_set_error(LGPU_EINVAL, "%s: binding %d [%zu, +%zu) cannot be a %stexel buffer (see "
                                  "lgpu_texel_viewable)", op, i, b->ref.off, range, b->write ? "written " : "");
    }
    *out = (lgpu_vk_binding){s->vk, in, range, b->write, b->texel};
    return 0;
}

int lgpu_dev_vk_dispatch(lgpu_exec *ex, const lgpu_dispatch *d) {
    lgpu_vk_dispatch vkd = {
        .shader = d->shader,
        .op = d->op,
        .params = d->params,
        .params_size = d->params_size,
        .n_bind = d->n_bind,
        .n_spec = d->n_spec,
        .groups = {d->groups[0], d->groups[1], d->groups[2]},
    };
    memcpy(vkd.spec, d->spec, sizeof vkd.spec);
    /* the checks without bindings first, and an empty grid records nothing (as unresolved) */
    int st = lgpu_vk_dispatch_check(ex->dev->vk, &vkd);
    if (st) return st;
    if (!d->groups[0] || !d->groups[1] || !d->groups[2]) return 0;
    for (int i = 0; i < d->n_bind; i++)
        if ((st = resolve(ex, d, i, &vkd.bind[i]))) return st;
    return lgpu_vk_exec_dispatch(ex->vk, &vkd);
}
