/* Tokenizing examples (tokens.h). The text is tokenized whole, as the model
 * will see it at inference, and each token is then placed in the text by
 * spelling out the pieces: the loss mask follows character spans, so it is
 * right whatever merges happen at the border of prompt and response. A
 * token that reaches into the response counts (as in transformers'
 * return_assistant_tokens_mask): "A: " + "Mmm" tokenized as "A", ":", " M",
 * "mm" counts " M", without which the answer's first letter is never
 * learnt. */
#include "train/tokens.h"

#include "core/grow.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool piece_at(const char *text, size_t len, size_t pos, const char *piece, size_t n) {
    return n <= len - pos && !memcmp(text + pos, piece, n);
}

int lgpu_ds_token_spans(const lgpu_tokenizer *tok, const char *text, size_t len, const int32_t *ids, size_t n,
                        lgpu_ds_span *spans) {
    char stack_buf[256];
    char *piece = stack_buf;
    size_t piece_cap = sizeof stack_buf, pos = 0;
    /* SentencePiece puts one "▁" before each run of text that starts the
     * input or follows a special token; it is in a piece but not in the text */
    bool dummy_space = true;
    int rc = 0;
    for (size_t j = 0; j < n && !rc; j++) {
        size_t pn;
        rc = lgpu_tokenizer_piece(tok, ids[j], true, piece, piece_cap, &pn);
        if (rc == LGPU_EFULL) {
            char *big = malloc(pn);
            if (!big) {
                rc = lgpu_set_error(LGPU_ENOMEM, "dataset: out of memory");
                break;
            }
            if (piece != stack_buf) free(piece);
            piece = big, piece_cap = pn;
            rc = lgpu_tokenizer_piece(tok, ids[j], true, piece, piece_cap, &pn);
        }
        if (rc) break;
        lgpu_token_type type = lgpu_tokenizer_token_type(tok, ids[j]);
        bool special = type == LGPU_TOKEN_CONTROL || type == LGPU_TOKEN_USER_DEFINED;
        /* whitespace a special token's lstrip/rstrip took out of the text */
        size_t ws = pos;
        while (ws < len && !piece_at(text, len, ws, piece, pn) && isspace((unsigned char)text[ws])) ws++;
        if (piece_at(text, len, pos, piece, pn)) {
            spans[j].start = pos;
            pos += pn;
        } else if (dummy_space && pn && piece[0] == ' ' && piece_at(text, len, pos, piece + 1, pn - 1)) {
            spans[j].start = pos;
            pos += pn - 1;
            spans[j].end = pos;
            dummy_space = false;
            continue;
        } else if (special && ws < len && piece_at(text, len, ws, piece, pn)) {
            spans[j].start = ws;
            pos = ws + pn;
        } else if (type == LGPU_TOKEN_UNKNOWN && pos < len) {
            spans[j].start = pos; /* <unk> standing for a byte no token has */
            pos++;
        } else {
            rc = lgpu_set_error(LGPU_EFORMAT,
                                "dataset: token %zu (id %d) does not spell the text at byte %zu: cannot place the "
                                "tokens in the text to mask them",
                                j, ids[j], pos);
            break;
        }
        spans[j].end = pos;
        if (special) dummy_space = true;
    }
    if (piece != stack_buf) free(piece);
    return rc;
}

static int push_id(lgpu_tokens *t, int32_t id) {
    int rc = LGPU_GROW(t->ids, t->cap, t->n + 1, 64, "token ids");
    if (!rc) t->ids[t->n++] = id;
    return rc;
}

/* Whether token span t overlaps a response span; a token that spells
 * nothing of the text (a lone dummy-prefix "▁") goes with the text after it. */
static bool in_response(const lgpu_ds_rendered *r, lgpu_ds_span t) {
    for (size_t s = 0; s < r->n_spans; s++) {
        const lgpu_ds_span *sp = &r->spans[s];
        if (t.end > t.start ? t.start < sp->end && t.end > sp->start : t.start >= sp->start && t.start < sp->end)
            return true;
    }
    return false;
}

int lgpu_ds_tokenize(const lgpu_tokenizer *tok, const lgpu_ds_rendered *r, lgpu_tokens *ids, uint8_t **part,
                     size_t *part_cap) {
    size_t n0 = ids->n;
    int32_t bos = lgpu_tokenizer_bos(tok), eos = lgpu_tokenizer_eos(tok);
    int rc = 0;
    /* BOS as `lgpu run` / `lgpu chat` add it: first, unless the template wrote it */
    if (bos >= 0 && lgpu_tokenizer_add_bos(tok)) rc = push_id(ids, bos);
    size_t body = ids->n;
    if (!rc) rc = lgpu_tokenizer_encode(tok, r->text, r->len, false, r->parse_special, ids);
    if (!rc && body > n0 && ids->n > body && ids->ids[body] == bos) { /* the template's own BOS */
        memmove(ids->ids + n0, ids->ids + body, (ids->n - body) * sizeof *ids->ids);
        ids->n -= body - n0;
        body = n0;
    }
    lgpu_ds_span *spans = NULL;
    if (!rc && !(spans = malloc((ids->n - body + 1) * sizeof *spans)))
        rc = lgpu_set_error(LGPU_ENOMEM, "dataset: out of memory");
    if (!rc) rc = lgpu_ds_token_spans(tok, r->text, r->len, ids->ids + body, ids->n - body, spans);
    if (!rc && r->append_eos && eos >= 0) rc = push_id(ids, eos);
    if (!rc) rc = LGPU_GROW(*part, *part_cap, ids->n, 256, "dataset masks");
    if (!rc) {
        for (size_t j = n0; j < ids->n; j++) {
            uint8_t p;
            if (ids->ids[j] == bos) p = LGPU_DS_BOS;
            else if (j < body) p = LGPU_DS_PROMPT;
            else if (j - body < ids->n - body - (r->append_eos && eos >= 0)) p = in_response(r, spans[j - body]);
            else p = LGPU_DS_RESPONSE; /* the appended EOS */
            (*part)[j] = p;
        }
    }
    free(spans);
    if (rc) ids->n = n0;
    return rc;
}
