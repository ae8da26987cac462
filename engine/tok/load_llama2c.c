/* llama2.c tokenizer.bin: int32 max_token_length, then per token float32
 * score, int32 byte length, bytes. Pieces have "▁" already turned into ' '
 * and BOS/EOS written "\n<s>\n"/"\n</s>\n"; ids 0/1/2 are unk/bos/eos by
 * convention. Loaded as an SPM vocabulary. */
#include "tok/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_all(const char *path, unsigned char **data, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return lgpu_set_error(LGPU_EIO, "%s: cannot open", path);
    int rc = 0;
    long fsize = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    if (fsize < 4 || fseek(f, 0, SEEK_SET)) rc = lgpu_set_error(LGPU_EFORMAT, "%s: not a llama2.c tokenizer (too short)", path);
    else if (!(*data = malloc((size_t)fsize))) rc = lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", path);
    else if (fread(*data, 1, (size_t)fsize, f) != (size_t)fsize) rc = lgpu_set_error(LGPU_EIO, "%s: read error", path);
    fclose(f);
    if (rc) {
        free(*data);
        *data = NULL;
    }
    *size = rc ? 0 : (size_t)fsize;
    return rc;
}

int lgpu_tokenizer_from_llama2c(const char *path, int n_vocab, lgpu_tokenizer **out) {
    if (!path || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_tokenizer_from_llama2c: NULL argument");
    *out = NULL;
    unsigned char *data = NULL;
    size_t size;
    int rc = read_all(path, &data, &size);
    if (rc) return rc;

    int32_t max_len;
    memcpy(&max_len, data, 4);
    if (max_len <= 0 || max_len > 4096) {
        free(data);
        return lgpu_set_error(LGPU_EFORMAT, "%s: max_token_length %d is not sane", path, max_len);
    }
    /* first pass: count tokens and validate the framing */
    int32_t count = 0;
    size_t off = 4;
    while (off < size) {
        int32_t len;
        if (size - off < 8) break;
        memcpy(&len, data + off + 4, 4);
        if (len < 0 || len > max_len || (size_t)len > size - off - 8) break;
        off += 8 + (size_t)len;
        count++;
    }
    if (off != size || count < 3) {
        free(data);
        return lgpu_set_error(LGPU_EFORMAT, "%s: token %d at byte %zu is truncated or malformed", path, count, off);
    }
    if (n_vocab > 0 && count != n_vocab) {
        free(data);
        return lgpu_set_error(LGPU_EFORMAT, "%s: %d tokens, the model's vocab_size is %d", path, count, n_vocab);
    }
    lgpu_tokenizer *t;
    if ((rc = lgpu_tok_alloc(&t, LGPU_TOK_SPM, count))) {
        free(data);
        return rc;
    }
    char *buf = malloc((size_t)max_len * 3 + 8);
    if (!buf) rc = lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", path);
    off = 4;
    for (int32_t id = 0; id < count && !rc; id++) {
        float score;
        int32_t len;
        memcpy(&score, data + off, 4);
        memcpy(&len, data + off + 4, 4);
        const char *s = (const char *)data + off + 8;
        off += 8 + (size_t)len;
        static const char *names[3] = {"<unk>", "<s>", "</s>"};
        static const int types[3] = {LGPU_TOKEN_UNKNOWN, LGPU_TOKEN_CONTROL, LGPU_TOKEN_CONTROL};
        if (id < 3) {
            rc = lgpu_tok_set(t, id, names[id], strlen(names[id]), NULL, 0, score, types[id]);
        } else if (lgpu_tok_is_byte_piece(s, (size_t)len)) {
            rc = lgpu_tok_set(t, id, s, (size_t)len, NULL, 0, score, LGPU_TOKEN_BYTE);
        } else {
            size_t n = 0; /* ' ' back to "▁" */
            for (int32_t i = 0; i < len; i++) {
                if (s[i] == ' ') memcpy(buf + n, "\xE2\x96\x81", 3), n += 3;
                else buf[n++] = s[i];
            }
            rc = lgpu_tok_set(t, id, buf, n, NULL, 0, score, LGPU_TOKEN_NORMAL);
        }
    }
    free(buf);
    free(data);
    t->unk = 0;
    t->bos = 1;
    t->eos = 2;
    if (!rc) rc = lgpu_tok_finalize(t);
    if (rc) {
        lgpu_tokenizer_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}
