/* OpenAI logprobs shapes (see oai_format.h). Logprobs are of the raw model
 * distribution (before penalties, filters and temperature), as OpenAI's. */
#include "oai_format.h"

#include <math.h>
#include <stdlib.h>

#include "json_text.h"

/* -inf is not JSON: clamp to a very unlikely finite value. */
static json_t *lp_json(float lp) { return json_real(isfinite(lp) ? lp : -9999.0); }

static json_t *chat_entry(const lgpu_tokenizer *tok, int32_t id, float lp) {
    size_t n;
    char *piece = srv_token_piece(tok, id, &n);
    json_t *e = json_object();
    json_object_set_new(e, "token", srv_json_text(piece ? piece : "", piece ? n : 0));
    json_object_set_new(e, "logprob", lp_json(lp));
    json_object_set_new(e, "bytes", srv_json_bytes(piece ? piece : "", piece ? n : 0));
    free(piece);
    return e;
}

void oai_chat_logprobs_append(json_t *content, const lgpu_tokenizer *tok, const srv_tokinfo *t, int n) {
    for (int i = 0; i < n; i++) {
        json_t *e = chat_entry(tok, t[i].id, t[i].logprob), *top = json_array();
        for (int k = 0; k < t[i].n_top; k++) json_array_append_new(top, chat_entry(tok, t[i].top_id[k], t[i].top_lp[k]));
        json_object_set_new(e, "top_logprobs", top);
        json_array_append_new(content, e);
    }
}

json_t *oai_cmpl_logprobs_new(void) {
    json_t *lp = json_object();
    json_object_set_new(lp, "tokens", json_array());
    json_object_set_new(lp, "token_logprobs", json_array());
    json_object_set_new(lp, "top_logprobs", json_array());
    json_object_set_new(lp, "text_offset", json_array());
    return lp;
}

void oai_cmpl_logprobs_append(json_t *lp, const lgpu_tokenizer *tok, const srv_tokinfo *t, int n, size_t base) {
    json_t *toks = json_object_get(lp, "tokens"), *lps = json_object_get(lp, "token_logprobs"),
           *tops = json_object_get(lp, "top_logprobs"), *offs = json_object_get(lp, "text_offset");
    for (int i = 0; i < n; i++) {
        size_t len;
        char *piece = srv_token_piece(tok, t[i].id, &len);
        json_array_append_new(toks, srv_json_text(piece ? piece : "", piece ? len : 0));
        free(piece);
        json_array_append_new(lps, lp_json(t[i].logprob));
        json_t *top = json_object();
        for (int k = 0; k < t[i].n_top; k++) {
            char *p = srv_token_piece(tok, t[i].top_id[k], &len);
            json_t *key = srv_json_text(p ? p : "", p ? len : 0);
            json_object_set_new(top, json_string_value(key), lp_json(t[i].top_lp[k]));
            json_decref(key);
            free(p);
        }
        json_array_append_new(tops, top);
        json_array_append_new(offs, json_integer((json_int_t)(base + t[i].offset)));
    }
}
