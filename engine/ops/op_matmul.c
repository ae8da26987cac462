/* matmul: y[m, n] (+)= sum_k W[n, k] x[m, k] (twin lgpu_ref_matmul).
 *
 * Vulkan paths, one shader build per weight type:
 *   matmul_vec_<t>     matrix-vector kernel (shaders/matmul_vec.comp): NM x
 *                      rows per W pass, NR W rows per workgroup, subgroup
 *                      reduction. Used for M <= 4 everywhere and for every M on
 *                      CPU-type devices (lavapipe), where each storage-buffer
 *                      or shared-memory load is a scalar loop over the SIMD
 *                      lanes: reading W and x straight into registers beats
 *                      staging tiles in shared memory ~3x there.
 *   matmul_mm_<t>      shared-memory tiled kernel (shaders/matmul_mm.comp).
 *   matmul_cm_nv_<t> / matmul_cm_khr_<t>
 *                      cooperative-matrix tiles (shaders/matmul_cm.comp),
 *                      M > 4 when caps.coopmat_khr (and the KHR shaders were
 *                      built) or caps.coopmat_nv.
 *   matmul_vec_tx_<t>  the same vec kernel reading W through a uniform texel
 *                      buffer (W_TEXEL): used when caps.texel_weights (on by
 *                      default on CPU-type devices, LGPU_TEXEL_WEIGHTS=0/1)
 *                      and the W segment can be viewed (lgpu_texel_viewable),
 *                      else the storage-buffer build. llvmpipe gathers texels
 *                      for all lanes in one vector load.
 *   matmul_vec_txx_<t> the same with x through a texel buffer too, when x's
 *                      rows are 16-byte aligned (X4) and x can be viewed.
 * LGPU_MATMUL_PATH=vec|mm|cm forces a path (tests, benchmarks);
 * LGPU_MATMUL_VEC_WG=n forces the vec workgroup size and its split-chunk
 * mode with a subgroup (+ shared-memory, for several subgroups) reduction,
 * the default off lavapipe.
 *
 * W may span several buffer segments (the buffer created with unit = row
 * bytes): one dispatch per segment (op_each_segment), binding the whole rows
 * it holds, with row_offset telling the shader which y columns they are;
 * each segment picks the texel or storage build on its own. */
#include <stdio.h>

#include "ops/op_common.h"
#include "ref/ref_ops.h"

enum { PATH_VEC, PATH_MM, PATH_CM_NV, PATH_CM_KHR };

/* The alignment (2, 4 or 16 bytes) of the vec kernel's chunk byte ranges
 * inside a row (matmul_vec.comp: F32/F16/BF16 chunks of 128/64 bytes and
 * Q4_K's 16-byte header and 32-byte qs runs are 16-byte aligned; the
 * 18/34/210-byte blocks of Q4_0/Q8_0/Q6_K only 2-byte). */
static uint32_t chunk_align(uint32_t type) {
    if (lgpu_type_is_nf4((int)type)) return 1; /* 33/36-byte blocks, chunks start mid-block when 64 does not divide K */
    return type == LGPU_TYPE_Q8_0 || type == LGPU_TYPE_Q4_0 || type == LGPU_TYPE_Q6_K ? 2 : 16;
}

/* x rows per vec pass (spec constant NM): lavapipe's LLVM compile time grows
 * steeply with the code the x loads unroll into; 4 keeps it to seconds. */
#define VEC_MAX_M 4
#define WORD_BYTES 4 /* the SSBO vec kernel reads W as 32-bit words */

static bool have_cm_khr(const lgpu_dev_caps *caps) {
#ifdef LGPU_HAVE_KHR_COOPMAT
    return caps->coopmat_khr;
#else
    (void)caps;
    return false;
#endif
}

static bool can_cm(const lgpu_dev_caps *caps) {
    return (caps->coopmat_nv || have_cm_khr(caps)) && caps->fp16_arith && caps->subgroup_size &&
           4 * caps->subgroup_size <= caps->max_wg_invocations;
}

