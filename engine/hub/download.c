/* One file into the cache, the way huggingface_hub's hf_hub_download does:
 * HEAD for commit/etag/size, then GET into blobs/<etag>.incomplete (resuming
 * with Range when a partial file is there), verify size and, for LFS files
 * whose etag is the sha256, the digest; rename into place; link the snapshot. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hub/hub_internal.h"
#include "hub/sha256.h"

/* "W/\"abc\"" -> "abc" */
static void normalize_etag(const char *in, char *out, size_t cap) {
    if (!strncmp(in, "W/", 2)) in += 2;
    size_t n = strlen(in);
    if (n >= 2 && in[0] == '"' && in[n - 1] == '"') in++, n -= 2;
    if (n >= cap) n = cap - 1;
    memcpy(out, in, n);
    out[n] = 0;
}

static bool is_sha256(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
    return n == 64;
}

typedef struct {
    CURL *curl;
    const hub_headers *hd;
    int fd;
    int64_t have, expected; /* bytes in the .incomplete file; expected size or -1 */
    int64_t got;            /* bytes received in this attempt */
    lgpu_sha256 sha;
    bool hashing, started, discard;
    int err; /* LGPU code recorded by the write callback */
    hub_progress prog;
    const char *path;
} xfer;

static int restart_file(xfer *x) {
    if (ftruncate(x->fd, 0)) return lgpu_set_error(LGPU_EIO, "hub: truncate %s: %s", x->path, strerror(errno));
    x->have = 0;
    lgpu_sha256_init(&x->sha);
    x->prog.offset = 0;
    return 0;
}

static size_t on_data(char *p, size_t size, size_t nitems, void *ud) {
    xfer *x = ud;
    size_t n = size * nitems;
    if (!x->started) {
        x->started = true;
        long code = 0;
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code == 206) {
            long long start = -1;
            if (sscanf(x->hd->content_range, "bytes %lld-", &start) != 1 || start != x->have) {
                x->err = lgpu_set_error(LGPU_EIO, "hub: asked to resume %s at byte %lld, server sent Content-Range '%s'",
                                        x->path, (long long)x->have, x->hd->content_range);
                return 0;
            }
        } else if (code == 200) {
            if (x->have && (x->err = restart_file(x))) return 0; /* server ignored Range: start over */
        } else {
            x->discard = true; /* an error page: not file data */
        }
    }
    if (x->discard) return n;
    if (x->expected >= 0 && x->have + (int64_t)n > x->expected) {
        x->err = lgpu_set_error(LGPU_EIO, "hub: %s: server sent more than the expected %lld bytes", x->path,
                                (long long)x->expected);
        return 0;
    }
    for (size_t off = 0; off < n;) {
        ssize_t w = pwrite(x->fd, p + off, n - off, (off_t)(x->have + (int64_t)off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            x->err = lgpu_set_error(LGPU_EIO, "hub: write %s: %s", x->path, strerror(errno));
            return 0;
        }
        off += (size_t)w;
    }
    if (x->hashing) lgpu_sha256_update(&x->sha, p, n);
    x->have += (int64_t)n;
    x->got += (int64_t)n;
    return n;
}

/* Hashes the bytes already in the partial file so the digest covers all of it. */
static int hash_existing(xfer *x) {
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    if (!buf) return lgpu_set_error(LGPU_ENOMEM, "hub: out of memory hashing %s", x->path);
    int st = 0;
    for (int64_t off = 0; !st && off < x->have;) {
        ssize_t r = pread(x->fd, buf, CHUNK, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) st = lgpu_set_error(LGPU_EIO, "hub: read %s: %s", x->path, r ? strerror(errno) : "short file");
        else lgpu_sha256_update(&x->sha, buf, (size_t)r), off += r;
    }
    free(buf);
    return st;
}

static bool transient(CURLcode rc) {
    switch (rc) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_COULDNT_CONNECT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return false;
    }
}

