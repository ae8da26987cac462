/* Paged KV cache bookkeeping: block allocation, refcounts, prefix hashes.
 * See kv_cache.h for the policy. */
#include "model/kv_cache.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Chain hash of a block: depends on every token of the prefix up to and
 * including this block (through h_prev), hence also on its position. */
static uint64_t block_hash(uint64_t h_prev, const int32_t *tok, uint32_t n) {
    uint64_t h = mix64(h_prev ^ 0x9e3779b97f4a7c15ull);
    for (uint32_t i = 0; i < n; i++) h = mix64(h ^ ((uint64_t)(uint32_t)tok[i] + 0x632be59bd9b4e019ull * (i + 1)));
    return h | 1; /* never 0 */
}

/* ---- free list ---- */

static void fl_remove(lgpu_kv_cache *kv, int32_t b) {
    int32_t p = kv->fprev[b], n = kv->fnext[b];
    if (p >= 0) kv->fnext[p] = n; else kv->free_head = n;
    if (n >= 0) kv->fprev[n] = p; else kv->free_tail = p;
    kv->fprev[b] = kv->fnext[b] = -1;
    kv->n_free--;
}

static void fl_push(lgpu_kv_cache *kv, int32_t b, bool tail) {
    if (tail) {
        kv->fprev[b] = kv->free_tail;
        kv->fnext[b] = -1;
        if (kv->free_tail >= 0) kv->fnext[kv->free_tail] = b; else kv->free_head = b;
        kv->free_tail = b;
    } else {
        kv->fnext[b] = kv->free_head;
        kv->fprev[b] = -1;
        if (kv->free_head >= 0) kv->fprev[kv->free_head] = b; else kv->free_tail = b;
        kv->free_head = b;
    }
    kv->n_free++;
}

/* ---- hash map (bucket chains through hnext) ---- */

static uint32_t bucket_of(const lgpu_kv_cache *kv, uint64_t h) { return (uint32_t)(h & (kv->n_buckets - 1)); }

static void hmap_remove(lgpu_kv_cache *kv, int32_t b) {
    int32_t *p = &kv->bucket[bucket_of(kv, kv->hash[b])];
    while (*p >= 0 && *p != b) p = &kv->hnext[*p];
    if (*p == b) *p = kv->hnext[b];
    kv->hnext[b] = -1;
    kv->hashed[b] = 0;
}

static int32_t hmap_find(const lgpu_kv_cache *kv, uint64_t h, const int32_t *tok) {
    for (int32_t b = kv->bucket[bucket_of(kv, h)]; b >= 0; b = kv->hnext[b])
        if (kv->hash[b] == h && !memcmp(kv->toks + (size_t)b * kv->block_size, tok, kv->block_size * sizeof(int32_t)))
            return b;
    return -1;
}

static void hmap_insert(lgpu_kv_cache *kv, int32_t b, uint64_t h, const int32_t *tok) {
    uint32_t i = bucket_of(kv, h);
    kv->hash[b] = h;
    kv->hashed[b] = 1;
    memcpy(kv->toks + (size_t)b * kv->block_size, tok, kv->block_size * sizeof(int32_t));
    kv->hnext[b] = kv->bucket[i];
    kv->bucket[i] = b;
}

/* ---- blocks ---- */

static int32_t block_alloc(lgpu_kv_cache *kv) {
    int32_t b = kv->free_head;
    fl_remove(kv, b);
    if (kv->hashed[b]) hmap_remove(kv, b); /* evict the cached prefix it held */
    kv->ref[b] = 1;
    return b;
}

static void block_release(lgpu_kv_cache *kv, int32_t b) {
    if (--kv->ref[b] == 0) fl_push(kv, b, kv->hashed[b] != 0);
}

