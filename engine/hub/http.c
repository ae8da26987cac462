/* HTTP helpers for the hub client: handle setup, header parsing, error
 * mapping, HEAD with relative redirects, GET of JSON. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hub/hub_internal.h"
#include "core/grow.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
void lgpu_hub_curl_init(void) { pthread_once(&curl_once, curl_init_once); }

static void copy_value(char *dst, size_t cap, const char *v, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

/* One header line. A status line starts a new response (redirects): reset. */
static size_t on_header(char *line, size_t size, size_t nitems, void *ud) {
    hub_headers *hd = ud;
    size_t n = size * nitems, len = n;
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n')) len--;
    if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
        memset(hd, 0, sizeof *hd);
        hd->content_length = hd->linked_size = -1;
        const char *sp = memchr(line, ' ', len);
        if (sp) hd->status = strtol(sp + 1, NULL, 10);
        return n;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon) return n;
    size_t klen = (size_t)(colon - line);
    const char *v = colon + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    size_t vlen = (size_t)(end - v);
    static const struct {
        const char *key;
        size_t off, cap;
    } strs[] = {
        {"etag", offsetof(hub_headers, etag), sizeof(((hub_headers *)0)->etag)},
        {"x-linked-etag", offsetof(hub_headers, linked_etag), sizeof(((hub_headers *)0)->linked_etag)},
        {"x-repo-commit", offsetof(hub_headers, commit), sizeof(((hub_headers *)0)->commit)},
        {"location", offsetof(hub_headers, location), sizeof(((hub_headers *)0)->location)},
        {"x-error-code", offsetof(hub_headers, error_code), sizeof(((hub_headers *)0)->error_code)},
        {"x-error-message", offsetof(hub_headers, error_message), sizeof(((hub_headers *)0)->error_message)},
        {"content-range", offsetof(hub_headers, content_range), sizeof(((hub_headers *)0)->content_range)},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strlen(strs[i].key) == klen && !strncasecmp(line, strs[i].key, klen)) {
            copy_value((char *)hd + strs[i].off, strs[i].cap, v, vlen);
            return n;
        }
    if ((klen == 14 && !strncasecmp(line, "content-length", 14)) ||
        (klen == 13 && !strncasecmp(line, "x-linked-size", 13))) {
        char num[32];
        copy_value(num, sizeof num, v, vlen);
        char *e;
        long long x = strtoll(num, &e, 10);
        if (e != num && x >= 0) *(klen == 14 ? &hd->content_length : &hd->linked_size) = x;
    }
    return n;
}

CURL *lgpu_hub_easy(hub_ctx *h, const char *url, hub_headers *hd, struct curl_slist **list, char *errbuf) {
    lgpu_hub_curl_init();
    *list = NULL;
    memset(hd, 0, sizeof *hd);
    hd->content_length = hd->linked_size = -1;
    errbuf[0] = 0;
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    char auth[1100];
    struct curl_slist *l = curl_slist_append(NULL, "Accept-Encoding: identity"); /* sizes must be the raw ones */
    if (l && h->token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", h->token);
        struct curl_slist *l2 = curl_slist_append(l, auth);
        if (!l2) {
            curl_slist_free_all(l);
            l = NULL;
        }
    }
    if (!l) {
        curl_easy_cleanup(c);
        return NULL;
    }
    *list = l;
    curl_easy_setopt(c, CURLOPT_URL, url);
    /* custom headers: curl drops Authorization when a redirect changes host,
     * so signed CDN URLs never see the token */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "lgpu/" LGPU_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, hd);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    /* a stalled transfer (< 1 byte/s for 60 s) is a network error */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    return c;
}