/* GET url into partial (resuming), with retries. Leaves a complete, unverified file. */
static int transfer(hub_ctx *h, const char *url, const char *what, xfer *x) {
    bool restarted = false;
    for (int attempt = 0;; attempt++) {
        if (x->expected >= 0 && x->have == x->expected) return 0;
        hub_headers hd;
        char err[CURL_ERROR_SIZE], range[32];
        struct curl_slist *list;
        CURL *c = lgpu_hub_easy(h, url, &hd, &list, err);
        if (!c) return lgpu_set_error(LGPU_ENOMEM, "hub: curl handle for %s", url);
        x->curl = c;
        x->hd = &hd;
        x->got = 0;
        x->started = x->discard = false;
        x->err = 0;
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
        if (x->have > 0) {
            snprintf(range, sizeof range, "%lld-", (long long)x->have);
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        lgpu_hub_progress_begin(&x->prog, h->progress, what, x->expected, x->have);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, lgpu_hub_progress_cb);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x->prog);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        CURLcode rc = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
        curl_slist_free_all(list);
        bool ok = rc == CURLE_OK && (code == 200 || code == 206);
        lgpu_hub_progress_end(&x->prog, ok);
        if (x->err) return x->err;
        if (ok) return 0;
        if (rc == CURLE_OK && code == 416 && x->have > 0 && !restarted) {
            /* our partial file is longer than the server's: it changed, restart */
            int st = restart_file(x);
            if (st) return st;
            restarted = true;
            continue;
        }
        if (rc == CURLE_OK) return lgpu_hub_http_error(h, &hd, what);
        if (!transient(rc) || attempt >= h->retries) {
            int st = lgpu_hub_curl_error(h, rc, err, url);
            if (x->have > 0) {
                char why[1024];
                snprintf(why, sizeof why, "%s", lgpu_last_error());
                lgpu_set_error(st, "%s; %lld bytes kept in %s, run again to resume", why, (long long)x->have, x->path);
            }
            return st;
        }
        lgpu_log(LGPU_LOG_WARN, "hub: download of %s broke off at %lld bytes (%s); resuming", what, (long long)x->have,
                 err[0] ? err : curl_easy_strerror(rc));
        if (x->got == 0) { /* no progress: back off a little before the next try */
            struct timespec ts = {0, 250000000L * (attempt + 1)};
            nanosleep(&ts, NULL);
        }
    }
}

/* Downloads the blob under an exclusive lock (other processes fetching the
 * same blob wait, then find it done). */
static int download_blob(hub_ctx *h, const char *url, const char *what, const char *repo_dir, const char *etag,
                         int64_t size) {
    char blob[HUB_PATH], part[HUB_PATH + 16], lock[HUB_PATH];
    const char *folder = strrchr(repo_dir, '/') + 1;
    if (lgpu_hub_pathf(blob, sizeof blob, "%s/blobs/%s", repo_dir, etag) ||
        lgpu_hub_pathf(part, sizeof part, "%s.incomplete", blob) ||
        lgpu_hub_pathf(lock, sizeof lock, "%s/.locks/%s/%s.lock", h->cache, folder, etag))
        return LGPU_ERANGE;
    int st = lgpu_hub_mkparents(lock);
    if (!st) st = lgpu_hub_mkparents(blob);
    if (st) return st;
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0) return lgpu_set_error(LGPU_EIO, "hub: open %s: %s", lock, strerror(errno));
    while (flock(lfd, LOCK_EX) && errno == EINTR) {}
    struct stat sb;
    if (!stat(blob, &sb) && (size < 0 || (int64_t)sb.st_size == size)) { /* another process finished it */
        close(lfd);
        return 0;
    }
    xfer x = {.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644), .expected = size, .path = part};
    if (x.fd < 0) {
        st = lgpu_set_error(LGPU_EIO, "hub: open %s: %s", part, strerror(errno));
        close(lfd);
        return st;
    }
    lgpu_sha256_init(&x.sha);
    x.hashing = is_sha256(etag);
    x.have = (int64_t)lseek(x.fd, 0, SEEK_END);
    if (size >= 0 && x.have > size && ftruncate(x.fd, 0))
        st = lgpu_set_error(LGPU_EIO, "hub: truncate %s: %s", part, strerror(errno));
    if (size >= 0 && x.have > size) x.have = 0; /* longer than the file: not ours */
    if (!st && x.have > 0) lgpu_log(LGPU_LOG_INFO, "hub: resuming %s at byte %lld", what, (long long)x.have);
    if (!st && x.hashing && x.have > 0) st = hash_existing(&x);
    if (!st) st = transfer(h, url, what, &x);
    bool corrupt = false;
    if (!st && size >= 0 && x.have != size) {
        st = lgpu_set_error(LGPU_EIO, "hub: %s: size mismatch: got %lld bytes, expected %lld", what,
                            (long long)x.have, (long long)size);
        corrupt = true;
    }
    if (!st && x.hashing) {
        char hex[65];
        lgpu_sha256_hex(&x.sha, hex);
        if (strcmp(hex, etag)) {
            st = lgpu_set_error(LGPU_EIO, "hub: %s: sha256 mismatch: got %s, expected %s", what, hex, etag);
            corrupt = true;
        }
    }
    close(x.fd);
    if (corrupt) unlink(part); /* resuming bad data would not help */
    if (!st && rename(part, blob)) st = lgpu_set_error(LGPU_EIO, "hub: rename %s: %s", part, strerror(errno));
    close(lfd); /* releases the lock */
    return st;
}