int lgpu_kv_init(lgpu_kv_cache *kv, uint32_t n_seq_max, uint32_t n_ctx, uint32_t block_size, uint32_t n_blocks) {
    memset(kv, 0, sizeof *kv);
    if (!n_seq_max || !n_ctx || !block_size || !n_blocks || n_blocks > INT32_MAX / block_size)
        return lgpu_set_error(LGPU_EINVAL, "kv cache: bad sizes (seqs %u, ctx %u, block %u, blocks %u)", n_seq_max,
                              n_ctx, block_size, n_blocks);
    kv->block_size = block_size;
    kv->n_blocks = n_blocks;
    kv->n_ctx = n_ctx;
    kv->n_seq_max = n_seq_max;
    kv->max_blocks = (n_ctx + block_size - 1) / block_size;
    kv->n_buckets = 16;
    while (kv->n_buckets < n_blocks) kv->n_buckets *= 2;
    kv->ref = calloc(n_blocks, sizeof *kv->ref);
    kv->hashed = calloc(n_blocks, 1);
    kv->hash = calloc(n_blocks, sizeof *kv->hash);
    kv->toks = calloc((size_t)n_blocks * block_size, sizeof *kv->toks);
    kv->fprev = malloc(n_blocks * sizeof *kv->fprev);
    kv->fnext = malloc(n_blocks * sizeof *kv->fnext);
    kv->hnext = malloc(n_blocks * sizeof *kv->hnext);
    kv->bucket = malloc(kv->n_buckets * sizeof *kv->bucket);
    kv->seq = calloc(n_seq_max, sizeof *kv->seq);
    if (!kv->ref || !kv->hashed || !kv->hash || !kv->toks || !kv->fprev || !kv->fnext || !kv->hnext || !kv->bucket ||
        !kv->seq)
        goto oom;
    for (uint32_t i = 0; i < n_seq_max; i++) {
        lgpu_kv_seq *s = &kv->seq[i];
        s->blocks = malloc(kv->max_blocks * sizeof *s->blocks);
        s->hashes = malloc(kv->max_blocks * sizeof *s->hashes);
        s->tokens = malloc((size_t)kv->max_blocks * block_size * sizeof *s->tokens);
        if (!s->blocks || !s->hashes || !s->tokens) goto oom;
    }
    for (uint32_t i = 0; i < kv->n_buckets; i++) kv->bucket[i] = -1;
    kv->free_head = kv->free_tail = -1;
    for (uint32_t b = 0; b < n_blocks; b++) {
        kv->hnext[b] = -1;
        fl_push(kv, (int32_t)b, true);
    }
    return 0;
oom:
    lgpu_kv_destroy(kv);
    return lgpu_set_error(LGPU_ENOMEM, "kv cache: out of host memory for %u blocks", n_blocks);
}

void lgpu_kv_destroy(lgpu_kv_cache *kv) {
    if (kv->seq)
        for (uint32_t i = 0; i < kv->n_seq_max; i++) {
            free(kv->seq[i].blocks);
            free(kv->seq[i].hashes);
            free(kv->seq[i].tokens);
        }
    free(kv->seq);
    free(kv->ref);
    free(kv->hashed);
    free(kv->hash);
    free(kv->toks);
    free(kv->fprev);
    free(kv->fnext);
    free(kv->hnext);
    free(kv->bucket);
    memset(kv, 0, sizeof *kv);
}

bool lgpu_kv_seq_valid(const lgpu_kv_cache *kv, int seq) {
    return seq >= 0 && (uint32_t)seq < kv->n_seq_max && kv->seq[seq].open;
}

int lgpu_kv_seq_create(lgpu_kv_cache *kv, int *seq) {
    for (uint32_t i = 0; i < kv->n_seq_max; i++)
        if (!kv->seq[i].open) {
            kv->seq[i].open = true;
            kv->seq[i].len = 0;
            kv->seq[i].n_blocks = 0;
            kv->seq[i].salt = 0;
            *seq = (int)i;
            return 0;
        }
    return lgpu_set_error(LGPU_EFULL, "all %u sequences are open", kv->n_seq_max);
}

