/* NF4: bitsandbytes' 4-bit NormalFloat, the frozen base of QLoRA, as lgpu
 * stores it (docs/ARCHITECTURE.md, "NF4").
 *
 * What bitsandbytes does (quantize_4bit with quant_type "nf4", blocksize 64;
 * csrc/kernels.cu kQuantizeBlockwiseSmall and dQuantizeNF4):
 *   - the tensor is flattened (row-major) and cut into blocks of 64
 *     consecutive values, the last one possibly partial; blocks run across
 *     rows when K is not a multiple of 64;
 *   - absmax = max |x| over the block; each x is scaled by the float
 *     reciprocal, x * (1.0f / absmax), and mapped to the nearest of the 16
 *     code values by a decision tree over their midpoints (a tie goes to the
 *     lower index; an all-zero block, 0 * inf = NaN, gets index 0);
 *   - indices are packed two per byte, the first value in the HIGH nibble;
 *   - with double quantization (bnb_4bit_use_double_quant): offset = the
 *     mean of all absmax values; the values absmax - offset are quantized
 *     in groups of 256 to 8 bits with the signed dynamic map
 *     (create_dynamic_map), each group with its float32 absmax2;
 *   - dequantization: absmax = code8[q] * absmax2[group] + offset, then
 *     w = nf4[index] * absmax, float32 products (dequantize_4bit).
 *
 * lgpu's layout keeps the flattened blocks in order, each with its scale
 * next to its 32 bytes of indices (lgpu_block_nf4: the 8-bit code; _nodq:
 * the float32 absmax), and puts what is per tensor (offset, absmax2 per
 * group, the 8-bit code map, the compute type) in a small side table,
 * lgpu_nf4_side, which on a device is the weight buffer's side buffer
 * (dev/device.h). Bytes per value: 33/64 (4.125 bits) + 4/16384 for absmax2
 * = bitsandbytes' 4.127 bits (+ 1 KB per tensor for the map, as
 * bitsandbytes keeps state2.code per tensor too); 36/64 = 4.5 bits without
 * double quantization. */
#ifndef LGPU_QUANT_NF4_H
#define LGPU_QUANT_NF4_H

#include "lgpu/lgpu.h"

#define LGPU_NF4_BLOCK 64  /* values per block (bitsandbytes' blocksize for 4-bit) */
#define LGPU_NF4_GROUP 256 /* absmax values per double-quantization block */

/* LGPU_TYPE_NF4: double-quantized absmax. qs[j] holds values 2j (high
 * nibble) and 2j + 1 (low nibble) of the block. */
typedef struct {
    uint8_t qabsmax; /* index into lgpu_nf4_dq_code */
    uint8_t qs[LGPU_NF4_BLOCK / 2];
} lgpu_block_nf4;
_Static_assert(sizeof(lgpu_block_nf4) == 33, "NF4 block is 33 bytes");

/* LGPU_TYPE_NF4_NODQ: the float32 absmax itself. */
typedef struct {
    float absmax;
    uint8_t qs[LGPU_NF4_BLOCK / 2];
} lgpu_block_nf4_nodq;
_Static_assert(sizeof(lgpu_block_nf4_nodq) == 36, "NF4 (no double quant) block is 36 bytes");

/* The per-tensor side table (shaders/types.glsl mirrors it). */
typedef struct lgpu_nf4_side {
    uint32_t compute_type; /* LGPU_TYPE_F32, F16 or BF16: what each dequantized weight is rounded to */
    float offset;          /* NF4: the float32 mean of the block absmax values; NODQ: 0 */
    uint32_t n_blocks;     /* blocks of the tensor: ceil(values / 64) */
    uint32_t n_groups;     /* NF4: ceil(n_blocks / 256); NODQ: 0 */
    /* lgpu_nf4_dq_code (bitsandbytes' state2.code): shaders read it here, as
     * an indexed constant array costs every invocation a private copy on
     * some drivers (llvmpipe) */
    float code8[256];
    float absmax2[]; /* NF4: per group, the float32 absmax of (absmax - offset) */
} lgpu_nf4_side;
_Static_assert(sizeof(lgpu_nf4_side) == 16 + 1024, "NF4 side table header is 1040 bytes");