static int pick_path(const lgpu_dev_caps *caps, uint32_t M, bool vec_ok_w) {
    const char *e = getenv("LGPU_MATMUL_PATH");
    bool vec_ok = caps->subgroup_arithmetic && caps->subgroup_size > 0 && vec_ok_w;
    if (e && *e) {
        if (!strcmp(e, "vec") && vec_ok) return PATH_VEC;
        if (!strcmp(e, "mm")) return PATH_MM;
        if (!strcmp(e, "cm") && can_cm(caps)) return have_cm_khr(caps) ? PATH_CM_KHR : PATH_CM_NV;
        lgpu_log(LGPU_LOG_DEBUG, "matmul: LGPU_MATMUL_PATH=%s not usable here, choosing automatically", e);
    }
    if (vec_ok && (M <= VEC_MAX_M || caps->cpu_shaders)) return PATH_VEC;
    if (can_cm(caps)) return have_cm_khr(caps) ? PATH_CM_KHR : PATH_CM_NV;
    return PATH_MM;
}

/* Everything a dispatch needs but the W segment. */
typedef struct {
    int path;
    char shader[40];
    char shader_tx[40];  /* vec path: the texel-buffer W build, "" when caps.texel_weights is off */
    char shader_txx[40]; /* ... reading x through a texel buffer too (x rows 16-byte aligned) */
    uint32_t spec[LGPU_MAX_SPEC];
    int n_spec;
    uint32_t rows_per_group, m_per_group; /* W rows and x rows one workgroup covers */
    size_t row_bytes;  /* NF4: the bytes of a unit of rows (op_weight) */
    const char *tname; /* shader suffix of the weight type */
    bool vec_ok_w;     /* W can take the vec kernel (NF4: its last word is in the buffer) */
} plan;

