/* lgpu — compute devices: open a Vulkan GPU (or the host C path), what it
 * is, why it was chosen, what it can do and how much memory it has.
 *
 * Lifetimes: an lgpu_dev owns everything created from it (models, contexts,
 * buffers); destroy those first. lgpu_dev_destroy(NULL) is a no-op. */
#ifndef LGPU_DEVICE_H
#define LGPU_DEVICE_H

#include <stdio.h>

#include "lgpu/lgpu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lgpu_dev lgpu_dev;   /* a Vulkan device, or the host ("cpu") */

typedef enum { LGPU_DEV_CPU = 0, LGPU_DEV_VULKAN = 1 } lgpu_dev_kind;

/* Open a device. `selector`: NULL → $LGPU_DEVICE, else automatic choice
 * (discrete > integrated > virtual > CPU-type Vulkan device; the host C path
 * when no Vulkan device exists). "cpu" → the host C path. A decimal index or a
 * case-insensitive name substring picks a Vulkan device; an impossible choice
 * fails with LGPU_ENODEV and an error detail that lists the devices. */
int lgpu_dev_create(const char *selector, lgpu_dev **out);
void lgpu_dev_destroy(lgpu_dev *dev);

lgpu_dev_kind lgpu_dev_kind_of(const lgpu_dev *dev);
const char *lgpu_dev_name(const lgpu_dev *dev);
/* Why this device was selected (for `lgpu info`). */
const char *lgpu_dev_reason(const lgpu_dev *dev);
/* Largest byte range one shader binding may address (maxStorageBufferRange;
 * SIZE_MAX on the host). Buffers larger than this are split in segments. */
size_t lgpu_dev_max_binding(const lgpu_dev *dev);
/* `lgpu info`: writes every Vulkan device to f in detail (type, API and
 * driver versions, heaps and budget, subgroup size, FP16/INT8, 16/8-bit
 * storage, cooperative matrices, limits), then which device `selector`
 * (as for lgpu_dev_create) opens and why. */
int lgpu_dev_print_info(FILE *f, const char *selector);
/* Threads used by the host C path (LGPU_THREADS, default: online cores). */
int lgpu_dev_threads(const lgpu_dev *dev);
/* Device memory in use by this process, and the total budget (0 if unknown). */
void lgpu_dev_memory(const lgpu_dev *dev, size_t *used, size_t *budget);
/* Bytes in lgpu buffers now, and the most at once since the device was
 * created or the last reset: what the engine itself asked for, on every
 * backend (the driver's own overhead and block rounding excluded). */
size_t lgpu_dev_buffer_bytes(const lgpu_dev *dev);
size_t lgpu_dev_memory_peak(const lgpu_dev *dev);
void lgpu_dev_memory_peak_reset(lgpu_dev *dev);
/* $LGPU_DEVICE_MEMORY_LIMIT (bytes, or with a K/M/G suffix) caps the
 * buffers of every device as if it were that small: a buffer past it fails
 * with LGPU_EDEVMEM as a full GPU would (to try a smaller card's limits). */

/* Device capabilities that decide which shader variant an op records. */
typedef struct lgpu_dev_caps {
    uint32_t subgroup_size;      /* 0 on the host */
    bool subgroup_arithmetic;    /* subgroupAdd/Max in compute */
    bool fp16_arith;             /* shaderFloat16 */
    bool int8_arith;             /* shaderInt8 */
    bool storage_16bit;          /* storageBuffer16BitAccess */
    bool storage_8bit;           /* storageBuffer8BitAccess */
    bool coopmat_nv;             /* VK_NV_cooperative_matrix with f16 x f16 -> f32 16x16x16 */
    bool coopmat_khr;            /* VK_KHR_cooperative_matrix, and shaders built for it */
    bool cpu_shaders;            /* runs shaders on the CPU (llvmpipe, SwiftShader: by
                                    device name): matmul's vec/tile choices */
    uint32_t max_wg_count[3];
    uint32_t max_wg_invocations;
    uint32_t max_shared_bytes;
    size_t max_binding;          /* maxStorageBufferRange */
    size_t min_storage_align;    /* minStorageBufferOffsetAlignment */
    /* Uniform texel buffers of R32G32B32A32_UINT (16-byte texels): */
    bool texel_buffers;          /* supported (format feature + buffer usage) */
    bool texel_weights;          /* matmul reads W through them: default on CPU-type
                                    devices (lavapipe: vectorised gathers instead of
                                    per-lane SSBO loads); LGPU_TEXEL_WEIGHTS=0/1 overrides */
    size_t min_texel_align;      /* minTexelBufferOffsetAlignment */
    size_t max_texel_elems;      /* maxTexelBufferElements (texels of 16 bytes) */
} lgpu_dev_caps;
const lgpu_dev_caps *lgpu_dev_caps_of(const lgpu_dev *dev);

#ifdef __cplusplus
}
#endif
#endif
