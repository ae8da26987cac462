/* lgpu_tokenizer_create: picks the loader from what `path` is. */
#include "tok/tok_internal.h"

#include "lgpu/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int load_dir(const char *dir, lgpu_tokenizer **out) {
    size_t n = strlen(dir);
    char *p = malloc(n + 32);
    if (!p) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
    int rc;
    snprintf(p, n + 32, "%s/tokenizer.json", dir);
    if (exists(p)) {
        rc = lgpu_tokenizer_from_hf(p, NULL, out);
    } else {
        snprintf(p, n + 32, "%s/tokenizer.bin", dir);
        rc = exists(p) ? lgpu_tokenizer_from_llama2c(p, 0, out)
                       : lgpu_set_error(LGPU_ENOTFOUND, "%s: no tokenizer.json or tokenizer.bin", dir);
    }
    free(p);
    return rc;
}

int lgpu_tokenizer_create(const char *path, lgpu_tokenizer **out) {
    if (!path || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_tokenizer_create: NULL argument");
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb)) return lgpu_set_error(LGPU_ENOTFOUND, "%s: no such file or directory", path);
    if (S_ISDIR(sb.st_mode)) return load_dir(path, out);
    FILE *f = fopen(path, "rb");
    if (!f) return lgpu_set_error(LGPU_EIO, "%s: cannot open", path);
    unsigned char head[16] = {0};
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got >= 4 && !memcmp(head, "GGUF", 4)) {
        lgpu_gguf *g;
        int rc = lgpu_gguf_create(path, &g);
        if (rc) return rc;
        rc = lgpu_tokenizer_from_gguf(g, out);
        lgpu_gguf_destroy(g);
        return rc;
    }
    size_t i = 0;
    while (i < got && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t')) i++;
    if (i < got && head[i] == '{') return lgpu_tokenizer_from_hf(path, NULL, out);
    size_t n = strlen(path);
    if (n > 6 && !strcmp(path + n - 6, ".model"))
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: SentencePiece .model files are not read; use the GGUF, "
                              "tokenizer.json or llama2.c tokenizer.bin", path);
    return lgpu_tokenizer_from_llama2c(path, 0, out);
}