static int make_plan(lgpu_exec *ex, const lgpu_matmul_params *p, plan *pl) {
    const lgpu_dev_caps *caps = op_caps(ex);
    uint32_t sgs = caps->subgroup_size ? caps->subgroup_size : 32;
    uint32_t max_inv = caps->max_wg_invocations ? caps->max_wg_invocations : 128;
    pl->path = pick_path(caps, p->M, pl->vec_ok_w);
    static const char *const kind[] = {"vec", "mm", "cm_nv", "cm_khr"};
    snprintf(pl->shader, sizeof pl->shader, "matmul_%s_%s", kind[pl->path], pl->tname);
    pl->shader_tx[0] = pl->shader_txx[0] = 0;
    if (pl->path == PATH_VEC && caps->texel_weights) {
        snprintf(pl->shader_tx, sizeof pl->shader_tx, "matmul_vec_tx_%s", pl->tname);
        snprintf(pl->shader_txx, sizeof pl->shader_txx, "matmul_vec_txx_%s", pl->tname);
    }

    if (pl->path == PATH_VEC) {
        bool cpu = caps->cpu_shaders; /* lavapipe, SwiftShader (see the header comment) */
        /* lavapipe: one 8-lane subgroup per workgroup and many rows per
         * workgroup (few, fat workgroups; x loads shared by NR rows). GPUs:
         * at least 32 lanes, few rows, many workgroups. */
        uint32_t wg = cpu ? sgs : (sgs >= 32 ? sgs : 32);
        uint32_t nm = p->M < VEC_MAX_M ? p->M : VEC_MAX_M;
        /* lavapipe, M = 1: each lane owns rows and walks all their chunks (no
         * idle lanes when a row has, say, 9 chunks; no reduction): 1.5x on
         * 32000x288. For M > 1 it loads every x row per lane, 2.5x slower than
         * splitting. Elsewhere, or when LGPU_MATMUL_VEC_WG forces a
         * workgroup, lanes split each row's chunks and reduce. */
        bool lane_rows = cpu && nm == 1;
        const char *ew = getenv("LGPU_MATMUL_VEC_WG");
        if (ew && atoi(ew) > 0) wg = (uint32_t)atoi(ew), lane_rows = false;
        if (wg % sgs || wg > max_inv)
            return lgpu_set_error(LGPU_EINVAL, "matmul: vec workgroup of %u is not a multiple of the subgroup size %u "
                                  "within the device limit %u", wg, sgs, max_inv);
        uint32_t nr;
        if (lane_rows) { /* NR / WG rows per lane share each x load; keep >= 4 workgroups */
            nr = 16 * wg;
            while (nr > wg && LGPU_CEIL_DIV(p->N, nr) < 4) nr /= 2;
        } else {
            nr = cpu ? (nm == 1 ? 32 : 16) : (nm <= 2 ? 4 : 2);
        }
        /* chunk ranges are aligned to the smaller of the chunk's and the row's alignment */
        uint32_t align = chunk_align(p->wtype);
        while (pl->row_bytes % align) align /= 2;
        /* x rows 16-byte aligned and the binding whole vec4s: vec4 loads */
        bool x4 = p->K % 4 == 0 && (p->M == 1 || p->x_stride % 4 == 0);
        uint32_t s[] = {wg, nr, nm, align, x4, wg / sgs, 0 /* W_TAIL, per segment */, lane_rows};
        memcpy(pl->spec, s, sizeof s);
        pl->n_spec = 8;
        if (!x4) pl->shader_txx[0] = 0;
        pl->rows_per_group = nr;
        pl->m_per_group = nm;
    } else if (pl->path == PATH_MM) {
        /* GPUs: 64x64 tiles, 256 threads of 4x4 outputs. CPU devices (only
         * when forced) and small workgroups: 32x32 tiles, 64 threads, which
         * lavapipe compiles in ~2 s instead of ~9 s for 64x64 with 8x8. */
        uint32_t bm = 64, bn = 64, bk = 16, tm = 4, tn = 4;
        if (caps->cpu_shaders || max_inv < 256) bm = bn = 32;
        uint32_t threads = (bm / tm) * (bn / tn);
        if (threads > max_inv)
            return lgpu_set_error(LGPU_EUNSUPPORTED, "matmul: tiled kernel needs %u invocations per workgroup, device "
                                  "allows %u", threads, max_inv);
        uint32_t s[] = {threads, bm, bn, bk, tm, tn};
        memcpy(pl->spec, s, sizeof s);
        pl->n_spec = 6;
        pl->rows_per_group = bn;
        pl->m_per_group = bm;
    } else {
        pl->spec[0] = 4 * sgs; /* 4 subgroups, one 32x32 quarter of the 64x64 tile each */
        pl->n_spec = 1;
        pl->rows_per_group = 64;
        pl->m_per_group = 64;
    }
    return 0;
}

/* Grid for `rows` W rows: vec spreads row groups over x (and y when they
 * exceed max_wg_count[0]) with x-row groups in z; the tiled kernels put W
 * tiles in x (overflow in z) and x tiles in y. */
static int grid(const lgpu_dev_caps *caps, const plan *pl, uint32_t rows, uint32_t M, uint32_t g[3]) {
    uint64_t nt = LGPU_CEIL_DIV((uint64_t)rows, pl->rows_per_group);
    uint64_t mt = LGPU_CEIL_DIV((uint64_t)M, pl->m_per_group);
    uint64_t mx = caps->max_wg_count[0] ? caps->max_wg_count[0] : 65535;
    uint64_t my = caps->max_wg_count[1] ? caps->max_wg_count[1] : 65535;
    uint64_t mz = caps->max_wg_count[2] ? caps->max_wg_count[2] : 65535;
    uint64_t gx = nt < mx ? nt : mx, over = LGPU_CEIL_DIV(nt, gx);
    uint64_t gy = pl->path == PATH_VEC ? over : mt, gz = pl->path == PATH_VEC ? mt : over;
    if (gy > my || gz > mz)
        return lgpu_set_error(LGPU_ERANGE, "matmul: %u x %u outputs need a %llux%llux%llu grid, device allows %llux%llux%llu",
                              M, rows, (unsigned long long)gx, (unsigned long long)gy, (unsigned long long)gz,
                              (unsigned long long)mx, (unsigned long long)my, (unsigned long long)mz);
    g[0] = (uint32_t)gx;
    g[1] = (uint32_t)gy;
    g[2] = (uint32_t)gz;
    return 0;
}

