/* lgpu — public base header: status codes, error details, tensor types,
 * logging and the monotonic clock.
 *
 * Every library function returns int: 0 (LGPU_OK) or a negative LGPU_E* code.
 * A failing call also records a human-readable detail (file, field, line...)
 * retrievable with lgpu_last_error() on the same thread. */
#ifndef LGPU_LGPU_H
#define LGPU_LGPU_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LGPU_VERSION_STRING "0.1.0"

/* X(name, value, description) */
#define LGPU_STATUS_MAP(X)                                        \
    X(OK, 0, "success")                                           \
    X(EINVAL, -1, "invalid argument")                             \
    X(ENOMEM, -2, "out of host memory")                           \
    X(EIO, -3, "input/output error")                              \
    X(EFORMAT, -4, "malformed file or data")                      \
    X(EUNSUPPORTED, -5, "unsupported feature or type")            \
    X(EVULKAN, -6, "Vulkan error")                                \
    X(EDEVMEM, -7, "out of device memory")                        \
    X(ENOTFOUND, -8, "not found")                                 \
    X(ENODEV, -9, "no usable device")                             \
    X(ENET, -10, "network error")                                 \
    X(ERANGE, -11, "value out of range")                          \
    X(EBUSY, -12, "resource busy")                                \
    X(ECANCELED, -13, "operation canceled")                       \
    X(ETIMEDOUT, -14, "operation timed out")                      \
    X(EFULL, -15, "capacity exhausted")

typedef enum lgpu_status {
#define LGPU_X_ENUM(name, value, desc) LGPU_##name = value,
    LGPU_STATUS_MAP(LGPU_X_ENUM)
#undef LGPU_X_ENUM
} lgpu_status;

/* "invalid argument" etc. */
const char *lgpu_strerror(int status);
/* "LGPU_EINVAL" etc. */
const char *lgpu_err_name(int status);
/* Detail of the most recent failure on this thread ("" if none). */
const char *lgpu_last_error(void);
/* Record a detail and return `status` (for use as `return lgpu_set_error(...)`). */
int lgpu_set_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lgpu_clear_error(void);

/* Tensor element types. Values below LGPU_TYPE_COUNT_ are GGML's type ids, so
 * GGUF files map directly; lgpu's own types lie above it and are never read
 * from or written to a file. */
typedef enum lgpu_type {
    LGPU_TYPE_F32 = 0,
    LGPU_TYPE_F16 = 1,
    LGPU_TYPE_Q4_0 = 2,
    LGPU_TYPE_Q8_0 = 8,
    LGPU_TYPE_Q4_K = 12,
    LGPU_TYPE_Q6_K = 14,
    LGPU_TYPE_I32 = 26,
    LGPU_TYPE_BF16 = 30,
    LGPU_TYPE_COUNT_ = 40, /* upper bound of GGML's ids (the types a file may hold), not a type */
    /* bitsandbytes' 4-bit NormalFloat (QLoRA's frozen base, made at load):
     * blocks of 64 in the tensor's flattened order, 4-bit indices into the
     * NF4 code book plus each block's absmax, 8-bit double-quantized (NF4,
     * 33 bytes a block + a per-tensor side table: ~4.127 bits a value) or
     * float32 (NF4_NODQ, 36 bytes: 4.5 bits). engine/quant/nf4.h. */
    LGPU_TYPE_NF4 = 64,
    LGPU_TYPE_NF4_NODQ = 65,
    LGPU_TYPE_AUTO = -1    /* not a type: where a setting allows it, the engine chooses */
} lgpu_type;

/* Name ("f32", "q4_0", ...) or NULL for an unknown id. */
const char *lgpu_type_name(int type);
/* Parse a name, case-insensitive; returns -1 if unknown. */
int lgpu_type_from_name(const char *name);
/* Elements per block (1 for plain types), bytes per block; 0 for unknown types. */
int64_t lgpu_type_block_elems(int type);
size_t lgpu_type_block_bytes(int type);
/* Bytes of a row of n elements; 0 if n is not a multiple of the block size. */
size_t lgpu_type_row_bytes(int type, int64_t n);

/* Log levels for lgpu_log; LGPU_LOG=debug|info|warn|error selects the threshold. */
typedef enum { LGPU_LOG_DEBUG = 0, LGPU_LOG_INFO, LGPU_LOG_WARN, LGPU_LOG_ERROR } lgpu_log_level;
void lgpu_log(lgpu_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC), for timings,
 * progress and timeouts. */
double lgpu_now_s(void);

#ifdef __cplusplus
}
#endif
#endif
