/* Helpers shared by the op glue (op_rmsnorm.c, op_matmul.c ...): operand
 * checks, bindings, workgroup sizes, 2D grids, reduction variants, the
 * per-segment dispatch loop of table operands. */
#ifndef LGPU_OPS_OP_COMMON_H
#define LGPU_OPS_OP_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "dev/dispatch.h"
#include "ops/ops.h"
#include "quant/nf4.h"

/* A Q4_0 matrix repacked in 8-row groups (the host matmul's layout): only
 * the host device reads it, and only whole groups exist. */
static inline int op_check_x8(lgpu_exec *ex, bool x8, uint32_t type, uint32_t rows, const char *op) {
    if (!x8) return 0;
    if (!lgpu_exec_is_host(ex))
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: Q4_0 repacked in 8-row groups is for the host device only", op);
    if (type != LGPU_TYPE_Q4_0 || rows % 8)
        return lgpu_set_error(LGPU_EINVAL, "%s: a repacked matrix is Q4_0 with a multiple of 8 rows (%s, %u rows)", op,
                              lgpu_type_name((int)type) ? lgpu_type_name((int)type) : "unknown", rows);
    return 0;
}

/* Check that bytes [r.off, r.off + size) lie inside r.buf and inside one of
 * its segments (size 0: just r.off). `op`/`what` name the operand in the
 * error detail. */
static inline int op_check_ref(lgpu_ref r, size_t size, const char *op, const char *what) {
    if (!r.buf) return lgpu_set_error(LGPU_EINVAL, "%s: operand %s has no buffer", op, what);
    if (r.off % LGPU_REF_ALIGN)
        return lgpu_set_error(LGPU_EINVAL, "%s: operand %s offset %zu is not a multiple of %d", op, what, r.off,
                              LGPU_REF_ALIGN);
    size_t bsz = lgpu_buf_size(r.buf);
    if (r.off > bsz || size > bsz - r.off)
        return lgpu_set_error(LGPU_ERANGE, "%s: operand %s needs bytes [%zu, %zu) of a %zu-byte buffer", op, what,
                              r.off, r.off + size, bsz);
    int n = lgpu_buf_segments(r.buf);
    for (int i = 0; i < n; i++) {
        size_t s, len;
        lgpu_buf_segment(r.buf, i, &s, &len);
        if (r.off >= s && r.off < s + len) {
            if (size > s + len - r.off)
                return lgpu_set_error(LGPU_EUNSUPPORTED,
                                      "%s: operand %s bytes [%zu, %zu) cross the end of buffer segment %d at %zu", op,
                                      what, r.off, r.off + size, i, s + len);
            return 0;
        }
    }
    return lgpu_set_error(LGPU_ERANGE, "%s: operand %s offset %zu is outside its buffer", op, what, r.off);
}

/* Bytes from r.off to the end of its buffer (the most a "rest of the
 * buffer" operand such as a KV pool can hold). A pool is bound from r.off to
 * the end of its segment, so ops check op_check_ref(r, op_ref_avail(r)): the
 * rest of the buffer must be one segment, else slots past it would be lost. */
static inline size_t op_ref_avail(lgpu_ref r) {
    size_t bsz = lgpu_buf_size(r.buf);
    return r.off < bsz ? bsz - r.off : 0;
}

static inline void op_bind(lgpu_dispatch *d, lgpu_ref r, size_t size, bool write) {
    d->bind[d->n_bind].ref = r;
    d->bind[d->n_bind].size = size;
    d->bind[d->n_bind].write = write;
    d->bind[d->n_bind].texel = false;
    d->n_bind++;
}

/* Largest power of two <= min(want, max_wg_invocations): the tree-reduction
 * variants need a power of two. */
static inline uint32_t op_wg_size(const lgpu_dev_caps *caps, uint32_t want) {
    uint32_t lim = caps->max_wg_invocations ? caps->max_wg_invocations : 128;
    if (want > lim) want = lim;
    uint32_t wg = 1;
    while (wg * 2 <= want) wg *= 2;
    return wg;
}

/* Spread `count` workgroups over a 2D grid within max_wg_count (shaders use
 * wg_index() from shaders/common.glsl and bound-check it). */