/* One dispatch per segment of W (op_each_segment). */
typedef struct {
    lgpu_exec *ex;
    const lgpu_dev_caps *caps;
    const lgpu_matmul_params *p;
    const plan *pl;
    lgpu_ref w, x, y;
    size_t xb, yb;
    const op_weight *wt;
} mm_ctx;

static int mm_segment(void *ctx, const op_seg_rows *part) {
    const mm_ctx *c = ctx;
    const plan *pl = c->pl;
    lgpu_ref wr = lgpu_ref_at(c->w.buf, part->lo);
    size_t wbind = part->hi - part->lo;
    /* texel build where the rows can be viewed (offset aligned, whole texels
     * inside the allocation, within maxTexelBufferElements); else SSBO */
    lgpu_dev *dev = lgpu_exec_dev(c->ex);
    bool texel = pl->shader_tx[0] && lgpu_texel_viewable(dev, wr, wbind);
    /* x too, when its rows are vec4-aligned and it can be viewed: the x
     * loads are the next largest cost once W comes from texels */
    bool xtexel = texel && pl->shader_txx[0] && lgpu_texel_viewable(dev, c->x, c->xb);
    uint32_t w_tail = 0;
    if (!texel && pl->path == PATH_VEC) {
        /* the SSBO vec kernel reads whole 32-bit words: round the binding up
         * when the segment has the bytes, else read the last one in 16-bit halves */
        size_t wround = (wbind + WORD_BYTES - 1) / WORD_BYTES * WORD_BYTES;
        if (wround != wbind) {
            if (part->lo + wround <= part->seg_start + part->seg_len)
                wbind = wround;
            else if (c->wt->nf4) /* an odd-sized tail has a byte no 16-bit load reaches */
                return lgpu_set_error(LGPU_EUNSUPPORTED, "matmul: NF4 rows of segment %d end at byte %zu, not a "
                                      "multiple of 4: give the segment that padding", part->seg, part->hi);
            else
                w_tail = 1;
        }
    }
    lgpu_matmul_params sp = *c->p;
    sp.N = part->r1 - part->r0;
    sp.row_offset = part->r0;
    const char *shader = xtexel ? pl->shader_txx : texel ? pl->shader_tx : pl->shader;
    lgpu_dispatch d = {.shader = shader, .op = shader, .params = &sp, .params_size = sizeof sp};
    op_bind(&d, wr, wbind, false);
    d.bind[0].texel = texel;
    op_bind(&d, c->x, c->xb, false);
    d.bind[1].texel = xtexel;
    op_bind(&d, c->y, c->yb, true);
    if (c->wt->nf4) op_bind(&d, c->wt->side, c->wt->side_bytes, false);
    memcpy(d.spec, pl->spec, sizeof pl->spec);
    d.n_spec = pl->n_spec;
    if (pl->path == PATH_VEC) d.spec[6] = w_tail;
    int st = grid(c->caps, pl, sp.N, c->p->M, d.groups);
    return st ? st : lgpu_exec_dispatch(c->ex, &d);
}