/* bitsandbytes' NF4 code book (functional.py get_4bit_type("nf4"), =
 * kernels.cu nf4_dequantization_lut), and its signed 8-bit dynamic map
 * (functional.py create_dynamic_map(), as PyTorch's AVX2 CPU build
 * computes it: tests/nf4/bnb_nf4_ref.py). */
extern const float lgpu_nf4_code[16];
extern const float lgpu_nf4_dq_code[256];

bool lgpu_type_is_nf4(int type); /* LGPU_TYPE_NF4 or LGPU_TYPE_NF4_NODQ */

/* dQuantizeNF4: the index of x (already scaled to [-1, 1]). */
uint8_t lgpu_nf4_index(float x);
/* dQuantize<0> over lgpu_nf4_dq_code: the 8-bit index of x. */
uint8_t lgpu_nf4_dq_index(float x);

/* x rounded to nearest even in `type` (F16, BF16) and back; F32: x. */
float lgpu_round_to_type(float x, int type);

int64_t lgpu_nf4_blocks(int64_t n);              /* ceil(n / 64) */
size_t lgpu_nf4_bytes(int type, int64_t n);      /* the blocks of n values */
size_t lgpu_nf4_side_bytes(int type, int64_t n); /* the side table of a tensor of n values */
/* Bytes of the rows [0, rows) of a (rows x k) tensor: the blocks they touch. */
static inline size_t lgpu_nf4_rows_bytes(int type, int64_t rows, int64_t k) { return lgpu_nf4_bytes(type, rows * k); }
/* The smallest number of rows of k values that ends on a block boundary:
 * a device buffer of an NF4 matrix splits into segments of whole groups of
 * it (its unit, lgpu_nf4_rows_bytes(type, lgpu_nf4_row_group(k), k) bytes). */
int64_t lgpu_nf4_row_group(int64_t k);

/* A whole tensor of n values (flattened, row-major) to `blocks`
 * (lgpu_nf4_bytes) and `side` (lgpu_nf4_side_bytes). compute_type: F32,
 * F16 or BF16 (recorded in the side table). */
int lgpu_nf4_quantize(int type, const float *src, int64_t n, void *blocks, lgpu_nf4_side *side, int compute_type);

/* The same in two steps, for tensors converted in pieces (the model loader):
 * quantize_part over n values starting at a block boundary (n a multiple of
 * 64 except for the tensor's last piece) writes their blocks' indices and
 * each block's float absmax (absmax[0 .. ceil(n/64))); finish, once all
 * n_blocks absmax values are known, stores the block scales (NODQ: the
 * floats; NF4: the double quantization) and fills the side table. */
int lgpu_nf4_quantize_part(int type, const float *src, int64_t n, void *blocks, float *absmax);
int lgpu_nf4_finish(int type, void *blocks, const float *absmax, int64_t n_blocks, lgpu_nf4_side *side,
                    int compute_type);

/* The dequantized absmax of block b of `blocks`, which start at block
 * `block0` of the tensor (the side table counts from the tensor's block 0). */
float lgpu_nf4_absmax(int type, const void *blocks, const lgpu_nf4_side *side, int64_t block0, int64_t b);

/* Values [e0, e0 + n) counted from the start of `blocks` (block `block0` of
 * the tensor) into dst: w = code[index] * absmax (dequantize_4bit's float32
 * values); with `compute`, each then rounded to side->compute_type (what the
 * matmul multiplies). */
int lgpu_nf4_dequantize(int type, const void *blocks, const lgpu_nf4_side *side, int64_t block0, int64_t e0,
                        int64_t n, float *dst, bool compute);

#endif
