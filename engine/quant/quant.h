/* Block-quantized formats, laid out exactly as GGUF/ggml stores them so GGUF
 * tensor data uploads without conversion. Mirrored for shaders in
 * shaders/types.glsl. */
#ifndef LGPU_QUANT_QUANT_H
#define LGPU_QUANT_QUANT_H

#include "lgpu/lgpu.h"

#define LGPU_QK 32    /* values per Q8_0 / Q4_0 block */
#define LGPU_QK_K 256 /* values per K-quant super-block */

typedef uint16_t lgpu_f16;  /* IEEE binary16 bits */
typedef uint16_t lgpu_bf16; /* bfloat16 bits */

/* Q8_0: x[i] = d * qs[i] */
typedef struct {
    lgpu_f16 d;
    int8_t qs[LGPU_QK];
} lgpu_block_q8_0;
_Static_assert(sizeof(lgpu_block_q8_0) == 34, "Q8_0 block is 34 bytes");

/* Q4_0: x[i] = d * ((qs[i%16] >> (4*(i/16))) & 15) - 8): low nibbles hold
 * values 0..15, high nibbles 16..31, with an offset of 8. */
typedef struct {
    lgpu_f16 d;
    uint8_t qs[LGPU_QK / 2];
} lgpu_block_q4_0;
_Static_assert(sizeof(lgpu_block_q4_0) == 18, "Q4_0 block is 18 bytes");

/* Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins packed in `scales`. */
typedef struct {
    lgpu_f16 d, dmin;
    uint8_t scales[12];
    uint8_t qs[LGPU_QK_K / 2];
} lgpu_block_q4_k;
_Static_assert(sizeof(lgpu_block_q4_k) == 144, "Q4_K block is 144 bytes");

/* Q6_K: 16 sub-blocks of 16 with int8 scales; 6-bit quants split in ql/qh. */
typedef struct {
    uint8_t ql[LGPU_QK_K / 2];
    uint8_t qh[LGPU_QK_K / 4];
    int8_t scales[LGPU_QK_K / 16];
    lgpu_f16 d;
} lgpu_block_q6_k;
_Static_assert(sizeof(lgpu_block_q6_k) == 210, "Q6_K block is 210 bytes");

/* Q4_0 repacked for the host matmul (never in files): a matrix's rows in
 * groups of 8, each group block-major. Block b of a group holds the 8 rows'
 * scales, then their quants in 4-byte slices: bytes 32g + 4r .. 32g + 4r + 3
 * are row r's qs[4g .. 4g + 3] (values 4g.. in the low nibbles, 16 + 4g.. in
 * the high ones). A 32-byte load is then one slice of all 8 rows, a vector
 * lane per row. Same size as the 8 Q4_0 rows, and the same bytes per group. */
typedef struct {
    lgpu_f16 d[8];
    uint8_t qs[8 * LGPU_QK / 2];
} lgpu_block_q4_0x8;
_Static_assert(sizeof(lgpu_block_q4_0x8) == 8 * sizeof(lgpu_block_q4_0), "Q4_0x8 block is 8 Q4_0 blocks");

/* Whether the host device keeps a matrix of `type` with n_rows rows repacked:
 * Q4_0 in whole groups of 8 rows, unless LGPU_REPACK=0 (the file layout, for
 * comparisons). */
bool lgpu_repack_q4_0_x8_wanted(int type, int64_t n_rows);
/* Repacks n_rows (a multiple of 8) Q4_0 rows of k values from src into dst
 * (distinct buffers of the same size). */
int lgpu_repack_q4_0_x8(const void *src, void *dst, int64_t n_rows, int64_t k);
/* Row `row` (k values) of a repacked matrix w, dequantized as Q4_0 would be. */
void lgpu_dequantize_row_q4_0_x8(const void *w, int64_t row, int64_t k, float *dst);
/* Blocks [b0, b0 + nb) of that row (values 32 b0 .. 32 (b0 + nb) - 1) into dst. */
void lgpu_dequantize_blocks_q4_0_x8(const void *w, int64_t row, int64_t k, int64_t b0, int64_t nb, float *dst);

float lgpu_f16_to_f32(lgpu_f16 h);
lgpu_f16 lgpu_f32_to_f16(float f); /* round to nearest even */
float lgpu_bf16_to_f32(lgpu_bf16 h);
lgpu_bf16 lgpu_f32_to_bf16(float f); /* round to nearest even */

/* Convert n values (a multiple of the type's block size) between F32 and
 * `type`. quantize uses ggml's reference rounding so our files match theirs. */
int lgpu_quantize_row(int type, const float *src, void *dst, int64_t n);
int lgpu_dequantize_row(int type, const void *src, float *dst, int64_t n);

/* Row-range helpers for a matrix of rows of k values (k a multiple of the
 * block size) stored back to back: dequantize rows [row_begin, row_begin +
 * nrows) of w into dst (nrows * k floats); quantize nrows rows of src. */
int lgpu_dequantize_rows(int type, const void *w, int64_t row_begin, int64_t nrows, int64_t k, float *dst);
int lgpu_quantize_rows(int type, const float *src, int64_t nrows, int64_t k, void *dst);

/* True for the weight-matrix types the engine reads, converts and writes:
 * F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K (defined in model/quantize.c). */
bool lgpu_quant_matrix_type_ok(int type);

#endif