int lgpu_op_matmul(lgpu_exec *ex, const lgpu_matmul_params *p, lgpu_ref w, lgpu_ref x, lgpu_ref y) {
    if (!ex || !p) return lgpu_set_error(LGPU_EINVAL, "matmul: NULL exec or params");
    if (p->M == 0 || p->N == 0) return 0;
    const char *tname = op_type_suffix(p->wtype);
    if (!tname) return lgpu_set_error(LGPU_EUNSUPPORTED, "matmul: weight type %u (%s)", p->wtype,
                                      lgpu_type_name((int)p->wtype) ? lgpu_type_name((int)p->wtype) : "unknown");
    if (p->row_offset != 0) return lgpu_set_error(LGPU_EINVAL, "matmul: row_offset is set by the op layer; pass 0");
    int st = op_check_x8(ex, p->w_x8, p->wtype, p->N, "matmul");
    if (st) return st;
    if (p->K == 0)
        return lgpu_set_error(LGPU_EINVAL, "matmul: K = 0 (a positive multiple of the %s block size, %lld)", tname,
                              (long long)lgpu_type_block_elems((int)p->wtype));
    op_weight wt;
    if ((st = op_weight_resolve(p->wtype, p->N, p->K, w, "matmul", &wt))) return st;
    lgpu_matmul_params q = *p; /* strides 0 mean contiguous rows, as in the twin */
    if (!q.x_stride) q.x_stride = q.K;
    if (!q.y_stride) q.y_stride = q.N;
    p = &q;
    if (p->x_stride < p->K || p->y_stride < p->N)
        return lgpu_set_error(LGPU_EINVAL, "matmul: strides x %u < K %u or y %u < N %u", p->x_stride, p->K,
                              p->y_stride, p->N);
    uint64_t xe = (uint64_t)(p->M - 1) * p->x_stride + p->K, ye = (uint64_t)(p->M - 1) * p->y_stride + p->N;
    if (xe > UINT32_MAX || ye > UINT32_MAX)
        return lgpu_set_error(LGPU_ERANGE, "matmul: x (%llu) or y (%llu) elements exceed 2^32",
                              (unsigned long long)xe, (unsigned long long)ye);
    size_t xb = (size_t)xe * sizeof(float), yb = (size_t)ye * sizeof(float), wb = wt.bytes;
    if ((st = op_check_ref(x, xb, "matmul", "x")) || (st = op_check_ref(y, yb, "matmul", "y")) ||
        (st = op_check_ref(w, 0, "matmul", "w")))
        return st;
    if (op_ref_avail(w) < wb)
        return lgpu_set_error(LGPU_ERANGE, "matmul: W of %u rows (%s, K = %u) needs %zu bytes from offset %zu, buffer "
                              "has %zu", p->N, tname, p->K, wb, w.off, op_ref_avail(w));

    if (lgpu_exec_is_host(ex)) {
        if ((st = op_check_ref(w, wb, "matmul", "w"))) return st;
        const void *side = wt.nf4 ? lgpu_ref_host(wt.side) : NULL;
        if (side && ((const lgpu_nf4_side *)side)->n_blocks < lgpu_nf4_blocks((int64_t)p->N * p->K))
            return lgpu_set_error(LGPU_EINVAL, "matmul: the side table covers %u blocks, W has %lld",
                                  ((const lgpu_nf4_side *)side)->n_blocks,
                                  (long long)lgpu_nf4_blocks((int64_t)p->N * p->K));
        lgpu_ref_matmul(p, lgpu_ref_host(w), side, lgpu_ref_host(x), lgpu_ref_host(y), lgpu_exec_threads(ex));
        return 0;
    }

    const lgpu_dev_caps *caps = op_caps(ex);
    if ((st = op_check_storage(caps, p->wtype, "matmul", "weights"))) return st;
    /* NF4's vec kernel reads whole words: the buffer must hold W's last one
     * (else the tiled kernel, which reads bytes) */
    plan pl = {.tname = tname, .row_bytes = wt.unit_bytes,
               .vec_ok_w = !wt.nf4 || op_ref_avail(w) >= (wb + WORD_BYTES - 1) / WORD_BYTES * WORD_BYTES};
    if ((st = make_plan(ex, p, &pl))) return st;
    if (wt.nf4) pl.spec[pl.n_spec++] = wt.compute_type; /* the shaders' NF4_COMPUTE, after their own constants */

    mm_ctx c = {ex, caps, p, &pl, w, x, y, xb, yb, &wt};
    return op_each_segment_units(w, p->N, wt.unit_rows, wt.unit_bytes, wb, caps->min_storage_align, "matmul", "W",
                                 mm_segment, &c);
}
