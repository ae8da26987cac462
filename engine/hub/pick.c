/* Which files of a repo make "the model" when the spec names none. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hub/hub_internal.h"

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

static bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* True if the file's base name holds tag as a word: not preceded by a letter
 * or digit, not followed by one or by '_' ("Q4_0" matches "x-Q4_0.gguf" and
 * "x_q4_0.gguf", not "x-Q4_0_4_4.gguf"; "F16" does not match "BF16"). */
static bool has_tag(const char *path, const char *tag) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t m = strlen(tag);
    for (const char *p = base; *p; p++)
        if (!strncasecmp(p, tag, m) && (p == base || !alnum(p[-1])) && !alnum(p[m]) && p[m] != '_') return true;
    return false;
}

/* Preference among several .gguf files: small types the engine runs well first. */
static const char *const gguf_pref[] = {"Q4_0", "Q8_0", "Q4_K_M", "Q4_K_S", "Q6_K", "F16", "BF16", "F32"};

/* Multi-part files ("-00002-of-00003.gguf") cannot be loaded on their own. */
static bool is_split_part(const char *f) {
    const char *p = strstr(f, "-of-");
    return p && p - f >= 6 && p[-6] == '-' && ends_with(f, ".gguf");
}

static int pick_gguf(const char *repo, const hub_strlist *files, hub_strlist *fetch) {
    hub_strlist g = {0};
    int st = 0;
    for (size_t i = 0; i < files->n && !st; i++)
        if (ends_with(files->v[i], ".gguf") && !strcasestr(files->v[i], "mmproj") && !is_split_part(files->v[i]))
            st = lgpu_hub_strlist_push(&g, files->v[i]);
    if (!st && g.n == 0) st = LGPU_ENOTFOUND; /* caller tries safetensors */
    const char *best = g.n == 1 ? g.v[0] : NULL;
    for (size_t k = 0; !st && !best && k < sizeof gguf_pref / sizeof gguf_pref[0]; k++)
        for (size_t i = 0; i < g.n; i++)
            if (has_tag(g.v[i], gguf_pref[k]) && (!best || strcmp(g.v[i], best) < 0)) best = g.v[i];
    if (!st && !best) {
        char list[1024] = "";
        for (size_t i = 0, o = 0; i < g.n && o < sizeof list - 1; i++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", g.v[i]);
        st = lgpu_set_error(LGPU_EINVAL, "%s has %zu .gguf files and none of the preferred types; name one as %s:FILE (%s)",
                            repo, g.n, repo, list);
    }
    if (!st) st = lgpu_hub_strlist_push(fetch, best);
    lgpu_hub_strlist_free(&g);
    return st;
}

int lgpu_hub_pick(const char *repo, const hub_strlist *files, hub_strlist *fetch, bool *is_dir) {
    *is_dir = false;
    int st = pick_gguf(repo, files, fetch);
    if (st != LGPU_ENOTFOUND) return st;
    bool st_single = lgpu_hub_strlist_has(files, "model.safetensors");
    bool st_index = lgpu_hub_strlist_has(files, "model.safetensors.index.json");
    if (!lgpu_hub_strlist_has(files, "config.json") || (!st_single && !st_index))
        return lgpu_set_error(LGPU_ENOTFOUND,
                              "%s has no .gguf file and no config.json + model.safetensors[.index.json]; "
                              "name a file as %s:FILE",
                              repo, repo);
    static const char *const extras[] = {"config.json",           "tokenizer.json",          "tokenizer_config.json",
                                         "generation_config.json", "special_tokens_map.json", "tokenizer.model"};
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++)
        if (lgpu_hub_strlist_has(files, extras[i]) && (st = lgpu_hub_strlist_push(fetch, extras[i]))) return st;
    *is_dir = true;
    return lgpu_hub_strlist_push(fetch, st_single ? "model.safetensors" : "model.safetensors.index.json");
}

int lgpu_hub_index_shards(const char *index_path, hub_strlist *out) {
    json_error_t je;
    json_t *root = json_load_file(index_path, 0, &je);
    if (!root) return lgpu_set_error(LGPU_EFORMAT, "%s:%d: %s", index_path, je.line, je.text);
    json_t *map = json_object_get(root, "weight_map");
    int st = 0;
    if (!json_is_object(map)) st = lgpu_set_error(LGPU_EFORMAT, "%s: no \"weight_map\" object", index_path);
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        if (st) break;
        const char *f = json_string_value(v);
        if (!f || !lgpu_hub_safe_relpath(f))
            st = lgpu_set_error(LGPU_EFORMAT, "%s: weight_map[\"%s\"] is not a relative file name", index_path, key);
        else if (!lgpu_hub_strlist_has(out, f))
            st = lgpu_hub_strlist_push(out, f);
    }
    json_decref(root);
    return st;
}
