/* The huggingface_hub cache layout: repo folders, refs, snapshot symlinks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/grow.h"
#include "hub/hub_internal.h"

#include <stdarg.h>

int lgpu_hub_pathf(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) return lgpu_set_error(LGPU_ERANGE, "hub: path too long: %.200s...", out);
    return 0;
}

int lgpu_hub_repo_dir(const hub_ctx *h, const char *repo, char *out, size_t cap) {
    const char *slash = strchr(repo, '/');
    if (!slash) return lgpu_set_error(LGPU_EINVAL, "hub: repo id '%s' is not ORG/NAME", repo);
    return lgpu_hub_pathf(out, cap, "%s/models--%.*s--%s", h->cache, (int)(slash - repo), repo, slash + 1);
}

int lgpu_hub_mkdirs(const char *dir) {
    char p[HUB_PATH];
    if (lgpu_hub_pathf(p, sizeof p, "%s", dir)) return LGPU_ERANGE;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0755) && errno != EEXIST) return lgpu_set_error(LGPU_EIO, "hub: mkdir %s: %s", p, strerror(errno));
        *s = c;
        if (!c) return 0;
    }
}

int lgpu_hub_mkparents(const char *path) {
    char d[HUB_PATH];
    if (lgpu_hub_pathf(d, sizeof d, "%s", path)) return LGPU_ERANGE;
    char *slash = strrchr(d, '/');
    if (!slash || slash == d) return 0;
    *slash = 0;
    return lgpu_hub_mkdirs(d);
}

static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

bool lgpu_hub_safe_name(const char *s) {
    if (!s[0] || !strcmp(s, ".") || !strcmp(s, "..")) return false;
    for (; *s; s++)
        if (!name_char(*s)) return false;
    return true;
}

bool lgpu_hub_safe_relpath(const char *s) {
    if (!s[0] || s[0] == '/') return false;
    for (const char *p = s;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return false;
        if (memchr(p, '\\', n)) return false;
        if (!e) return true;
        p = e + 1;
    }
}

bool lgpu_hub_is_commit(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
    return n == 40;
}

/* Writes data to path via a temporary file + rename so readers never see a
 * half-written file. */