int lgpu_hub_curl_error(hub_ctx *h, CURLcode rc, const char *errbuf, const char *url) {
    h->unreachable = true;
    return lgpu_set_error(LGPU_ENET, "cannot fetch %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

int lgpu_hub_http_error(hub_ctx *h, const hub_headers *hd, const char *what) {
    const char *msg = hd->error_message[0] ? hd->error_message : "";
    const char *sep = msg[0] ? " (" : "", *end = msg[0] ? ")" : "";
    if (!strcasecmp(hd->error_code, "RepoNotFound") || !strcasecmp(hd->error_code, "EntryNotFound") ||
        !strcasecmp(hd->error_code, "RevisionNotFound") || hd->status == 404) {
        /* the Hub answers 401 for a missing repo to anonymous clients */
        return lgpu_set_error(LGPU_ENOTFOUND, "repository or file not found: %s%s%s%s%s", what, sep, msg, end,
                              hd->status == 401 && !h->token[0] ? " — if it is private, set HF_TOKEN" : "");
    }
    if (hd->status == 401 || hd->status == 403) {
        const char *why = !strcasecmp(hd->error_code, "GatedRepo")
                              ? "is gated: accept its terms on the Hub, then set HF_TOKEN to a token of that account"
                          : h->token[0] ? "refused the token in HF_TOKEN (expired, or no access to this repo?)"
                                        : "needs authentication: set HF_TOKEN to a Hugging Face access token";
        return lgpu_set_error(LGPU_ENET, "HTTP %ld: %s %s%s%s%s", hd->status, what, why, sep, msg, end);
    }
    if (hd->status >= 500 || hd->status == 429) h->unreachable = true;
    return lgpu_set_error(LGPU_ENET, "HTTP %ld fetching %s%s%s%s", hd->status, what, sep, msg, end);
}

int lgpu_hub_head(hub_ctx *h, const char *url, const char *what, hub_headers *hd) {
    char cur[HUB_PATH];
    snprintf(cur, sizeof cur, "%s", url);
    for (int hop = 0; hop < 10; hop++) {
        char err[CURL_ERROR_SIZE];
        struct curl_slist *list;
        CURL *c = lgpu_hub_easy(h, cur, hd, &list, err);
        if (!c) return lgpu_set_error(LGPU_ENOMEM, "hub: curl handle for %s", url);
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        CURLcode rc = curl_easy_perform(c);
        char *next = NULL;
        if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &next);
        bool relative = rc == CURLE_OK && hd->status >= 300 && hd->status < 400 && hd->location[0] == '/' && next;
        if (relative) snprintf(cur, sizeof cur, "%s", next);
        curl_easy_cleanup(c);
        curl_slist_free_all(list);
        if (rc != CURLE_OK) return lgpu_hub_curl_error(h, rc, err, cur);
        if (relative) continue;
        if (hd->status >= 400) return lgpu_hub_http_error(h, hd, what);
        return 0;
    }
    return lgpu_set_error(LGPU_ENET, "hub: too many redirects for %s", url);
}

typedef struct {
    char *data;
    size_t len, cap;
} membuf;

static size_t on_body(char *p, size_t size, size_t nitems, void *ud) {
    membuf *b = ud;
    size_t n = size * nitems;
    if (b->len + n + 1 > (64u << 20)) return 0; /* a file list is never this big */
    if (LGPU_GROW(b->data, b->cap, b->len + n + 1, 16384, "HTTP body")) return 0;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

int lgpu_hub_get_json(hub_ctx *h, const char *url, const char *what, json_t **out) {
    *out = NULL;
    hub_headers hd;
    char err[CURL_ERROR_SIZE];
    struct curl_slist *list;
    membuf b = {0};
    CURL *c = lgpu_hub_easy(h, url, &hd, &list, err);
    if (!c) return lgpu_set_error(LGPU_ENOMEM, "hub: curl handle for %s", url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    curl_slist_free_all(list);
    int st = 0;
    if (rc != CURLE_OK) st = lgpu_hub_curl_error(h, rc, err, url);
    else if (hd.status >= 400) st = lgpu_hub_http_error(h, &hd, what);
    else {
        json_error_t je;
        *out = json_loadb(b.data ? b.data : "", b.len, 0, &je);
        if (!*out) st = lgpu_set_error(LGPU_EFORMAT, "hub: %s: bad JSON at line %d: %s", url, je.line, je.text);
    }
    free(b.data);
    return st;
}

int lgpu_hub_quote(const char *s, bool keep_slash, char *out, size_t cap) {
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                     strchr("-._~", *p) || (keep_slash && *p == '/');
        if (o + (plain ? 1 : 3) >= cap) return lgpu_set_error(LGPU_ERANGE, "hub: URL component too long: %s", s);
        if (plain) out[o++] = (char)*p;
        else o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
    }
    out[o] = 0;
    return 0;
}
