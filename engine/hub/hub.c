/* Hub client entry points: settings from opts/environment, spec parsing,
 * and resolve = online (Hub API + downloads) with a fallback to the cache. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/hub_internal.h"

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

static bool env_true(const char *name) {
    const char *v = env(name);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true"));
}

/* Copies p to out expanding a leading "~/" like Python's expanduser. */
static int expand_home(const char *p, char *out, size_t cap) {
    const char *home = "";
    if (p[0] == '~' && (p[1] == '/' || !p[1])) {
        home = env("HOME");
        if (!home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw && pw->pw_dir ? pw->pw_dir : "/";
        }
        p++;
    }
    return lgpu_hub_pathf(out, cap, "%s%s", home, p);
}

/* $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface */
static int hf_home(char *out, size_t cap) {
    char tmp[HUB_PATH];
    if (env("HF_HOME")) return expand_home(env("HF_HOME"), out, cap);
    if (env("XDG_CACHE_HOME")) {
        if (lgpu_hub_pathf(tmp, sizeof tmp, "%s/huggingface", env("XDG_CACHE_HOME"))) return LGPU_ERANGE;
    } else {
        snprintf(tmp, sizeof tmp, "~/.cache/huggingface");
    }
    return expand_home(tmp, out, cap);
}

int lgpu_hub_cache_dir(const lgpu_hub_opts *o, char *out, size_t cap) {
    if (!out || !cap) return lgpu_set_error(LGPU_EINVAL, "lgpu_hub_cache_dir: no output buffer");
    const char *d = o && o->cache_dir && o->cache_dir[0] ? o->cache_dir : env("HF_HUB_CACHE");
    if (!d) d = env("HUGGINGFACE_HUB_CACHE"); /* the older name */
    if (d) return expand_home(d, out, cap);
    char home[HUB_PATH];
    int st = hf_home(home, sizeof home);
    if (st) return st;
    return lgpu_hub_pathf(out, cap, "%s/hub", home);
}

static void read_token(const lgpu_hub_opts *o, char *out, size_t cap) {
    out[0] = 0;
    if (o && o->token) {
        snprintf(out, cap, "%s", o->token);
        return;
    }
    const char *t = env("HF_TOKEN");
    if (!t) t = env("HUGGING_FACE_HUB_TOKEN");
    if (t) {
        snprintf(out, cap, "%s", t);
        return;
    }
    char path[HUB_PATH], home[HUB_PATH];
    if (env("HF_TOKEN_PATH")) {
        if (expand_home(env("HF_TOKEN_PATH"), path, sizeof path)) return;
    } else {
        if (hf_home(home, sizeof home)) return;
        if (lgpu_hub_pathf(path, sizeof path, "%s/token", home)) return;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return;
    if (!fgets(out, (int)cap, f)) out[0] = 0;
    fclose(f);
    out[strcspn(out, "\r\n \t")] = 0;
}

int lgpu_hub_ctx_init(hub_ctx *h, const lgpu_hub_opts *o) {
    static const lgpu_hub_opts none = {0};
    if (!o) o = &none;
    memset(h, 0, sizeof *h);
    const char *ep = o->endpoint && o->endpoint[0] ? o->endpoint : env("HF_ENDPOINT");
    snprintf(h->endpoint, sizeof h->endpoint, "%s", ep ? ep : "https://huggingface.co");
    for (size_t n = strlen(h->endpoint); n && h->endpoint[n - 1] == '/';) h->endpoint[--n] = 0;
    const char *rev = o->revision && o->revision[0] ? o->revision : "main";
    if (strlen(rev) >= sizeof h->revision || !lgpu_hub_safe_relpath(rev))
        return lgpu_set_error(LGPU_EINVAL, "hub: bad revision '%s'", rev);
    snprintf(h->revision, sizeof h->revision, "%s", rev);
    int st = lgpu_hub_cache_dir(o, h->cache, sizeof h->cache);
    if (st) return st;
    read_token(o, h->token, sizeof h->token);
    h->progress = o->progress == LGPU_HUB_PROGRESS_ON || (o->progress == LGPU_HUB_PROGRESS_AUTO && isatty(2));
    h->offline = o->offline || env_true("HF_HUB_OFFLINE");
    h->retries = o->retries == 0 ? 3 : o->retries < 0 ? 0 : o->retries;
    return 0;
}

/* The Hub's rules for an org or repo name: [A-Za-z0-9._-], at most 96,
 * no leading/trailing '-' or '.', no "--" or "..". */
static bool repo_part_ok(const char *s, size_t n) {
    if (n == 0 || n > 96 || strchr("-.", s[0]) || strchr("-.", s[n - 1])) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok || (i && (c == '-' || c == '.') && s[i - 1] == c)) return false;
    }
    return true;
}

