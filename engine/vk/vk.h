/* Vulkan backend internals (engine/vk). The rest of the engine sees only
 * ops/device.h and ops/op_internal.h; this header is for engine/vk itself, the
 * dispatcher in ops/device.c, `lgpu info` and white-box tests.
 *
 * Threading: a device may be used from several threads (queue submission,
 * allocation, pipeline creation and staging copies take the device's locks);
 * one exec must be recorded by one thread at a time. */
#ifndef LGPU_VK_VK_H
#define LGPU_VK_VK_H

#include <pthread.h>
#include <stdio.h>
#include <vulkan/vulkan.h>

#include "dev/device_impl.h"

/* KHR cooperative matrices: only when the shaders were built for them
 * (shaders/meson.build defines LGPU_HAVE_KHR_COOPMAT) and the Vulkan headers
 * know the extension. */
#if defined(LGPU_HAVE_KHR_COOPMAT) && defined(VK_KHR_cooperative_matrix)
#define LGPU_VK_KHR_COOPMAT 1
#else
#define LGPU_VK_KHR_COOPMAT 0
#endif

/* ---- VkResult checks ---- */
const char *lgpu_vk_result_name(VkResult r);
/* Logs "<what> failed: VK_ERROR_... (file:line)", records the detail and
 * returns LGPU_EDEVMEM for out-of-device-memory, LGPU_ENOMEM for
 * out-of-host-memory, LGPU_EVULKAN otherwise. */
