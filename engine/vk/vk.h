/* The Vulkan backend (engine/vk): instance, physical devices, logical
 * devices, memory, segments (one VkBuffer each), pipelines, command streams.
 * It works on its own types only (lgpu_vk_dev, lgpu_vk_seg, lgpu_vk_exec,
 * lgpu_vk_dispatch) and includes nothing above it: only the public lgpu/
 * headers and core/. engine/dev is its one caller, besides white-box tests:
 * dev/device_vk.c maps device handles, buffers, refs and execs onto these,
 * and `lgpu info` comes through lgpu_dev_print_info to lgpu_vk_print_info.
 *
 * Threading: a device may be used from several threads (queue submission,
 * allocation, pipeline creation and staging copies take the device's locks);
 * one exec must be recorded by one thread at a time. */
#ifndef LGPU_VK_VK_H
#define LGPU_VK_VK_H

#include <pthread.h>
#include <stdio.h>
#include <vulkan/vulkan.h>

#include "lgpu/device.h"

#define LGPU_VK_MAX_BINDINGS 8 /* bindings of every descriptor set layout */
#define LGPU_VK_MAX_SPEC 10    /* specialization constants of a pipeline */
#define LGPU_VK_TEXEL_BYTES 16 /* one R32G32B32A32_UINT texel */

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
    lgpu_dev_caps caps; /* info.caps with LGPU_TEXEL_WEIGHTS applied: what callers see */
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
    lgpu_vk_layout layouts[1 << LGPU_VK_MAX_BINDINGS]; /* by texel mask, created on first use (pipe_lock) */
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
    int n_prof;
    size_t cap_prof;
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

/* ---- segments (vk_buffer.c) ----
 * A segment is one VkBuffer in its own sub-allocation: what a dispatch binds
 * and a copy addresses. The caller owns the struct (e.g. a table of them per
 * buffer); these functions fill and release it. */
typedef struct lgpu_vk_seg {
    VkBuffer buf;
    lgpu_vk_alloc mem;   /* mem.map: host pointer of byte 0 when mapped, else NULL */
    VkDeviceSize size;   /* of the VkBuffer: the segment rounded up to 16 bytes (whole texels) */
    lgpu_vk_view *views; /* created on first use, destroyed with the buffer (vd->view_lock) */
    int n_views;
    size_t cap_views;
} lgpu_vk_seg;

/* A segment of `len` (>= 1) bytes in *s: a VkBuffer of whole texels bound to
 * fresh memory. Fails with LGPU_EDEVMEM when the device is full. On failure
 * *s is left zeroed. */
int lgpu_vk_seg_create(lgpu_vk_dev *vd, size_t len, lgpu_vk_seg *s);
/* Release its views, buffer and memory and zero *s; a zeroed *s is a no-op. */
void lgpu_vk_seg_destroy(lgpu_vk_dev *vd, lgpu_vk_seg *s);
/* Synchronous copies of bytes [off, off + n) of the segment (n <= its length
 * - off): memcpy on mapped memory, else through the staging buffer in chunks.
 * No device work may use the segment meanwhile (execs submit and wait; the
 * caller must not copy into what an unsubmitted exec uses). */
int lgpu_vk_seg_write(lgpu_vk_dev *vd, lgpu_vk_seg *s, size_t off, const void *src, size_t n);
int lgpu_vk_seg_read(lgpu_vk_dev *vd, const lgpu_vk_seg *s, size_t off, void *dst, size_t n);
int lgpu_vk_seg_fill_zero(lgpu_vk_dev *vd, lgpu_vk_seg *s, size_t off, size_t n);

/* Texels in the view a texel binding at byte `in` of segment `s` gets: one
 * view per offset, from `in` to the end of the allocation in whole texels (so
 * bindings at one offset with other sizes share it), at most
 * maxTexelBufferElements. A binding of `size` bytes fits when
 * ceil(size / 16) <= this (dev/device_vk.c checks it before dispatching). */
static inline size_t lgpu_vk_texel_view_elems(const lgpu_dev_caps *c, const lgpu_vk_seg *s, size_t in) {
    size_t n = (size_t)(s->size - in) / LGPU_VK_TEXEL_BYTES;
    return n < c->max_texel_elems ? n : c->max_texel_elems;
}
/* Texel view of segment `seg` bytes [off, off + range) (off a multiple of
 * minTexelBufferOffsetAlignment, range of 16-byte texels), cached on the
 * segment. */
int lgpu_vk_texel_view(lgpu_vk_dev *vd, lgpu_vk_seg *seg, VkDeviceSize off, VkDeviceSize range, VkBufferView *out);