static inline int op_grid(const lgpu_dev_caps *caps, uint64_t count, uint32_t groups[3], const char *op) {
    uint64_t mx = caps->max_wg_count[0] ? caps->max_wg_count[0] : 65535;
    uint64_t my = caps->max_wg_count[1] ? caps->max_wg_count[1] : 65535;
    uint64_t gx = count < mx ? count : mx;
    uint64_t gy = gx ? (count + gx - 1) / gx : 0;
    if (gy > my)
        return lgpu_set_error(LGPU_ERANGE, "%s: %llu workgroups exceed the device grid %llux%llu", op,
                              (unsigned long long)count, (unsigned long long)mx, (unsigned long long)my);
    groups[0] = (uint32_t)gx;
    groups[1] = (uint32_t)gy;
    groups[2] = 1;
    return 0;
}

/* Reducing shaders come in a subgroup build ("<op>") and a shared-memory one
 * ("<op>_nosg") for devices without subgroup arithmetic; LGPU_NO_SUBGROUP=1
 * forces the latter (tests, drivers with broken subgroup ops). */
static inline bool op_use_subgroup(const lgpu_dev_caps *caps) {
    const char *e = getenv("LGPU_NO_SUBGROUP");
    if (e && *e && strcmp(e, "0") != 0) return false;
    return caps->subgroup_arithmetic;
}

/* Host path of kv_store/attention: check that blocks [blk_begin, blk_end) of
 * sequence `seq` have block-table entries inside the table (table_len
 * entries) and, when not negative (= unused, skipped), whole blocks inside
 * pools of pool_slots token slots. Defined in op_kv_store.c. */
int lgpu_op_check_blocks(const char *op, uint32_t t, const int32_t *table, size_t table_len, int32_t seq,
                         uint32_t blk_begin, uint32_t blk_end, uint32_t max_blocks, uint32_t block_size,
                         size_t pool_slots);

/* Shader name suffix of a tensor type the typed shaders (matmul_*_<t>,
 * get_rows_<t>) are built for; NULL for other types. */
static inline const char *op_type_suffix(uint32_t type) {
    switch (type) {
    case LGPU_TYPE_F32: return "f32";
    case LGPU_TYPE_F16: return "f16";
    case LGPU_TYPE_BF16: return "bf16";
    case LGPU_TYPE_Q8_0: return "q8_0";
    case LGPU_TYPE_Q4_0: return "q4_0";
    case LGPU_TYPE_Q4_K: return "q4_k";
    case LGPU_TYPE_Q6_K: return "q6_k";
    case LGPU_TYPE_NF4: return "nf4"; /* matmul and matmul_backward only */
    case LGPU_TYPE_NF4_NODQ: return "nf4_nodq";
    default: return NULL;
    }
}

/* Typed shaders read F16/BF16 data as 16-bit and quantized blocks as 8-bit
 * storage-buffer words: LGPU_EUNSUPPORTED when the device lacks that access.
 * `what` names the operand in the detail ("weights", "embeddings"). */
static inline int op_check_storage(const lgpu_dev_caps *caps, uint32_t type, const char *op, const char *what) {
    bool need16 = type != LGPU_TYPE_F32;
    bool need8 = need16 && type != LGPU_TYPE_F16 && type != LGPU_TYPE_BF16;
    if ((need16 && !caps->storage_16bit) || (need8 && !caps->storage_8bit)) {
        const char *bits = need8 && !caps->storage_8bit ? "8" : "16";
        return lgpu_set_error(LGPU_EUNSUPPORTED,
                              "%s: %s %s need %s-bit storage buffer access (storageBuffer%sBitAccess), which this "
                              "device lacks",
                              op, lgpu_type_name((int)type), what, bits, bits);
    }
    return 0;
}

static inline const lgpu_dev_caps *op_caps(lgpu_exec *ex) { return lgpu_dev_caps_of(lgpu_exec_dev(ex)); }

/* Output tiles of the shared-memory product kernels (gemm.comp,
 * matmul_backward.comp): a g x g grid of invocations (16 x 16 on GPUs, 8 x 8
 * on CPU devices and small workgroups), each owning tr x tc outputs of a
 * (g tr) x (g tc) tile. tr and tc are 4 where the matrix has the rows and
 * columns, less along a thin side (a LoRA rank of 16); on GPUs they also
 * shrink, the larger first, until there are at least 128 tiles to spread over
 * the compute units (a sum is never split, so small outputs need small
 * tiles). CPU devices always take 4 x 4: one pipeline per shader, where
 * lavapipe compiles each for seconds. */
typedef struct op_tiles {
    uint32_t wg;     /* invocations per workgroup: g * g */
    uint32_t br, bc; /* tile rows and columns */
    uint32_t tr, tc; /* outputs per invocation along each */
} op_tiles;

