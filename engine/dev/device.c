/* The device interface (device.h, dispatch.h): argument checks, segment
 * planning and the switch between the host backend (device_host.c) and the
 * Vulkan one (device_vk.c, the glue over engine/vk). */
#include <stdlib.h>
#include <string.h>

#include "dev/device_impl.h"

int lgpu_dev_create(const char *selector, lgpu_dev **out) {
    if (!out) return lgpu_set_error(LGPU_EINVAL, "lgpu_dev_create: out is NULL");
    *out = NULL;
    lgpu_dev *dev = calloc(1, sizeof *dev);
    if (!dev) return lgpu_set_error(LGPU_ENOMEM, "lgpu_dev_create");
    char reason[600];
    int st = lgpu_dev_vk_open(dev, selector, reason, sizeof reason);
    if (st) {
        free(dev);
        return st;
    }
    if (!dev->vk) lgpu_host_dev_init(dev, reason); /* "cpu", or no Vulkan at all */
    const char *lim = getenv("LGPU_DEVICE_MEMORY_LIMIT");
    if (lim && *lim) {
        char *end;
        double v = strtod(lim, &end);
        double mul = *end == 'K' || *end == 'k' ? 1024.0 : *end == 'M' || *end == 'm' ? 1048576.0
                     : *end == 'G' || *end == 'g' ? 1073741824.0 : 1.0;
        if (v > 0) dev->mem_limit = (size_t)(v * mul);
    }
    *out = dev;
    return 0;
}

void lgpu_dev_destroy(lgpu_dev *dev) {
    if (!dev) return;
    if (dev->kind == LGPU_DEV_VULKAN) lgpu_dev_vk_close(dev);
    free(dev);
}

lgpu_dev_kind lgpu_dev_kind_of(const lgpu_dev *dev) { return dev->kind; }
const char *lgpu_dev_name(const lgpu_dev *dev) { return dev->name; }
const char *lgpu_dev_reason(const lgpu_dev *dev) { return dev->reason; }
size_t lgpu_dev_max_binding(const lgpu_dev *dev) { return dev->caps.max_binding; }
int lgpu_dev_threads(const lgpu_dev *dev) { return dev->threads; }
const lgpu_dev_caps *lgpu_dev_caps_of(const lgpu_dev *dev) { return &dev->caps; }
size_t lgpu_dev_buffer_bytes(const lgpu_dev *dev) { return __atomic_load_n(&dev->buf_bytes, __ATOMIC_RELAXED); }
size_t lgpu_dev_memory_peak(const lgpu_dev *dev) { return __atomic_load_n(&dev->buf_peak, __ATOMIC_RELAXED); }
void lgpu_dev_memory_peak_reset(lgpu_dev *dev) {
    __atomic_store_n(&dev->buf_peak, lgpu_dev_buffer_bytes(dev), __ATOMIC_RELAXED);
}

/* Counts a new buffer's bytes, refusing it past LGPU_DEVICE_MEMORY_LIMIT. */
static int account(lgpu_dev *dev, size_t size) {
    size_t now = __atomic_add_fetch(&dev->buf_bytes, size, __ATOMIC_RELAXED);
    if (dev->mem_limit && now > dev->mem_limit) {
        __atomic_sub_fetch(&dev->buf_bytes, size, __ATOMIC_RELAXED);
        return lgpu_set_error(LGPU_EDEVMEM, "out of device memory: a buffer of %zu bytes on %s, with %zu of %zu bytes "
                              "in use (LGPU_DEVICE_MEMORY_LIMIT)", size, dev->name, now - size, dev->mem_limit);
    }
    size_t peak = __atomic_load_n(&dev->buf_peak, __ATOMIC_RELAXED);
    while (now > peak && !__atomic_compare_exchange_n(&dev->buf_peak, &peak, now, true, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED)) {
    }
    return 0;
}

void lgpu_dev_memory(const lgpu_dev *dev, size_t *used, size_t *budget) {
    if (dev->kind == LGPU_DEV_VULKAN) {
        lgpu_dev_vk_memory(dev, used, budget);
        return;
    }
    if (used) *used = __atomic_load_n(&((lgpu_dev *)dev)->host_used, __ATOMIC_RELAXED);
    if (budget) *budget = 0;
}

/* ---- buffers ---- */