/* ---- device (vk_device.c) ---- */
/* Open the device `selector` names, by the rules of lgpu_dev_create
 * (lgpu/device.h): NULL reads $LGPU_DEVICE; NULL, "" and "auto" choose
 * automatically; "cpu" names the host; an index or a name substring a Vulkan
 * device. Returns 0 with *out the opened Vulkan device, or 0 with *out NULL
 * when the choice is the host: "cpu", or an automatic choice where no usable
 * Vulkan exists at all (logged as a warning). `reason` gets why, either way;
 * `name` (may be NULL) the Vulkan device's name and `caps` (may be NULL) its
 * capabilities (LGPU_TEXEL_WEIGHTS applied). An explicit choice that cannot be
 * met fails with LGPU_ENODEV and a detail that lists the devices. */
int lgpu_vk_dev_open(const char *selector, lgpu_vk_dev **out, char *name, size_t name_len, char *reason,
                     size_t reason_len, lgpu_dev_caps *caps);
void lgpu_vk_dev_destroy(lgpu_vk_dev *vd); /* NULL: no-op */
/* Index of the physical device in the enumeration (-1 for NULL). */
int lgpu_vk_dev_index(const lgpu_vk_dev *vd);

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

/* ---- execs (vk_exec.c) ----
 * A command stream: dispatches are recorded into a command buffer (a barrier
 * first only where a binding depends on an unbarriered earlier one) and run
 * at submit, which waits for completion. */
typedef struct lgpu_vk_exec lgpu_vk_exec;

/* One binding, resolved to a segment: bytes [off, off + size) of `seg`
 * (size >= 1, off aligned to minStorageBufferOffsetAlignment, or for `texel`
 * to minTexelBufferOffsetAlignment). `write` marks outputs (barrier
 * tracking). `texel` (read-only) binds a uniform texel buffer view from `off`
 * over lgpu_vk_texel_view_elems() texels, which must hold `size` bytes. */
typedef struct lgpu_vk_binding {
    lgpu_vk_seg *seg;
    size_t off, size;
    bool write, texel;
} lgpu_vk_binding;

typedef struct lgpu_vk_dispatch {
    const char *shader;   /* embedded blob name (shaders/meson.build) */
    const char *op;       /* name for the LGPU_PROFILE table (NULL: shader) */
    const void *params;   /* push constants */
    uint32_t params_size; /* a multiple of 4, <= 128 */
    lgpu_vk_binding bind[LGPU_VK_MAX_BINDINGS];
    int n_bind;
    uint32_t spec[LGPU_VK_MAX_SPEC]; /* specialization constants, constant_id 0..n_spec-1 */
    int n_spec;
    uint32_t groups[3]; /* workgroup counts (each <= caps.max_wg_count) */
} lgpu_vk_dispatch;

int lgpu_vk_exec_create(lgpu_vk_dev *vd, lgpu_vk_exec **out);
void lgpu_vk_exec_destroy(lgpu_vk_exec *e); /* NULL: no-op */
/* Start recording (discards a recording that was never submitted). */
int lgpu_vk_exec_begin(lgpu_vk_exec *e);
/* Submit what was recorded and wait for completion (with LGPU_PROFILE, add
 * the dispatches' times to the device's table). */
int lgpu_vk_exec_submit(lgpu_vk_exec *e);
/* The checks of d that need no bindings: binding count, push constants,
 * workgroup counts against the device. lgpu_vk_exec_dispatch makes them too;
 * callers that resolve bindings first call this before, so that these errors
 * come first. */
int lgpu_vk_dispatch_check(const lgpu_vk_dev *vd, const lgpu_vk_dispatch *d);
/* Record a dispatch between begin and submit (pipeline created and cached on
 * first use). An empty grid records nothing. */
int lgpu_vk_exec_dispatch(lgpu_vk_exec *e, const lgpu_vk_dispatch *d);
/* Counters of the current/last recording (for tests and debugging). */
void lgpu_vk_exec_stats(const lgpu_vk_exec *e, int *dispatches, int *barriers);

/* ---- profiling (vk_profile.c) ---- */
int lgpu_vk_prof_intern(lgpu_vk_dev *vd, const char *op); /* index of op's row, < 0 on OOM */
void lgpu_vk_prof_add(lgpu_vk_dev *vd, int row, double ns);
void lgpu_vk_prof_print(lgpu_vk_dev *vd, FILE *f);
void lgpu_vk_prof_destroy(lgpu_vk_dev *vd);

#endif