int lgpu_hub_parse_spec(const char *spec, char *repo, size_t repo_cap, char *file, size_t file_cap) {
    if (!spec || !repo || !file) return lgpu_set_error(LGPU_EINVAL, "lgpu_hub_parse_spec: NULL argument");
    const char *colon = strchr(spec, ':');
    size_t rlen = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *slash = memchr(spec, '/', rlen);
    if (!slash || !repo_part_ok(spec, (size_t)(slash - spec)) ||
        !repo_part_ok(slash + 1, rlen - (size_t)(slash - spec) - 1))
        return lgpu_set_error(LGPU_EINVAL, "'%s' is not a Hub model spec ORG/NAME[:FILE]", spec);
    const char *f = colon ? colon + 1 : "";
    if (colon && !lgpu_hub_safe_relpath(f))
        return lgpu_set_error(LGPU_EINVAL, "'%s': bad file name '%s' after ':'", spec, f);
    if (rlen >= repo_cap || strlen(f) >= file_cap) return lgpu_set_error(LGPU_ERANGE, "'%s': too long", spec);
    memcpy(repo, spec, rlen);
    repo[rlen] = 0;
    memcpy(file, f, strlen(f) + 1);
    return 0;
}

bool lgpu_hub_is_spec(const char *s) {
    struct stat sb;
    if (!s || !s[0] || s[0] == '/' || s[0] == '.' || s[0] == '~' || !stat(s, &sb)) return false;
    char repo[256], file[HUB_PATH];
    int st = lgpu_hub_parse_spec(s, repo, sizeof repo, file, sizeof file);
    if (st) lgpu_clear_error();
    return st == 0;
}

static int set_out(const char *path, char *out, size_t cap) {
    size_t n = strlen(path);
    if (n >= cap) return lgpu_set_error(LGPU_ERANGE, "hub: output buffer of %zu bytes is too small for %s", cap, path);
    memcpy(out, path, n + 1);
    return 0;
}

/* Ask the Hub which files the revision has, pick, download. */
static int resolve_online(hub_ctx *h, const char *repo, const char *file, char *out, size_t cap) {
    char path[HUB_PATH], commit[128];
    if (file[0]) {
        int st = lgpu_hub_fetch(h, repo, file, h->revision, path, sizeof path, NULL, 0);
        return st ? st : set_out(path, out, cap);
    }
    char qrev[512], url[HUB_PATH];
    int st = lgpu_hub_quote(h->revision, false, qrev, sizeof qrev);
    if (st) return st;
    if (lgpu_hub_pathf(url, sizeof url, "%s/api/models/%s/revision/%s", h->endpoint, repo, qrev)) return LGPU_ERANGE;
    json_t *info;
    if ((st = lgpu_hub_get_json(h, url, repo, &info))) return st;
    const char *sha = json_string_value(json_object_get(info, "sha"));
    json_t *sib = json_object_get(info, "siblings");
    hub_strlist files = {0}, fetch = {0}, shards = {0};
    bool is_dir = false;
    if (!sha || !lgpu_hub_safe_name(sha) || !json_is_array(sib))
        st = lgpu_set_error(LGPU_EFORMAT, "hub: %s: no \"sha\" or \"siblings\" in the reply", url);
    snprintf(commit, sizeof commit, "%s", sha ? sha : "");
    size_t i;
    json_t *v;
    json_array_foreach(sib, i, v) {
        const char *f = json_string_value(json_object_get(v, "rfilename"));
        if (!st && f && lgpu_hub_safe_relpath(f)) st = lgpu_hub_strlist_push(&files, f);
    }
    json_decref(info);
    if (!st) st = lgpu_hub_pick(repo, &files, &fetch, &is_dir);
    /* files come from the listed commit, so a branch moving meanwhile can't mix versions */
    for (i = 0; !st && i < fetch.n; i++) {
        st = lgpu_hub_fetch(h, repo, fetch.v[i], commit, path, sizeof path, NULL, 0);
        if (!st && strstr(fetch.v[i], ".index.json")) st = lgpu_hub_index_shards(path, &shards);
    }
    for (i = 0; !st && i < shards.n; i++) st = lgpu_hub_fetch(h, repo, shards.v[i], commit, path, sizeof path, NULL, 0);
    if (!st && is_dir) { /* the snapshot directory itself */
        char repo_dir[HUB_PATH];
        st = lgpu_hub_repo_dir(h, repo, repo_dir, sizeof repo_dir);
        if (!st) st = lgpu_hub_pathf(path, sizeof path, "%s/snapshots/%s", repo_dir, commit);
    }
    if (!st) st = set_out(path, out, cap);
    lgpu_hub_strlist_free(&files);
    lgpu_hub_strlist_free(&fetch);
    lgpu_hub_strlist_free(&shards);
    return st;
}