static size_t gcd(size_t a, size_t b) {
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Segment length: whole units, at most max_binding; also a multiple of
 * LGPU_REF_ALIGN when that fits, so refs inside later segments stay aligned. */
static int plan_segments(lgpu_buf *buf, size_t max_binding) {
    size_t size = buf->size, unit = buf->unit;
    if (size <= max_binding) {
        buf->seg_len = size;
        buf->n_seg = 1;
        return 0;
    }
    if (unit > max_binding)
        return lgpu_set_error(LGPU_EINVAL, "buffer of %zu bytes: unit %zu exceeds the device's max binding %zu", size,
                              unit, max_binding);
    size_t a = unit / gcd(unit, LGPU_REF_ALIGN);
    size_t step = a <= max_binding / LGPU_REF_ALIGN ? a * LGPU_REF_ALIGN : unit; /* lcm(unit, 256) or unit */
    buf->seg_len = max_binding / step * step;
    size_t n = (size + buf->seg_len - 1) / buf->seg_len;
    if (n > 1u << 20) return lgpu_set_error(LGPU_EINVAL, "buffer of %zu bytes: %zu segments", size, n);
    buf->n_seg = (int)n;
    return 0;
}

int lgpu_buf_create(lgpu_dev *dev, size_t size, size_t unit, lgpu_buf **out) {
    if (!out) return lgpu_set_error(LGPU_EINVAL, "lgpu_buf_create: out is NULL");
    *out = NULL;
    if (!dev || !size || !unit)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_buf_create: dev %p, size %zu, unit %zu (need a device, size >= 1, unit >= 1)",
                              (void *)dev, size, unit);
    int st = account(dev, size);
    if (st) return st;
    lgpu_buf *buf = calloc(1, sizeof *buf);
    if (!buf) {
        __atomic_sub_fetch(&dev->buf_bytes, size, __ATOMIC_RELAXED);
        return lgpu_set_error(LGPU_ENOMEM, "buffer of %zu bytes", size);
    }
    buf->dev = dev;
    buf->size = size;
    buf->unit = unit;
    st = plan_segments(buf, dev->caps.max_binding);
    if (st == 0 && !(buf->seg = calloc((size_t)buf->n_seg, sizeof *buf->seg)))
        st = lgpu_set_error(LGPU_ENOMEM, "buffer of %zu bytes: %d segments", size, buf->n_seg);
    if (st == 0) {
        for (int i = 0; i < buf->n_seg; i++) {
            buf->seg[i].start = (size_t)i * buf->seg_len;
            buf->seg[i].len = i + 1 < buf->n_seg ? buf->seg_len : size - buf->seg[i].start;
        }
        st = dev->kind == LGPU_DEV_VULKAN ? lgpu_dev_vk_buf_alloc(buf) : lgpu_host_buf_alloc(buf);
    }
    if (st) {
        __atomic_sub_fetch(&dev->buf_bytes, size, __ATOMIC_RELAXED);
        free(buf->seg);
        free(buf);
        return st;
    }
    *out = buf;
    return 0;
}

void lgpu_buf_destroy(lgpu_buf *buf) {
    if (!buf) return;
    lgpu_buf_destroy(buf->side);
    if (buf->dev->kind == LGPU_DEV_VULKAN) lgpu_dev_vk_buf_free(buf);
    else lgpu_host_buf_free(buf);
    __atomic_sub_fetch(&buf->dev->buf_bytes, buf->size, __ATOMIC_RELAXED);
    free(buf->seg);
    free(buf);
}

void lgpu_buf_set_side(lgpu_buf *buf, lgpu_buf *side, uint32_t tag) {
    if (!buf) return;
    if (side != buf->side) lgpu_buf_destroy(buf->side);
    buf->side = side;
    buf->side_tag = side ? tag : 0;
}

lgpu_buf *lgpu_buf_side(const lgpu_buf *buf) { return buf ? buf->side : NULL; }
uint32_t lgpu_buf_side_tag(const lgpu_buf *buf) { return buf ? buf->side_tag : 0; }

size_t lgpu_buf_size(const lgpu_buf *buf) { return buf->size; }
int lgpu_buf_segments(const lgpu_buf *buf) { return buf->n_seg; }

void lgpu_buf_segment(const lgpu_buf *buf, int i, size_t *start, size_t *len) {
    bool ok = i >= 0 && i < buf->n_seg;
    if (start) *start = ok ? buf->seg[i].start : 0;
    if (len) *len = ok ? buf->seg[i].len : 0;
}

int lgpu_buf_seg_index(const lgpu_buf *buf, size_t off) {
    size_t i = off / buf->seg_len;
    return i < (size_t)buf->n_seg ? (int)i : buf->n_seg - 1;
}

static int check_range(const lgpu_buf *buf, size_t off, size_t n, const void *p, const char *fn) {
    if (!buf) return lgpu_set_error(LGPU_EINVAL, "%s: buffer is NULL", fn);
    if (off > buf->size || n > buf->size - off)
        return lgpu_set_error(LGPU_ERANGE, "%s: bytes [%zu, %zu) of a %zu-byte buffer", fn, off, off + n, buf->size);
    if (n && !p) return lgpu_set_error(LGPU_EINVAL, "%s: host pointer is NULL", fn);
    return 0;
}