int lgpu_hub_fetch(hub_ctx *h, const char *repo, const char *file, const char *url_rev, char *path_out, size_t cap,
              char *commit_out, size_t commit_cap) {
    char what[1024], qrev[512], qfile[2048], url[HUB_PATH], repo_dir[HUB_PATH];
    snprintf(what, sizeof what, "%s:%s", repo, file);
    int st = lgpu_hub_quote(url_rev, false, qrev, sizeof qrev);
    if (!st) st = lgpu_hub_quote(file, true, qfile, sizeof qfile);
    if (!st) st = lgpu_hub_repo_dir(h, repo, repo_dir, sizeof repo_dir);
    if (st) return st;
    if (lgpu_hub_pathf(url, sizeof url, "%s/%s/resolve/%s/%s", h->endpoint, repo, qrev, qfile)) return LGPU_ERANGE;

    hub_headers hd;
    if ((st = lgpu_hub_head(h, url, what, &hd))) return st;
    char etag[256];
    normalize_etag(hd.linked_etag[0] ? hd.linked_etag : hd.etag, etag, sizeof etag);
    int64_t size = hd.linked_size >= 0 ? hd.linked_size : hd.content_length;
    if (!lgpu_hub_safe_name(hd.commit))
        return lgpu_set_error(LGPU_EFORMAT, "hub: %s: missing or bad X-Repo-Commit header '%s'", url, hd.commit);
    if (!lgpu_hub_safe_name(etag)) return lgpu_set_error(LGPU_EFORMAT, "hub: %s: missing or bad ETag '%s'", url, etag);

    char ptr[HUB_PATH], blob[HUB_PATH];
    if (lgpu_hub_pathf(ptr, sizeof ptr, "%s/snapshots/%s/%s", repo_dir, hd.commit, file) ||
        lgpu_hub_pathf(blob, sizeof blob, "%s/blobs/%s", repo_dir, etag))
        return LGPU_ERANGE;
    if ((st = lgpu_hub_mkdirs(repo_dir))) return st;
    if (strcmp(h->revision, hd.commit) && (st = lgpu_hub_write_ref(repo_dir, h->revision, hd.commit))) return st;

    struct stat sb;
    bool have_blob = !stat(blob, &sb) && (size < 0 || (int64_t)sb.st_size == size);
    if (!have_blob && (st = download_blob(h, url, what, repo_dir, etag, size))) return st;
    if ((st = lgpu_hub_link_snapshot(repo_dir, hd.commit, file, etag))) return st;
    if (strlen(ptr) >= cap) return lgpu_set_error(LGPU_ERANGE, "hub: path buffer too small for %s", ptr);
    memcpy(path_out, ptr, strlen(ptr) + 1);
    if (commit_out) snprintf(commit_out, commit_cap, "%s", hd.commit);
    return 0;
}
