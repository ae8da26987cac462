/* Internal layout of the device handles shared by the dispatcher
 * (ops/device.c), the host backend (ops/device_host.c) and the Vulkan backend
 * (engine/vk). Not part of the public surface: ops use device.h and
 * op_internal.h only. */
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
};

struct lgpu_exec {
    lgpu_dev *dev;
    int threads; /* host threads for this exec's ops (0: the device's) */
    bool recording;
    struct lgpu_vk_exec *vk;
};

/* Segment of the buffer containing byte `off` (off < size). */
int lgpu_buf_seg_index(const lgpu_buf *buf, size_t off);

/* Host backend (ops/device_host.c). */
void lgpu_host_dev_init(lgpu_dev *dev, const char *reason);
int lgpu_host_buf_alloc(lgpu_buf *buf);
void lgpu_host_buf_free(lgpu_buf *buf);

#endif