int lgpu_buf_write(lgpu_buf *buf, size_t off, const void *src, size_t n) {
    int st = check_range(buf, off, n, src, "lgpu_buf_write");
    if (st || !n) return st;
    if (buf->dev->kind == LGPU_DEV_VULKAN) return lgpu_dev_vk_buf_write(buf, off, src, n);
    memcpy(buf->seg[0].host + off, src, n);
    return 0;
}

int lgpu_buf_read(const lgpu_buf *buf, size_t off, void *dst, size_t n) {
    int st = check_range(buf, off, n, dst, "lgpu_buf_read");
    if (st || !n) return st;
    if (buf->dev->kind == LGPU_DEV_VULKAN) return lgpu_dev_vk_buf_read(buf, off, dst, n);
    memcpy(dst, buf->seg[0].host + off, n);
    return 0;
}

int lgpu_buf_fill_zero(lgpu_buf *buf, size_t off, size_t n) {
    int st = check_range(buf, off, n, "", "lgpu_buf_fill_zero");
    if (st || !n) return st;
    if (buf->dev->kind == LGPU_DEV_VULKAN) return lgpu_dev_vk_buf_fill_zero(buf, off, n);
    memset(buf->seg[0].host + off, 0, n);
    return 0;
}

void *lgpu_buf_host_ptr(lgpu_buf *buf, size_t off) {
    if (!buf || off >= buf->size) return NULL;
    const lgpu_seg *s = &buf->seg[lgpu_buf_seg_index(buf, off)];
    return s->host ? s->host + (off - s->start) : NULL;
}

void *lgpu_ref_host(lgpu_ref r) { return lgpu_buf_host_ptr(r.buf, r.off); }

/* ---- execs ---- */

int lgpu_exec_create(lgpu_dev *dev, lgpu_exec **out) {
    if (!out) return lgpu_set_error(LGPU_EINVAL, "lgpu_exec_create: out is NULL");
    *out = NULL;
    if (!dev) return lgpu_set_error(LGPU_EINVAL, "lgpu_exec_create: device is NULL");
    lgpu_exec *ex = calloc(1, sizeof *ex);
    if (!ex) return lgpu_set_error(LGPU_ENOMEM, "lgpu_exec_create");
    ex->dev = dev;
    if (dev->kind == LGPU_DEV_VULKAN) {
        int st = lgpu_dev_vk_exec_create(ex);
        if (st) {
            free(ex);
            return st;
        }
    }
    *out = ex;
    return 0;
}

void lgpu_exec_destroy(lgpu_exec *ex) {
    if (!ex) return;
    if (ex->dev->kind == LGPU_DEV_VULKAN) lgpu_dev_vk_exec_destroy(ex);
    free(ex);
}

lgpu_dev *lgpu_exec_dev(lgpu_exec *ex) { return ex->dev; }
bool lgpu_exec_is_host(const lgpu_exec *ex) { return ex->dev->kind == LGPU_DEV_CPU; }
int lgpu_exec_threads(const lgpu_exec *ex) { return ex->threads > 0 ? ex->threads : ex->dev->threads; }
void lgpu_exec_set_threads(lgpu_exec *ex, int n) { ex->threads = n > 0 ? n : 0; }

int lgpu_exec_begin(lgpu_exec *ex) {
    if (!ex) return lgpu_set_error(LGPU_EINVAL, "lgpu_exec_begin: exec is NULL");
    ex->recording = false;
    if (ex->dev->kind == LGPU_DEV_VULKAN) {
        int st = lgpu_dev_vk_exec_begin(ex);
        if (st) return st;
    }
    ex->recording = true;
    return 0;
}

int lgpu_exec_submit(lgpu_exec *ex) {
    if (!ex) return lgpu_set_error(LGPU_EINVAL, "lgpu_exec_submit: exec is NULL");
    if (!ex->recording) return lgpu_set_error(LGPU_EINVAL, "lgpu_exec_submit without lgpu_exec_begin");
    ex->recording = false;
    return ex->dev->kind == LGPU_DEV_VULKAN ? lgpu_dev_vk_exec_submit(ex) : 0;
}

int lgpu_exec_dispatch(lgpu_exec *ex, const lgpu_dispatch *d) {
    if (!ex || !d) return lgpu_set_error(LGPU_EINVAL, "lgpu_exec_dispatch: NULL argument");
    if (ex->dev->kind != LGPU_DEV_VULKAN)
        return lgpu_set_error(LGPU_EINVAL, "%s: lgpu_exec_dispatch on the host device (ops run their C twin there)",
                              d->op ? d->op : d->shader ? d->shader : "?");
    if (!ex->recording)
        return lgpu_set_error(LGPU_EINVAL, "%s: lgpu_exec_dispatch outside lgpu_exec_begin/submit",
                              d->op ? d->op : d->shader ? d->shader : "?");
    return lgpu_dev_vk_dispatch(ex, d);
}
