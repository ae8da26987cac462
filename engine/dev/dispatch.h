/* What the op glue (engine/ops/op_*.c) uses to run an op on either device:
 * capabilities, host pointers and Vulkan dispatches. Pattern for every op:
 *   if (lgpu_exec_is_host(ex)) { call the C twin on lgpu_ref_host() pointers; return 0; }
 *   else { fill lgpu_binding[]; return lgpu_exec_dispatch(ex, &d); } */
#ifndef LGPU_DEV_DISPATCH_H
#define LGPU_DEV_DISPATCH_H

#include "dev/device.h"

#define LGPU_CEIL_DIV(a, b) (((a) + (b) - 1) / (b))


/* Host pointer for a ref on the host device (or host-visible Vulkan memory). */
void *lgpu_ref_host(lgpu_ref r);

/* One binding of a dispatch. `size` is the byte range the shader may touch
 * from ref.off (0: to the end of ref's segment); it must not cross a segment
 * boundary. `write` marks outputs (for barrier tracking). `texel` (read-only)
 * binds a uniform texel buffer (GLSL usamplerBuffer, R32G32B32A32_UINT
 * texels) instead of a storage buffer; the view covers at least `size`
 * rounded up to 16 bytes and may extend further into the segment. Only for
 * refs lgpu_texel_viewable() accepts. Zero-initialised bindings are storage
 * buffers. */
typedef struct lgpu_binding {
    lgpu_ref ref;
    size_t size;
    bool write;
    bool texel;
} lgpu_binding;

#define LGPU_TEXEL_BYTES 16

/* Whether bytes [r.off, r.off + size) can be bound with `texel`: the device
 * supports texel buffers, the offset inside r's segment is a multiple of
 * minTexelBufferOffsetAlignment, and size rounded up to 16 bytes stays inside
 * the segment's allocation and maxTexelBufferElements. Callers fall back to a
 * storage-buffer shader when it is false. */
bool lgpu_texel_viewable(const lgpu_dev *dev, lgpu_ref r, size_t size);

#define LGPU_MAX_BINDINGS 8
#define LGPU_MAX_SPEC 10

typedef struct lgpu_dispatch {
    const char *shader;        /* embedded blob name (shaders/meson.build) */
    const char *op;            /* name for the LGPU_PROFILE table, e.g. "matmul_q4_0" */
    const void *params;        /* push constants */
    uint32_t params_size;
    lgpu_binding bind[LGPU_MAX_BINDINGS];
    int n_bind;
    uint32_t spec[LGPU_MAX_SPEC]; /* specialization constants, constant_id 0..n_spec-1 */
    int n_spec;
    uint32_t groups[3];         /* workgroup counts (each <= max_wg_count) */
} lgpu_dispatch;

/* Record a dispatch (pipeline created and cached on first use; a barrier is
 * inserted first only if a binding depends on an earlier unbarriered write). */
int lgpu_exec_dispatch(lgpu_exec *ex, const lgpu_dispatch *d);

#endif