static inline op_tiles op_pick_tiles(const lgpu_dev_caps *caps, uint32_t rows, uint32_t cols) {
    uint32_t max_inv = caps->max_wg_invocations ? caps->max_wg_invocations : 128;
    bool small = caps->cpu_shaders || max_inv < 256;
    uint32_t g = small ? 8 : 16;
    uint32_t tr = rows >= 4 * g ? 4 : rows >= 2 * g ? 2 : 1, tc = cols >= 4 * g ? 4 : cols >= 2 * g ? 2 : 1;
    if (caps->cpu_shaders) tr = tc = 4; /* one pipeline per shader: lavapipe compiles each for seconds */
    while (!small && (tr > 1 || tc > 1) &&
           (uint64_t)LGPU_CEIL_DIV(rows, g * tr) * LGPU_CEIL_DIV(cols, g * tc) < 128) {
        if (tr >= tc) tr /= 2;
        else tc /= 2;
    }
    op_tiles t = {g * g, g * tr, g * tc, tr, tc};
    return t;
}

/* Grid of a tiled kernel: x = column tiles, y = row tiles folded into z past
 * max_wg_count[1] (the shader's row tile: z * gl_NumWorkGroups.y + y). */
static inline int op_tile_grid(const lgpu_dev_caps *caps, const op_tiles *t, uint32_t rows, uint32_t cols,
                               uint32_t groups[3], const char *op) {
    uint64_t mx = caps->max_wg_count[0] ? caps->max_wg_count[0] : 65535;
    uint64_t my = caps->max_wg_count[1] ? caps->max_wg_count[1] : 65535;
    uint64_t mz = caps->max_wg_count[2] ? caps->max_wg_count[2] : 65535;
    uint64_t gx = LGPU_CEIL_DIV((uint64_t)cols, t->bc), rt = LGPU_CEIL_DIV((uint64_t)rows, t->br);
    uint64_t gy = rt < my ? rt : my, gz = gy ? LGPU_CEIL_DIV(rt, gy) : 0;
    if (gx > mx || gz > mz)
        return lgpu_set_error(LGPU_ERANGE, "%s: %u x %u outputs in %u x %u tiles exceed the device grid", op, rows,
                              cols, t->br, t->bc);
    groups[0] = (uint32_t)gx;
    groups[1] = (uint32_t)gy;
    groups[2] = (uint32_t)gz;
    return 0;
}


/* The rows of a table operand (matmul W, get_rows embeddings) that one
 * buffer segment holds: rows [r0, r1), bytes [lo, hi) of the buffer, inside
 * segment `seg` = [seg_start, seg_start + seg_len). */
typedef struct op_seg_rows {
    int seg;
    size_t seg_start, seg_len;
    size_t lo, hi;
    uint32_t r0, r1;
} op_seg_rows;

/* A table larger than the device's max binding spans several segments: ops
 * dispatch once per segment, binding the whole rows it holds. Calls
 * fn(ctx, part) for each segment holding some of the n_rows rows of rb bytes
 * from t.off, in order; fails (LGPU_EUNSUPPORTED) when a row straddles a
 * segment boundary (the buffer must be created with unit = row bytes) or a
 * segment's first row is not at a multiple of `align` (storage alignment). */
static inline int op_each_segment_units(lgpu_ref t, uint32_t n_rows, uint32_t unit_rows, size_t ub, size_t bytes,
                                        size_t align, const char *op, const char *what,
                                        int (*fn)(void *ctx, const op_seg_rows *part), void *ctx) {
    size_t end = t.off + bytes;
    if (!align) align = 1;
    int n_seg = lgpu_buf_segments(t.buf);
    for (int i = 0; i < n_seg; i++) {
        size_t s, len;
        lgpu_buf_segment(t.buf, i, &s, &len);
        size_t lo = s > t.off ? s : t.off, hi = s + len < end ? s + len : end;
        if (lo >= hi) continue;
        if ((lo - t.off) % ub || (hi < end && (hi - t.off) % ub)) {
            if (unit_rows == 1)
                return lgpu_set_error(LGPU_EUNSUPPORTED,
                                      "%s: a %zu-byte %s row straddles buffer segment %d [%zu, %zu): create the "
                                      "buffer with unit = row bytes and the %s at a multiple of it",
                                      op, ub, what, i, s, s + len, what);
            return lgpu_set_error(LGPU_EUNSUPPORTED,
                                  "%s: a %zu-byte group of %u %s rows straddles buffer segment %d [%zu, %zu): create "
                                  "the buffer with unit = those bytes",
                                  op, ub, unit_rows, what, i, s, s + len);
        }
        if ((lo - s) % align) /* the binding's offset inside its segment */
            return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: %s rows from byte %zu are not aligned to the device's "
                                  "storage alignment %zu", op, what, lo, align);
        uint64_t r0 = (uint64_t)((lo - t.off) / ub) * unit_rows, r1 = (uint64_t)((hi - t.off) / ub) * unit_rows;
        if (hi == end || r1 > n_rows) r1 = n_rows; /* the last group may be partial */
        op_seg_rows part = {i, s, len, lo, hi, (uint32_t)r0, (uint32_t)r1};
        int st = fn(ctx, &part);
        if (st) return st;
    }
    return 0;
}