/* The same answer from the cache alone. */
static int resolve_cached(hub_ctx *h, const char *repo, const char *file, char *out, size_t cap) {
    char repo_dir[HUB_PATH], commit[128], snap[HUB_PATH], path[HUB_PATH];
    int st = lgpu_hub_repo_dir(h, repo, repo_dir, sizeof repo_dir);
    if (st) return st;
    if ((st = lgpu_hub_read_ref(repo_dir, h->revision, commit, sizeof commit)) == LGPU_ENOTFOUND)
        return lgpu_set_error(st, "%s (revision %s) is not in the cache %s", repo, h->revision, h->cache);
    if (st) return st;
    if (lgpu_hub_pathf(snap, sizeof snap, "%s/snapshots/%s", repo_dir, commit)) return LGPU_ERANGE;
    struct stat sb;
    if (file[0]) {
        if (lgpu_hub_pathf(path, sizeof path, "%s/%s", snap, file)) return LGPU_ERANGE;
        if (stat(path, &sb)) return lgpu_set_error(LGPU_ENOTFOUND, "hub: %s:%s is not in the cache", repo, file);
        return set_out(path, out, cap);
    }
    hub_strlist files = {0}, fetch = {0}, shards = {0};
    bool is_dir = false;
    st = lgpu_hub_snapshot_files(repo_dir, commit, &files);
    if (!st) st = lgpu_hub_pick(repo, &files, &fetch, &is_dir);
    for (size_t i = 0; !st && i < fetch.n; i++) {
        st = lgpu_hub_pathf(path, sizeof path, "%s/%s", snap, fetch.v[i]);
        if (!st && strstr(fetch.v[i], ".index.json")) st = lgpu_hub_index_shards(path, &shards);
    }
    for (size_t i = 0; !st && i < shards.n; i++)
        if (!lgpu_hub_strlist_has(&files, shards.v[i]))
            st = lgpu_set_error(LGPU_ENOTFOUND, "hub: %s is only partly in the cache (no %s)", repo, shards.v[i]);
    if (!st) st = set_out(is_dir ? snap : path, out, cap);
    lgpu_hub_strlist_free(&files);
    lgpu_hub_strlist_free(&fetch);
    lgpu_hub_strlist_free(&shards);
    return st;
}

int lgpu_hub_resolve(const char *spec, char *out, size_t cap, const lgpu_hub_opts *opts) {
    if (!spec || !out || !cap) return lgpu_set_error(LGPU_EINVAL, "lgpu_hub_resolve: NULL argument");
    char repo[256], file[HUB_PATH];
    hub_ctx h;
    int st = lgpu_hub_parse_spec(spec, repo, sizeof repo, file, sizeof file);
    if (!st) st = lgpu_hub_ctx_init(&h, opts);
    if (st) return st;
    if (!h.offline) {
        st = resolve_online(&h, repo, file, out, cap);
        if (!st || !h.unreachable) return st;
        char why[1024];
        snprintf(why, sizeof why, "%s", lgpu_last_error());
        if (!resolve_cached(&h, repo, file, out, cap)) {
            lgpu_log(LGPU_LOG_WARN, "hub: %s; using the cached copy of %s", why, spec);
            lgpu_clear_error();
            return 0;
        }
        return lgpu_set_error(st, "%s", why); /* the network error says more than "not cached" */
    }
    st = resolve_cached(&h, repo, file, out, cap);
    if (st == LGPU_ENOTFOUND) {
        char why[1024];
        snprintf(why, sizeof why, "%s", lgpu_last_error());
        st = lgpu_set_error(st, "%s (offline mode: HF_HUB_OFFLINE or --offline; run `lgpu pull %s` online first)",
                            why, spec);
    }
    return st;
}

int lgpu_hub_download(const char *repo, const char *file, char *out, size_t cap, const lgpu_hub_opts *opts) {
    if (!repo || !file || !file[0]) return lgpu_set_error(LGPU_EINVAL, "lgpu_hub_download: repo and file required");
    char spec[HUB_PATH];
    if (snprintf(spec, sizeof spec, "%s:%s", repo, file) >= (int)sizeof spec)
        return lgpu_set_error(LGPU_ERANGE, "lgpu_hub_download: name too long");
    return lgpu_hub_resolve(spec, out, cap, opts);
}