int lgpu_vk_fail(VkResult r, const char *what, const char *file, int line);
#define LGPU_VK_CHECK(call)                                                             \
    do {                                                                                \
        VkResult vr_ = (call);                                                          \
        if (vr_ != VK_SUCCESS) return lgpu_vk_fail(vr_, #call, __FILE__, __LINE__);      \
    } while (0)
/* Same, but stores the status in `st` and jumps to `label` (for cleanup). */
#define LGPU_VK_TRY(st, call, label)                                                    \
    do {                                                                                \
        VkResult vr_ = (call);                                                          \
        if (vr_ != VK_SUCCESS) {                                                        \
            (st) = lgpu_vk_fail(vr_, #call, __FILE__, __LINE__);                        \
            goto label;                                                                 \
        }                                                                               \
    } while (0)

/* ---- physical devices (shared by device open and `lgpu info`) ---- */
typedef struct lgpu_vk_heap {
    uint64_t size;
    uint64_t budget, usage; /* VK_EXT_memory_budget; 0 when unavailable */
    bool device_local;
} lgpu_vk_heap;

typedef struct lgpu_vk_devinfo {
    VkPhysicalDevice phys;
    int index;
    char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
    VkPhysicalDeviceType type;
    uint32_t api_version, driver_version, vendor_id, device_id;
    char driver_name[VK_MAX_DRIVER_NAME_SIZE];
    char driver_info[VK_MAX_DRIVER_INFO_SIZE];
    uint8_t cache_uuid[VK_UUID_SIZE];
    int n_heaps;
    lgpu_vk_heap heaps[VK_MAX_MEMORY_HEAPS];
    bool has_budget; /* VK_EXT_memory_budget */
    uint64_t max_alloc_size;
    float timestamp_period;
    /* usable: Vulkan >= 1.2 and a compute queue */
    bool usable;
    char unusable_why[128];
    uint32_t compute_family;
    uint32_t timestamp_bits; /* of the compute family */
    lgpu_dev_caps caps;
    /* features to enable at device creation (all supported) */
    bool f_int16, f_subgroup_ext_types, f_memory_model, f_memory_model_device;
    bool f_storage16_uniform, f_storage8_uniform;
    bool f_size_control, f_full_subgroups, size_control_ext; /* ext: VK_EXT_subgroup_size_control (pre-1.3) */
    bool f_portability_subset; /* VK_KHR_portability_subset must be enabled */
    bool ext_coopmat_nv, ext_coopmat_khr; /* enable the extension (feature + useful shapes present) */
} lgpu_vk_devinfo;

typedef struct lgpu_vk_devlist {
    int n;
    lgpu_vk_devinfo *dev;
    char error[256]; /* why there are no devices (instance failure), or "" */
} lgpu_vk_devlist;

/* Instance with validation per LGPU_VK_VALIDATE and a debug messenger. */
typedef struct lgpu_vk_instance {
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger;
    bool portability;
} lgpu_vk_instance;
int lgpu_vk_instance_create(lgpu_vk_instance *vi, char *err, size_t err_len);
void lgpu_vk_instance_destroy(lgpu_vk_instance *vi);

/* Enumerate and describe the physical devices of an instance. */
int lgpu_vk_enumerate(VkInstance inst, lgpu_vk_devlist *out);
void lgpu_vk_devlist_destroy(lgpu_vk_devlist *l);
/* Choose per a selector (NULL / "auto": automatic). Returns the index in the
 * list, or LGPU_ENODEV with a detail listing the devices. `reason` gets why. */
int lgpu_vk_select(const lgpu_vk_devlist *l, const char *selector, const char *origin, char *reason,
                   size_t reason_len);
/* "0: llvmpipe (...) [cpu]; 1: ..." */
void lgpu_vk_devlist_summary(const lgpu_vk_devlist *l, char *out, size_t len);
const char *lgpu_vk_type_name(VkPhysicalDeviceType t);
/* `lgpu info`: every device in detail, then which one `selector` opens and why. */
int lgpu_vk_print_info(FILE *f, const char *selector);

/* ---- memory ---- */
typedef struct lgpu_vk_block lgpu_vk_block;
typedef struct lgpu_vk_alloc {
    lgpu_vk_block *block;
    VkDeviceMemory mem;
    VkDeviceSize off, size;
    uint8_t *map; /* host pointer of `off` when mapped, else NULL */
} lgpu_vk_alloc;

typedef struct lgpu_vk_memory {
    pthread_mutex_t lock;
    VkPhysicalDeviceMemoryProperties props;
    lgpu_vk_block *blocks;
    VkDeviceSize block_size;
    VkDeviceSize heap_used[VK_MAX_MEMORY_HEAPS]; /* VkDeviceMemory bytes we hold */
    int main_heap;                                /* the device-local heap buffers go to */
    bool prefer_host_visible;                     /* UMA / CPU devices */
} lgpu_vk_memory;

/* Descriptor set layout + pipeline layout for one texel-binding mask (bit i:
 * binding i is a uniform texel buffer, else a storage buffer). */
typedef struct lgpu_vk_layout {
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
} lgpu_vk_layout;

typedef struct lgpu_vk_pipeline lgpu_vk_pipeline;
#define LGPU_VK_PIPE_BUCKETS 64

typedef struct lgpu_vk_prof_entry {
    char op[64];
    uint64_t calls;
    double total_ns;
} lgpu_vk_prof_entry;

typedef struct lgpu_vk_dev {
    lgpu_vk_instance vi;
    lgpu_vk_devinfo info;
    VkDevice dev;
    VkQueue queue;
    pthread_mutex_t queue_lock;
    bool force_staging; /* LGPU_VK_FORCE_STAGING=1: never map (tests the staging path) */

    lgpu_vk_memory mem;

    /* synchronous transfers: staging buffer + command buffer */
    pthread_mutex_t xfer_lock;
    VkCommandPool xfer_pool;
    VkCommandBuffer xfer_cmd;
    VkFence xfer_fence;
    VkBuffer staging;
    lgpu_vk_alloc staging_mem;

    /* pipelines */
    pthread_mutex_t pipe_lock;
    lgpu_vk_layout layouts[1 << LGPU_MAX_BINDINGS]; /* by texel mask, created on first use (pipe_lock) */
    VkPipelineCache cache;
    char cache_path[1024];
    bool cache_dirty;
    size_t cache_loaded; /* bytes accepted from the cache file at open (0: none or rejected) */
    lgpu_vk_pipeline *pipes[LGPU_VK_PIPE_BUCKETS];
    VkBuffer dummy; /* bound to unused binding slots */
    lgpu_vk_alloc dummy_mem;

    pthread_mutex_t view_lock; /* texel buffer view caches of all segments */

    /* LGPU_PROFILE=1 */
    bool profile;
    uint64_t ts_mask;
    pthread_mutex_t prof_lock;
    lgpu_vk_prof_entry *prof;
    int n_prof, cap_prof;
} lgpu_vk_dev;

int lgpu_vk_memory_init(lgpu_vk_dev *vd);
void lgpu_vk_memory_destroy(lgpu_vk_dev *vd);
/* Sub-allocate memory for `req`; host_visible: must be mappable (staging).
 * Fails with LGPU_EDEVMEM and a detail naming the size and the free budget. */
int lgpu_vk_mem_alloc(lgpu_vk_dev *vd, const VkMemoryRequirements *req, bool host_visible, lgpu_vk_alloc *out);
void lgpu_vk_mem_free(lgpu_vk_dev *vd, lgpu_vk_alloc *a);
/* LGPU_EDEVMEM (with numbers) if `size` more bytes cannot fit the main heap's budget. */
int lgpu_vk_mem_precheck(lgpu_vk_dev *vd, size_t size);
/* Budget of the main heap (VK_EXT_memory_budget, else its size) and our usage. */
void lgpu_vk_mem_budget(lgpu_vk_dev *vd, size_t *used, size_t *budget);
/* A buffer bound to fresh memory (storage, transfer src/dst and, where supported, uniform texel usage). */
int lgpu_vk_buffer_create(lgpu_vk_dev *vd, VkDeviceSize size, bool host_visible, VkBuffer *buf, lgpu_vk_alloc *mem);
void lgpu_vk_buffer_destroy(lgpu_vk_dev *vd, VkBuffer buf, lgpu_vk_alloc *mem);

/* A uniform texel buffer view of bytes [off, off + range) of a segment. */
typedef struct lgpu_vk_view {
    VkDeviceSize off, range;
    VkBufferView view;
} lgpu_vk_view;

struct lgpu_vk_seg {
    VkBuffer buf;
    lgpu_vk_alloc mem;
    VkDeviceSize size;   /* of the VkBuffer: the segment rounded up to 16 bytes (whole texels) */
    lgpu_vk_view *views; /* created on first use, destroyed with the buffer (vd->view_lock) */
    int n_views, cap_views;
};

/* Texels in the view a texel binding at byte `in` of segment `s` gets: one
 * view per offset, from `in` to the end of the allocation in whole texels (so
 * bindings at one offset with other sizes share it), at most
 * maxTexelBufferElements. A binding of `size` bytes fits when
 * ceil(size / 16) <= this (lgpu_texel_viewable, vk_exec.c resolve). */
static inline size_t lgpu_vk_texel_view_elems(const lgpu_dev_caps *c, const struct lgpu_vk_seg *s, size_t in) {
    size_t n = (size_t)(s->size - in) / LGPU_TEXEL_BYTES;
    return n < c->max_texel_elems ? n : c->max_texel_elems;
}

/* ---- device (vk_device.c) ---- */
/* Open per selector. On failure returns LGPU_ENODEV; *no_vulkan tells that no
 * usable Vulkan device exists at all (then `why` says why) so the caller may
 * fall back to the host. */
int lgpu_vk_dev_create(lgpu_dev *dev, const char *selector, const char *origin, bool *no_vulkan, char *why,
                     size_t why_len);
void lgpu_vk_dev_destroy(lgpu_dev *dev);
/* Index of the physical device in the enumeration. */
int lgpu_vk_dev_index(const lgpu_dev *dev);

/* ---- buffers (vk_buffer.c) ---- */
int lgpu_vk_buf_alloc(lgpu_buf *buf);
void lgpu_vk_buf_free(lgpu_buf *buf);
int lgpu_vk_buf_write(lgpu_buf *buf, size_t off, const void *src, size_t n);
int lgpu_vk_buf_read(const lgpu_buf *buf, size_t off, void *dst, size_t n);
int lgpu_vk_buf_fill_zero(lgpu_buf *buf, size_t off, size_t n);
/* Texel view of segment `seg` bytes [off, off + range) (off a multiple of
 * minTexelBufferOffsetAlignment, range of 16-byte texels), cached on the
 * segment. */
int lgpu_vk_texel_view(lgpu_vk_dev *vd, struct lgpu_vk_seg *seg, VkDeviceSize off, VkDeviceSize range,
                       VkBufferView *out);

/* ---- pipelines (vk_pipeline.c) ---- */
int lgpu_vk_pipelines_init(lgpu_vk_dev *vd);
void lgpu_vk_pipelines_destroy(lgpu_vk_dev *vd);
/* Pipeline for (shader, spec constants, texel mask) and the layout it was made with. */
int lgpu_vk_pipeline_get(lgpu_vk_dev *vd, const char *shader, const uint32_t *spec, int n_spec, uint32_t texel_mask,
                         VkPipeline *out, const lgpu_vk_layout **layout);
/* Layout for a texel mask (created on first use). */
int lgpu_vk_layout_get(lgpu_vk_dev *vd, uint32_t texel_mask, const lgpu_vk_layout **out);
/* $XDG_CACHE_HOME/lgpu/pipelines-<vendor>-<device>-<driver>.bin ("" if no home) */
void lgpu_vk_pipeline_cache_path(const lgpu_vk_devinfo *info, char *out, size_t len);

/* ---- execs (vk_exec.c) ---- */
int lgpu_vk_exec_create(lgpu_exec *ex);
void lgpu_vk_exec_destroy(lgpu_exec *ex);
int lgpu_vk_exec_begin(lgpu_exec *ex);
int lgpu_vk_exec_submit(lgpu_exec *ex);
int lgpu_vk_exec_dispatch(lgpu_exec *ex, const lgpu_dispatch *d);
/* Counters of the current/last recording (for tests and debugging). */
void lgpu_vk_exec_stats(const lgpu_exec *ex, int *dispatches, int *barriers);

/* ---- profiling (vk_profile.c) ---- */
int lgpu_vk_prof_intern(lgpu_vk_dev *vd, const char *op); /* index of op's row, < 0 on OOM */
void lgpu_vk_prof_add(lgpu_vk_dev *vd, int row, double ns);
void lgpu_vk_prof_print(lgpu_vk_dev *vd, FILE *f);
void lgpu_vk_prof_destroy(lgpu_vk_dev *vd);

#endif
