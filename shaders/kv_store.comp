#version 450
// Write K and V rows of T tokens into their paged-cache slots   (C twin: lgpu_ref_kv_store)
// One invocation per (token, element) (F32 pools). A token whose slot is invalid (negative
// position or block, block index past max_blocks, slot outside the pool
// binding) is skipped, so a bad block table never writes out of bounds.
// KV_F16: the pools hold F16 values; one invocation per (token, pair of
// elements) writes the pair as one uint (kv_dim is even).
#include "common.glsl"
#ifdef KV_F16
#include "kv_f16.glsl"
#define POOL_T uint
#define PER 2u // elements per pool word
#else
#define POOL_T float
#define PER 1u
#endif

layout(binding = 0) readonly buffer K { float k[]; };
layout(binding = 1) readonly buffer V { float v[]; };
layout(binding = 2) readonly buffer S { int tok_seq[]; };
layout(binding = 3) readonly buffer P { int tok_pos[]; };
layout(binding = 4) readonly buffer B { int block_table[]; };
layout(binding = 5) writeonly buffer KP { POOL_T k_pool[]; };
layout(binding = 6) writeonly buffer VP { POOL_T v_pool[]; };
layout(push_constant) uniform Params { uint T, kv_dim, src_stride, block_size, max_blocks; } p;

void main() {
    uint g = global_index(), words = p.kv_dim / PER; // pool words per token
    if (g >= p.T * words) return;
    uint e = g % words, t = g / words;
    int seq = tok_seq[t], pos = tok_pos[t];
    if (seq < 0 || pos < 0) return;
    uint blk = uint(pos) / p.block_size;
    if (blk >= p.max_blocks) return;
    uint bt = uint(seq) * p.max_blocks + blk;
    if (bt >= uint(block_table.length())) return;
    int b = block_table[bt];
    // slots per pool binding, checked before multiplying so nothing wraps
    uint n_slots = min(uint(k_pool.length()), uint(v_pool.length())) / words;
    if (b < 0 || uint(b) >= n_slots / p.block_size) return;
    uint dst = (uint(b) * p.block_size + uint(pos) % p.block_size) * words + e;
    uint src = t * p.src_stride + e * PER;
#ifdef KV_F16
    k_pool[dst] = pack_f16x2(k[src], k[src + 1]);
    v_pool[dst] = pack_f16x2(v[src], v[src + 1]);
#else
    k_pool[dst] = k[src];
    v_pool[dst] = v[src];
#endif
}
