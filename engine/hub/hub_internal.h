/* Internals shared by the hub client's files: the resolved settings of one
 * call, HTTP helpers (http.c), the cache layout (cache.c), model-file
 * picking (pick.c), downloads (download.c) and the progress bar (progress.c). */
#ifndef LGPU_HUB_INTERNAL_H
#define LGPU_HUB_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>

#include "lgpu/hub.h"

#define HUB_PATH 4096

/* Settings of one call, from opts and the environment. */
typedef struct hub_ctx {
    char endpoint[1024]; /* no trailing slash */
    char cache[HUB_PATH];
    char token[1024]; /* "" = none */
    char revision[256];
    bool progress, offline;
    int retries;
    /* set by the HTTP layer when the last failure means "Hub unreachable"
     * (transport error or 5xx): the caller may fall back to the cache */
    bool unreachable;
} hub_ctx;

int lgpu_hub_ctx_init(hub_ctx *h, const lgpu_hub_opts *opts);

/* ---- http.c ---- */
typedef struct hub_headers {
    long status;
    char etag[256], linked_etag[256], commit[128], location[2048];
    char error_code[64], error_message[256], content_range[128];
    int64_t content_length, linked_size; /* -1: absent */
} hub_headers;

/* curl_global_init once per process. */
void lgpu_hub_curl_init(void);
/* An easy handle for url with the Hub's headers (auth, user agent, identity
 * encoding), a header parser into hd and errbuf[CURL_ERROR_SIZE]. *list
 * must be freed with curl_slist_free_all after the transfer. */
CURL *lgpu_hub_easy(hub_ctx *h, const char *url, hub_headers *hd, struct curl_slist **list, char *errbuf);
/* Maps a curl failure to ENET (marks unreachable). */
int lgpu_hub_curl_error(hub_ctx *h, CURLcode rc, const char *errbuf, const char *url);
/* Maps an HTTP error status to an LGPU code and message about what
 * ("ORG/NAME:FILE" or "ORG/NAME"). */
int lgpu_hub_http_error(hub_ctx *h, const hub_headers *hd, const char *what);
/* HEAD url following only relative redirects (like huggingface_hub), so an
 * LFS file's X-Linked-Etag/X-Linked-Size are seen before the CDN redirect. */
int lgpu_hub_head(hub_ctx *h, const char *url, const char *what, hub_headers *hd);
/* GET url and parse the body as JSON. */
int lgpu_hub_get_json(hub_ctx *h, const char *url, const char *what, json_t **out);
/* Percent-encodes s (keeping '/' if keep_slash). */
int lgpu_hub_quote(const char *s, bool keep_slash, char *out, size_t cap);

/* ---- cache.c ---- */
/* snprintf for paths: ERANGE (with a detail) instead of silent truncation. */
int lgpu_hub_pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* <cache>/models--ORG--NAME */
int lgpu_hub_repo_dir(const hub_ctx *h, const char *repo, char *out, size_t cap);
/* mkdir -p of dir / of the directory containing path */
int lgpu_hub_mkdirs(const char *dir);
int lgpu_hub_mkparents(const char *path);
/* Safe single path component: [A-Za-z0-9._-]+, not "." or "..". */
bool lgpu_hub_safe_name(const char *s);
/* Safe relative path: no leading '/', no empty, "." or ".." components. */
bool lgpu_hub_safe_relpath(const char *s);
bool lgpu_hub_is_commit(const char *s); /* 40 hex digits */
int lgpu_hub_write_ref(const char *repo_dir, const char *revision, const char *commit);
/* The commit a revision points to in the cache (revision itself if it is a
 * cached commit). ENOTFOUND if unknown. */
int lgpu_hub_read_ref(const char *repo_dir, const char *revision, char *commit, size_t cap);
/* snapshots/<commit>/<file> -> ../../blobs/<etag> (relative, atomic replace) */
int lgpu_hub_link_snapshot(const char *repo_dir, const char *commit, const char *file, const char *etag);

typedef struct hub_strlist {
    char **v;
    size_t n, cap;
} hub_strlist;
int lgpu_hub_strlist_push(hub_strlist *l, const char *s);
bool lgpu_hub_strlist_has(const hub_strlist *l, const char *s);
void lgpu_hub_strlist_free(hub_strlist *l);
/* Files (relative paths) under snapshots/<commit> whose targets exist. */
int lgpu_hub_snapshot_files(const char *repo_dir, const char *commit, hub_strlist *out);

/* ---- pick.c ---- */
/* From a repo's file list picks what to fetch: a single .gguf (*is_dir
 * false) or the config/tokenizer files plus model.safetensors or its index
 * (*is_dir true; shards come from lgpu_hub_index_shards once the index is local). */
int lgpu_hub_pick(const char *repo, const hub_strlist *files, hub_strlist *fetch, bool *is_dir);
/* Distinct shard file names in a model.safetensors.index.json weight_map. */
int lgpu_hub_index_shards(const char *index_path, hub_strlist *out);

/* ---- download.c ---- */
/* Makes repo/file at url_rev (a branch or commit) present in the cache;
 * records refs/<h->revision> when that is not the commit itself. path_out
 * receives the snapshot path, commit_out (may be NULL) the commit. */
int lgpu_hub_fetch(hub_ctx *h, const char *repo, const char *file, const char *url_rev, char *path_out, size_t cap,
              char *commit_out, size_t commit_cap);

/* ---- progress.c ---- */
typedef struct hub_progress {
    bool enabled, tty;
    const char *name;
    int64_t total, offset; /* total file size (-1 unknown), bytes already on disk */
    int64_t now;           /* bytes received in this transfer */
    double t0, last;
} hub_progress;
void lgpu_hub_progress_begin(hub_progress *p, bool enabled, const char *name, int64_t total, int64_t offset);
/* CURLOPT_XFERINFOFUNCTION */
int lgpu_hub_progress_cb(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
void lgpu_hub_progress_end(hub_progress *p, bool ok);

#endif
