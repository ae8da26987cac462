/* Internal layout of the device handles, shared by the interface
 * (dev/device.c) and its two backends: the host (dev/device_host.c) and the
 * Vulkan glue (dev/device_vk.c, over engine/vk). Not part of the public
 * surface: ops use dev/device.h and dev/dispatch.h only. */
#ifndef LGPU_DEV_DEVICE_IMPL_H
#define LGPU_DEV_DEVICE_IMPL_H

#include "dev/dispatch.h"

struct lgpu_vk_dev;
struct lgpu_vk_seg;
struct lgpu_vk_exec;

struct lgpu_dev {
    lgpu_dev_kind kind;
    char name[256];
    char reason[512];
    lgpu_dev_caps caps;
    int threads;
    size_t host_used;       /* host backend: bytes in buffers */
    /* Every backend: bytes of live buffers (their requested sizes), the
     * most there have been at once (reset by lgpu_dev_memory_peak_reset),
     * and LGPU_DEVICE_MEMORY_LIMIT (0: none). */
    size_t buf_bytes, buf_peak, mem_limit;
    struct lgpu_vk_dev *vk; /* kind == LGPU_DEV_VULKAN */
};

/* One segment: bytes [start, start + len) of the buffer. */
typedef struct lgpu_seg {
    size_t start, len;
    uint8_t *host;          /* host backend memory, or the persistent map of
                               host-visible Vulkan memory; NULL otherwise */
    struct lgpu_vk_seg *vk; /* Vulkan backend: the VkBuffer and its memory */
} lgpu_seg;

struct lgpu_buf {
    lgpu_dev *dev;
    size_t size, unit;
    size_t seg_len; /* every segment but the last has this length */
    int n_seg;
    lgpu_seg *seg;
    lgpu_buf *side; /* owned: lgpu_buf_set_side */
    uint32_t side_tag;
};

struct lgpu_exec {
    lgpu_dev *dev;
    int threads; /* host threads for this exec's ops (0: the device's) */
    bool recording;
    struct lgpu_vk_exec *vk;
};

/* Segment of the buffer containing byte `off` (off < size). */
int lgpu_buf_seg_index(const lgpu_buf *buf, size_t off);

/* Host backend (dev/device_host.c). */
void lgpu_host_dev_init(lgpu_dev *dev, const char *reason);
int lgpu_host_buf_alloc(lgpu_buf *buf);
void lgpu_host_buf_free(lgpu_buf *buf);

/* Vulkan backend (dev/device_vk.c): the only caller of engine/vk. device.c
 * has checked the arguments (ranges inside the buffer, exec recording). */
/* Open the device `selector` names (lgpu_dev_create's rules, kept in
 * engine/vk so that `lgpu info` shares them): fills dev as a Vulkan device, or
 * leaves dev->vk NULL when the choice is the host, `reason` saying why. */
int lgpu_dev_vk_open(lgpu_dev *dev, const char *selector, char *reason, size_t reason_len);
void lgpu_dev_vk_close(lgpu_dev *dev);
void lgpu_dev_vk_memory(const lgpu_dev *dev, size_t *used, size_t *budget);
/* One lgpu_vk_seg per planned segment (buf->seg[i].start/len set). */
int lgpu_dev_vk_buf_alloc(lgpu_buf *buf);
void lgpu_dev_vk_buf_free(lgpu_buf *buf);
int lgpu_dev_vk_buf_write(lgpu_buf *buf, size_t off, const void *src, size_t n);
int lgpu_dev_vk_buf_read(const lgpu_buf *buf, size_t off, void *dst, size_t n);
int lgpu_dev_vk_buf_fill_zero(lgpu_buf *buf, size_t off, size_t n);
int lgpu_dev_vk_exec_create(lgpu_exec *ex);
void lgpu_dev_vk_exec_destroy(lgpu_exec *ex);
int lgpu_dev_vk_exec_begin(lgpu_exec *ex);
int lgpu_dev_vk_exec_submit(lgpu_exec *ex);
/* Resolve each binding's ref to a segment and an offset inside it (with the
 * range, alignment and texel checks), then record lgpu_vk_exec_dispatch. */
int lgpu_dev_vk_dispatch(lgpu_exec *ex, const lgpu_dispatch *d);

#endif