static int write_atomic(const char *path, const char *data) {
    char tmp[HUB_PATH + 32];
    if (lgpu_hub_pathf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid())) return LGPU_ERANGE;
    FILE *f = fopen(tmp, "wb");
    if (!f) return lgpu_set_error(LGPU_EIO, "hub: cannot write %s: %s", tmp, strerror(errno));
    size_t n = strlen(data);
    bool ok = fwrite(data, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return lgpu_set_error(LGPU_EIO, "hub: cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

int lgpu_hub_write_ref(const char *repo_dir, const char *revision, const char *commit) {
    char p[HUB_PATH];
    if (lgpu_hub_pathf(p, sizeof p, "%s/refs/%s", repo_dir, revision)) return LGPU_ERANGE;
    /* huggingface_hub keeps the file content free of a newline; do the same */
    char old[128] = "";
    FILE *f = fopen(p, "rb");
    if (f) {
        size_t n = fread(old, 1, sizeof old - 1, f);
        old[n] = 0;
        fclose(f);
        if (!strcmp(old, commit)) return 0;
    }
    int st = lgpu_hub_mkparents(p);
    return st ? st : write_atomic(p, commit);
}

int lgpu_hub_read_ref(const char *repo_dir, const char *revision, char *commit, size_t cap) {
    char p[HUB_PATH];
    struct stat sb;
    if (lgpu_hub_is_commit(revision)) {
        if (!lgpu_hub_pathf(p, sizeof p, "%s/snapshots/%s", repo_dir, revision) && !stat(p, &sb) && S_ISDIR(sb.st_mode)) {
            snprintf(commit, cap, "%s", revision);
            return 0;
        }
    }
    if (lgpu_hub_pathf(p, sizeof p, "%s/refs/%s", repo_dir, revision)) return LGPU_ERANGE;
    FILE *f = fopen(p, "rb");
    if (!f) return lgpu_set_error(LGPU_ENOTFOUND, "hub: revision '%s' is not in the cache (%s)", revision, p);
    char buf[128];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
    buf[n] = 0;
    if (!lgpu_hub_safe_name(buf) || n >= cap) return lgpu_set_error(LGPU_EFORMAT, "hub: %s: bad commit id '%s'", p, buf);
    memcpy(commit, buf, n + 1);
    return 0;
}

int lgpu_hub_link_snapshot(const char *repo_dir, const char *commit, const char *file, const char *etag) {
    char ptr[HUB_PATH], target[HUB_PATH], tmp[HUB_PATH + 32];
    if (lgpu_hub_pathf(ptr, sizeof ptr, "%s/snapshots/%s/%s", repo_dir, commit, file)) return LGPU_ERANGE;
    /* relative like os.path.relpath in huggingface_hub: one "../" per
     * directory between the pointer and the repo folder */
    size_t depth = 0;
    for (const char *s = file; *s; s++) depth += *s == '/';
    if (depth > 64) return lgpu_set_error(LGPU_EINVAL, "hub: %s is nested too deeply", file);
    char ups[3 * 66 + 1] = "";
    for (size_t i = 0; i < depth + 2; i++) strcat(ups, "../");
    if (lgpu_hub_pathf(target, sizeof target, "%sblobs/%s", ups, etag)) return LGPU_ERANGE;
    char cur[HUB_PATH];
    ssize_t n = readlink(ptr, cur, sizeof cur - 1);
    if (n >= 0) {
        cur[n] = 0;
        if (!strcmp(cur, target)) return 0;
    }
    int st = lgpu_hub_mkparents(ptr);
    if (st) return st;
    if (lgpu_hub_pathf(tmp, sizeof tmp, "%s.tmp.%ld", ptr, (long)getpid())) return LGPU_ERANGE;
    unlink(tmp);
    if (symlink(target, tmp) || rename(tmp, ptr)) {
        int e = errno;
        unlink(tmp);
        return lgpu_set_error(LGPU_EIO, "hub: cannot link %s -> %s: %s", ptr, target, strerror(e));
    }
    return 0;
}

int lgpu_hub_strlist_push(hub_strlist *l, const char *s) {
    int st = LGPU_GROW(l->v, l->cap, l->n + 1, 16, "hub file list");
    if (st) return st;
    if (!(l->v[l->n] = strdup(s))) return lgpu_set_error(LGPU_ENOMEM, "hub: out of memory");
    l->n++;
    return 0;
}

bool lgpu_hub_strlist_has(const hub_strlist *l, const char *s) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) return true;
    return false;
}

void lgpu_hub_strlist_free(hub_strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    *l = (hub_strlist){0};
}

static int walk(const char *root, const char *rel, hub_strlist *out, int depth) {
    char dir[HUB_PATH];
    if (lgpu_hub_pathf(dir, sizeof dir, "%s%s%s", root, rel[0] ? "/" : "", rel)) return LGPU_ERANGE;
    DIR *d = opendir(dir);
    if (!d) return lgpu_set_error(LGPU_ENOTFOUND, "hub: cannot open %s: %s", dir, strerror(errno));
    int st = 0;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || !strcmp(e->d_name, ".."))) continue;
        if (strstr(e->d_name, ".tmp.")) continue; /* someone's half-made link */
        char r[HUB_PATH], full[HUB_PATH];
        struct stat sb;
        if ((st = lgpu_hub_pathf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name)) ||
            (st = lgpu_hub_pathf(full, sizeof full, "%s/%s", root, r)))
            break;
        if (stat(full, &sb)) continue; /* dangling link: blob missing */
        if (S_ISDIR(sb.st_mode)) {
            if (depth < 16) st = walk(root, r, out, depth + 1);
        } else if (S_ISREG(sb.st_mode)) {
            st = lgpu_hub_strlist_push(out, r);
        }
    }
    closedir(d);
    return st;
}

int lgpu_hub_snapshot_files(const char *repo_dir, const char *commit, hub_strlist *out) {
    char root[HUB_PATH];
    if (lgpu_hub_pathf(root, sizeof root, "%s/snapshots/%s", repo_dir, commit)) return LGPU_ERANGE;
    return walk(root, "", out, 0);
}
