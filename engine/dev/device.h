/* Device memory and command streams, the engine's side of the device
 * interface (the device handle itself is public: lgpu/device.h). One
 * interface, two implementations: the host for the C path (device_host.c),
 * and Vulkan (device_vk.c, the glue over engine/vk, the floor below).
 *
 * Lifetimes: lgpu_dev owns everything created from it; destroy buffers and
 * execs before the device. destroy(NULL) is a no-op everywhere. */
#ifndef LGPU_DEV_DEVICE_H
#define LGPU_DEV_DEVICE_H

#include "lgpu/device.h"

typedef struct lgpu_buf lgpu_buf;   /* device memory, possibly in several segments */
typedef struct lgpu_exec lgpu_exec; /* a command stream recorded then submitted */

/* ---- buffers ----
 * A buffer of `size` bytes. `unit` (>= 1) is the granule that must never
 * straddle a segment boundary (a weight row, a KV block...): if size exceeds
 * the device's max binding, the buffer is split into segments each holding a
 * whole number of units. Fails with LGPU_EDEVMEM (and a detail naming the
 * size and the free memory) when the device is full. */
int lgpu_buf_create(lgpu_dev *dev, size_t size, size_t unit, lgpu_buf **out);
void lgpu_buf_destroy(lgpu_buf *buf);
size_t lgpu_buf_size(const lgpu_buf *buf);
/* Number of segments and the byte range [*start, *start + *len) of segment i. */
int lgpu_buf_segments(const lgpu_buf *buf);
void lgpu_buf_segment(const lgpu_buf *buf, int i, size_t *start, size_t *len);
/* Synchronous host <-> device copies (waits for pending work on the buffer). */
int lgpu_buf_write(lgpu_buf *buf, size_t off, const void *src, size_t n);
int lgpu_buf_read(const lgpu_buf *buf, size_t off, void *dst, size_t n);
int lgpu_buf_fill_zero(lgpu_buf *buf, size_t off, size_t n);
/* Host pointer to the bytes at `off`, or NULL when the memory is not host
 * visible (the host device always returns one). */
void *lgpu_buf_host_ptr(lgpu_buf *buf, size_t off);

/* A buffer's side buffer: a small table that belongs to the tensor in `buf`
 * and that ops read along with it (NF4's per-tensor scales, quant/nf4.h),
 * so an op's operand stays one ref; `tag` is a word of it the op layer
 * needs on the host without reading device memory (NF4: the compute type,
 * which picks a shader specialization). set_side hands `side` over: it is
 * destroyed with `buf` (a previous side buffer at once; NULL removes it). */
void lgpu_buf_set_side(lgpu_buf *buf, lgpu_buf *side, uint32_t tag);
lgpu_buf *lgpu_buf_side(const lgpu_buf *buf);
uint32_t lgpu_buf_side_tag(const lgpu_buf *buf);

/* A byte position inside a buffer: what ops take as operands. */
typedef struct lgpu_ref {
    lgpu_buf *buf;
    size_t off; /* bytes; must be a multiple of LGPU_REF_ALIGN */
} lgpu_ref;
#define LGPU_REF_ALIGN 256

static inline lgpu_ref lgpu_ref_at(lgpu_buf *buf, size_t off) {
    lgpu_ref r = {buf, off};
    return r;
}

/* ---- command streams ----
 * Ops are recorded into an exec; on the host they run at once, on Vulkan they
 * are recorded into a command buffer (barriers inserted only where a later op
 * depends on an earlier one) and run at submit. */
int lgpu_exec_create(lgpu_dev *dev, lgpu_exec **out);
void lgpu_exec_destroy(lgpu_exec *ex);
lgpu_dev *lgpu_exec_dev(lgpu_exec *ex);
int lgpu_exec_begin(lgpu_exec *ex);
/* Submit what was recorded and wait for completion. */
int lgpu_exec_submit(lgpu_exec *ex);
/* Whether the exec's device is the host (ops run their C twins at once). */
bool lgpu_exec_is_host(const lgpu_exec *ex);
/* Host threads this exec's ops use. */
int lgpu_exec_threads(const lgpu_exec *ex);
/* Host threads for this exec's ops from now on (<= 0: the device's count);
 * no effect on Vulkan devices. */
void lgpu_exec_set_threads(lgpu_exec *ex, int n);

#endif
