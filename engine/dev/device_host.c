/* The host ("cpu") backend: buffers are 64-byte aligned host memory in one
 * segment, execs run ops immediately (op glue calls the C twins). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "dev/device_impl.h"

void lgpu_host_dev_init(lgpu_dev *dev, const char *reason) {
    dev->kind = LGPU_DEV_CPU;
    dev->vk = NULL;
    snprintf(dev->name, sizeof dev->name, "cpu");
    snprintf(dev->reason, sizeof dev->reason, "%s", reason);
    dev->threads = lgpu_default_threads();
    memset(&dev->caps, 0, sizeof dev->caps);
    for (int i = 0; i < 3; i++) dev->caps.max_wg_count[i] = UINT32_MAX;
    dev->caps.max_wg_invocations = UINT32_MAX;
    dev->caps.max_binding = SIZE_MAX;
    dev->caps.min_storage_align = 1;
}

int lgpu_host_buf_alloc(lgpu_buf *buf) {
    size_t n = (buf->size + 63) & ~(size_t)63;
    if (n < buf->size) return lgpu_set_error(LGPU_EDEVMEM, "host buffer of %zu bytes: size overflow", buf->size);
    uint8_t *p = aligned_alloc(64, n);
    if (!p) return lgpu_set_error(LGPU_EDEVMEM, "out of host memory for a buffer of %zu bytes (%.1f MiB)", buf->size,
                                  buf->size / 1048576.0);
    buf->seg[0].host = p;
    __atomic_add_fetch(&buf->dev->host_used, n, __ATOMIC_RELAXED);
    return 0;
}

void lgpu_host_buf_free(lgpu_buf *buf) {
    if (!buf->seg[0].host) return;
    free(buf->seg[0].host);
    buf->seg[0].host = NULL;
    __atomic_sub_fetch(&buf->dev->host_used, (buf->size + 63) & ~(size_t)63, __ATOMIC_RELAXED);
}