static inline int op_each_segment(lgpu_ref t, uint32_t n_rows, size_t rb, size_t align, const char *op,
                                  const char *what, int (*fn)(void *ctx, const op_seg_rows *part), void *ctx) {
    return op_each_segment_units(t, n_rows, 1, rb, (size_t)n_rows * rb, align, op, what, fn, ctx);
}

/* The W operand of matmul and matmul_backward: N rows of K values of
 * `type`. Segments of its buffer hold whole units of unit_rows rows
 * (unit_bytes each): one row, except NF4, whose blocks of 64 run across
 * rows, so a unit is the fewest rows that end on a block boundary
 * (lgpu_nf4_row_group). An NF4 W also has its side table: the buffer's side
 * buffer (lgpu_buf_set_side), bound after the op's other operands; it
 * counts blocks from W's first row (one NF4 tensor per buffer). */
typedef struct op_weight {
    bool nf4;
    size_t bytes;      /* the N rows */
    size_t unit_bytes; /* the buffer's unit */
    uint32_t unit_rows;
    lgpu_ref side; /* NF4 only */
    size_t side_bytes;
    uint32_t compute_type; /* NF4: the side buffer's tag (LGPU_TYPE_F32, F16, BF16), a shader specialization */
} op_weight;

static inline int op_weight_resolve(uint32_t type, uint32_t N, uint32_t K, lgpu_ref w, const char *op,
                                    op_weight *out) {
    memset(out, 0, sizeof *out);
    if (!lgpu_type_is_nf4((int)type)) {
        size_t rb = lgpu_type_row_bytes((int)type, K);
        if (rb == 0)
            return lgpu_set_error(LGPU_EINVAL, "%s: K = %u is not a multiple of the %s block size (%lld)", op, K,
                                  lgpu_type_name((int)type), (long long)lgpu_type_block_elems((int)type));
        out->bytes = (size_t)N * rb, out->unit_bytes = rb, out->unit_rows = 1;
        return 0;
    }
    /* K even: a row starts on a whole byte of indices (every LLaMA width is) */
    if (K == 0 || K % 2)
        return lgpu_set_error(LGPU_EINVAL, "%s: K = %u: an %s matrix needs an even, positive K", op, K,
                              lgpu_type_name((int)type));
    if ((uint64_t)N * K > UINT32_MAX)
        return lgpu_set_error(LGPU_ERANGE, "%s: an %s W of %u x %u values exceeds 2^32 values", op,
                              lgpu_type_name((int)type), N, K);
    out->nf4 = true;
    out->unit_rows = (uint32_t)lgpu_nf4_row_group(K);
    out->unit_bytes = lgpu_nf4_rows_bytes((int)type, out->unit_rows, K);
    out->bytes = lgpu_nf4_rows_bytes((int)type, N, K);
    out->side = lgpu_ref_at(lgpu_buf_side(w.buf), 0);
    out->compute_type = lgpu_buf_side_tag(w.buf);
    if (out->compute_type != LGPU_TYPE_F32 && out->compute_type != LGPU_TYPE_F16 && out->compute_type != LGPU_TYPE_BF16)
        return lgpu_set_error(LGPU_EINVAL, "%s: the %s W's compute type %u is not f32, f16 or bf16", op,
                              lgpu_type_name((int)type), out->compute_type);
    out->side_bytes = lgpu_nf4_side_bytes((int)type, (int64_t)N * K);
    if (!out->side.buf)
        return lgpu_set_error(LGPU_EINVAL, "%s: the %s W has no side table (lgpu_buf_set_side on its buffer)", op,
                              lgpu_type_name((int)type));
    return op_check_ref(out->side, out->side_bytes, op, "W's side table");
}

#endif
