/* Binary max-heap of candidate merges (llama.cpp uses std::priority_queue
 * with the same order: best score / lowest rank first, ties by leftmost). */
#include "tok/tok_internal.h"
#include "core/grow.h"

#include <stdlib.h>

static bool before(const tok_bigram *a, const tok_bigram *b) {
    return a->key > b->key || (a->key == b->key && a->left < b->left);
}

int lgpu_tok_heap_push(tok_heap *h, tok_bigram b) {
    int st = LGPU_GROW(h->a, h->cap, h->n + 1, 64, "tokenizer merge queue");
    if (st) return st;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&b, &h->a[p])) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = b;
    return 0;
}

tok_bigram lgpu_tok_heap_pop(tok_heap *h) {
    tok_bigram top = h->a[0], last = h->a[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&h->a[c + 1], &h->a[c])) c++;
        if (!before(&h->a[c], &last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n) h->a[i] = last;
    return top;
}