void lgpu_kv_seq_destroy(lgpu_kv_cache *kv, int seq) {
    if (!lgpu_kv_seq_valid(kv, seq)) return;
    lgpu_kv_seq *s = &kv->seq[seq];
    /* Deepest block first: the prefix's first blocks, the most shareable,
     * end up last in the free list and are evicted last. */
    for (int32_t i = s->n_blocks - 1; i >= 0; i--) block_release(kv, s->blocks[i]);
    s->open = false;
    s->len = 0;
    s->n_blocks = 0;
}

uint32_t lgpu_kv_blocks_needed(const lgpu_kv_cache *kv, int seq, int32_t new_len) {
    int32_t need = (int32_t)((new_len + kv->block_size - 1) / kv->block_size) - kv->seq[seq].n_blocks;
    return need > 0 ? (uint32_t)need : 0;
}

void lgpu_kv_grow(lgpu_kv_cache *kv, int seq, int32_t new_len) {
    lgpu_kv_seq *s = &kv->seq[seq];
    uint32_t need = lgpu_kv_blocks_needed(kv, seq, new_len);
    for (uint32_t i = 0; i < need; i++) s->blocks[s->n_blocks++] = block_alloc(kv);
}

void lgpu_kv_shrink(lgpu_kv_cache *kv, int seq, int32_t n_blocks) {
    lgpu_kv_seq *s = &kv->seq[seq];
    while (s->n_blocks > n_blocks) block_release(kv, s->blocks[--s->n_blocks]);
}

void lgpu_kv_commit(lgpu_kv_cache *kv, int seq, const int32_t *tokens, int n) {
    lgpu_kv_seq *s = &kv->seq[seq];
    const int32_t bs = (int32_t)kv->block_size;
    memcpy(s->tokens + s->len, tokens, (size_t)n * sizeof *tokens);
    int32_t old = s->len;
    s->len += n;
    /* register every block completed by this append */
    for (int32_t bi = old / bs; (bi + 1) * bs <= s->len; bi++) {
        uint64_t h = block_hash(bi ? s->hashes[bi - 1] : s->salt, s->tokens + bi * bs, kv->block_size);
        s->hashes[bi] = h;
        int32_t b = s->blocks[bi];
        if (!kv->hashed[b] && hmap_find(kv, h, s->tokens + bi * bs) < 0) hmap_insert(kv, b, h, s->tokens + bi * bs);
    }
}

int lgpu_kv_reuse_prefix(lgpu_kv_cache *kv, int seq, const int32_t *tokens, int n) {
    if (!lgpu_kv_seq_valid(kv, seq)) return lgpu_set_error(LGPU_EINVAL, "reuse_prefix: sequence %d is not open", seq);
    lgpu_kv_seq *s = &kv->seq[seq];
    if (s->len != 0) return lgpu_set_error(LGPU_EINVAL, "reuse_prefix: sequence %d is not empty", seq);
    if (n < 0 || (n && !tokens)) return lgpu_set_error(LGPU_EINVAL, "reuse_prefix: bad token list");
    const int32_t bs = (int32_t)kv->block_size;
    uint64_t h = s->salt;
    /* k + bs < n: at least one token is left to compute (its logits are needed) */
    while (s->len + bs < n && s->len + bs <= (int32_t)kv->n_ctx) {
        const int32_t *tok = tokens + s->len;
        uint64_t hb = block_hash(h, tok, kv->block_size);
        int32_t b = hmap_find(kv, hb, tok);
        if (b < 0) break;
        if (kv->ref[b] == 0) fl_remove(kv, b);
        kv->ref[b]++;
        s->hashes[s->n_blocks] = hb;
        s->blocks[s->n_blocks++] = b;
        memcpy(s->tokens + s->len, tok, (size_t)bs * sizeof *tok);
        s->len += bs;
        h = hb;
    }
    return s->len;
}
