/* Hub client against a loopback fake of the Hugging Face Hub (civetweb, in
 * this process): file picking, cache layout, resume after a cut connection,
 * verification failures, HTTP errors, and offline use once the server is gone. */
#include "test_util.h"

#include <civetweb.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/sha256.h"
#include "lgpu/hub.h"

/* ---- the fake Hub ---- */

typedef struct {
    const char *name;
    unsigned char *data;
    size_t len;
    char sha[65];  /* sha256 of data: the LFS etag */
    bool lfs;      /* HEAD answers 302 to /cdn/<sha> with X-Linked-* headers */
    bool lie_size; /* HEAD claims 10 more bytes than GET sends */
    bool corrupt;  /* GET sends data with one byte flipped */
    bool no_range; /* GET ignores Range (always 200, whole file) */
} fake_file;

typedef struct {
    const char *repo, *commit;
    const char *token; /* gated: only "Bearer <token>" may read */
    fake_file files[8];
    int n;
} fake_repo;

static struct {
    struct mg_context *ctx;
    int port;
    fake_repo repos[4];
    int n_repos;
    pthread_mutex_t mu;
    /* cut mode: GETs of this file stop after cut_after body bytes, cuts_left times */
    const char *cut_file;
    size_t cut_after;
    int cuts_left;
    long long last_range; /* start of the last Range request, -1 if none */
    int n_range_gets, n_api;
    char last_auth[128];
    char tmp[256], cache[300];
} S;

static const char C_MODEL[] = "1111111111111111111111111111111111111111";
static const char C_ST[] = "2222222222222222222222222222222222222222";
static const char C_GATED[] = "3333333333333333333333333333333333333333";
static const char C_BIG[] = "4444444444444444444444444444444444444444";

static void sha_hex(const void *d, size_t n, char out[65]) {
    lgpu_sha256 c;
    lgpu_sha256_init(&c);
    lgpu_sha256_update(&c, d, n);
    lgpu_sha256_hex(&c, out);
}

static void add_file(fake_repo *r, const char *name, const char *text, size_t random_len, bool lfs) {
    fake_file *f = &r->files[r->n++];
    f->name = name;
    f->lfs = lfs;
    f->len = text ? strlen(text) : random_len;
    f->data = malloc(f->len + 1);
    if (text) memcpy(f->data, text, f->len);
    tu_rng rng;
    tu_rng_seed(&rng, (uint64_t)random_len * 31 + (uint64_t)r->n);
    for (size_t i = 0; !text && i < f->len; i++) f->data[i] = (unsigned char)tu_rng_u32(&rng);
    sha_hex(f->data, f->len, f->sha);
}

static fake_repo *find_repo(const char *uri, size_t len) {
    for (int i = 0; i < S.n_repos; i++)
        if (strlen(S.repos[i].repo) == len && !strncmp(uri, S.repos[i].repo, len)) return &S.repos[i];
    return NULL;
}

static fake_file *find_file(fake_repo *r, const char *name) {
    for (int i = 0; r && i < r->n; i++)
        if (!strcmp(r->files[i].name, name)) return &r->files[i];
    return NULL;
}

static int reply(struct mg_connection *c, int code, const char *headers, const char *body, bool head) {
    size_t n = body ? strlen(body) : 0;
    mg_printf(c, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", code, n, headers ? headers : "");
    if (!head && n) mg_write(c, body, n);
    return code;
}

/* The file body, with Range support, the cut mode and the fault flags. */
static int serve_data(struct mg_connection *c, fake_file *f, bool head) {
    const char *range = mg_get_header(c, "Range");
    long long start = 0;
    bool ranged = range && !f->no_range && sscanf(range, "bytes=%lld-", &start) == 1;
    pthread_mutex_lock(&S.mu);
    S.last_range = ranged ? start : -1;
    if (ranged) S.n_range_gets++;
    size_t send = f->len - (ranged ? (size_t)start : 0);
    if (!head && S.cut_file && !strcmp(S.cut_file, f->name) && S.cuts_left > 0 && send > S.cut_after) {
        S.cuts_left--;
        send = S.cut_after;
    }
    pthread_mutex_unlock(&S.mu);
    if (ranged && (size_t)start >= f->len) return reply(c, 416, NULL, NULL, head);
    size_t total = f->len - (ranged ? (size_t)start : 0);
    char hdr[256] = "";
    if (ranged) snprintf(hdr, sizeof hdr, "Content-Range: bytes %lld-%zu/%zu\r\n", start, f->len - 1, f->len);
    mg_printf(c, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\nETag: \"%s\"\r\n%s\r\n",
              ranged ? 206 : 200, total, f->sha, hdr);
    if (head) return 200;
    unsigned char *d = f->data + (ranged ? start : 0);
    if (f->corrupt) {
        unsigned char *copy = malloc(send);
        memcpy(copy, d, send);
        copy[send / 2] ^= 0xff;
        mg_write(c, copy, send);
        free(copy);
    } else {
        mg_write(c, d, send);
    }
    return ranged ? 206 : 200; /* returning closes the connection: a cut stays a cut */
}

static int handler(struct mg_connection *c, void *cbdata) {
    (void)cbdata;
    const struct mg_request_info *ri = mg_get_request_info(c);
    bool head = !strcmp(ri->request_method, "HEAD");
    const char *uri = ri->local_uri, *auth = mg_get_header(c, "Authorization");
    pthread_mutex_lock(&S.mu);
    snprintf(S.last_auth, sizeof S.last_auth, "%s", auth ? auth : "");
    pthread_mutex_unlock(&S.mu);
    char h[512];

    if (!strncmp(uri, "/cdn/", 5)) { /* the "CDN" an LFS resolve redirects to */
        for (int i = 0; i < S.n_repos; i++)
            for (int j = 0; j < S.repos[i].n; j++)
                if (!strcmp(S.repos[i].files[j].sha, uri + 5)) return serve_data(c, &S.repos[i].files[j], head);
        return reply(c, 404, NULL, "no such blob", head);
    }
    if (!strncmp(uri, "/oldorg/model/", 14)) { /* a renamed repo: relative redirect */
        snprintf(h, sizeof h, "Location: /org/model/%s\r\n", uri + 14);
        return reply(c, 307, h, NULL, head);
    }
    bool api = !strncmp(uri, "/api/models/", 12);
    const char *p = api ? uri + 12 : uri + 1;
    const char *slash = strchr(p, '/');
    const char *rest = slash ? strchr(slash + 1, '/') : NULL;
    fake_repo *r = rest ? find_repo(p, (size_t)(rest - p)) : NULL;
    if (!r) return reply(c, 404, "X-Error-Code: RepoNotFound\r\n", "{\"error\":\"Repository not found\"}", head);
    if (r->token) {
        char want[128];
        snprintf(want, sizeof want, "Bearer %s", r->token);
        if (!auth || strcmp(auth, want))
            return reply(c, 401, "X-Error-Code: GatedRepo\r\nX-Error-Message: Access to model org/gated is restricted.\r\n",
                         NULL, head);
    }
    const char *kw = api ? "/revision/" : "/resolve/";
    if (strncmp(rest, kw, strlen(kw))) return reply(c, 404, NULL, NULL, head);
    const char *rev = rest + strlen(kw), *rev_end = api ? rev + strlen(rev) : strchr(rev, '/');
    if (!rev_end) return reply(c, 404, NULL, NULL, head);
    size_t rl = (size_t)(rev_end - rev);
    if (!((rl == 4 && !strncmp(rev, "main", 4)) || (rl == 40 && !strncmp(rev, r->commit, 40))))
        return reply(c, 404, "X-Error-Code: RevisionNotFound\r\n", NULL, head);

    if (api) {
        pthread_mutex_lock(&S.mu);
        S.n_api++;
        pthread_mutex_unlock(&S.mu);
        char body[2048];
        int o = snprintf(body, sizeof body, "{\"id\":\"%s\",\"sha\":\"%s\",\"siblings\":[", r->repo, r->commit);
        for (int i = 0; i < r->n; i++)
            o += snprintf(body + o, sizeof body - (size_t)o, "%s{\"rfilename\":\"%s\"}", i ? "," : "", r->files[i].name);
        snprintf(body + o, sizeof body - (size_t)o, "]}");
        return reply(c, 200, "Content-Type: application/json\r\n", body, head);
    }
    fake_file *f = find_file(r, rev_end + 1);
    if (!f) return reply(c, 404, "X-Error-Code: EntryNotFound\r\n", NULL, head);
    if (f->lfs) {
        int n = snprintf(h, sizeof h, "Location: http://127.0.0.1:%d/cdn/%s\r\nX-Repo-Commit: %s\r\n", S.port, f->sha,
                         r->commit);
        if (head)
            snprintf(h + n, sizeof h - (size_t)n, "X-Linked-Etag: \"%s\"\r\nX-Linked-Size: %zu\r\nETag: \"pointer\"\r\n",
                     f->sha, f->len + (f->lie_size ? 10 : 0));
        return reply(c, 302, h, NULL, head);
    }
    /* a regular (non-LFS) file: served directly, etag = a git-style id */
    if (head) {
        snprintf(h, sizeof h, "X-Repo-Commit: %s\r\nETag: W/\"%.40s\"\r\n", r->commit, f->sha);
        mg_printf(c, "HTTP/1.1 200 X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", f->len, h);
        return 200;
    }
    return serve_data(c, f, false);
}


static int setup(void **state) {
    (void)state;
    pthread_mutex_init(&S.mu, NULL);
    if (!tu_tmpdir_create("hub", S.tmp, sizeof S.tmp)) return -1;
    snprintf(S.cache, sizeof S.cache, "%s/cache", S.tmp);

    fake_repo *r = &S.repos[S.n_repos++];
    *r = (fake_repo){.repo = "org/model", .commit = C_MODEL};
    add_file(r, "README.md", "# model\n", 0, false);
    add_file(r, "config.json", "{\"dim\": 64}\n", 0, false);
    add_file(r, "model-Q8_0.gguf", NULL, 5000, true);
    add_file(r, "model-Q4_0.gguf", NULL, 300000, true);
    add_file(r, "mmproj-model-f16.gguf", NULL, 100, true);
    add_file(r, "sub/dir/extra.bin", NULL, 1000, true);

    r = &S.repos[S.n_repos++];
    *r = (fake_repo){.repo = "org/st", .commit = C_ST};
    add_file(r, "config.json", "{\"hidden_size\": 8}", 0, false);
    add_file(r, "tokenizer.json", "{\"model\": {}}", 0, false);
    add_file(r, "tokenizer_config.json", "{}", 0, false);
    add_file(r, "model.safetensors.index.json",
             "{\"metadata\":{},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
             "\"b\":\"model-00002-of-00002.safetensors\",\"c\":\"model-00001-of-00002.safetensors\"}}",
             0, false);
    add_file(r, "model-00001-of-00002.safetensors", NULL, 2000, true);
    add_file(r, "model-00002-of-00002.safetensors", NULL, 3000, true);
    add_file(r, "README.md", "hi", 0, false);

    r = &S.repos[S.n_repos++];
    *r = (fake_repo){.repo = "org/gated", .commit = C_GATED, .token = "hf_good"};
    add_file(r, "model.gguf", NULL, 500, true);

    r = &S.repos[S.n_repos++];
    *r = (fake_repo){.repo = "org/big", .commit = C_BIG};
    add_file(r, "big.gguf", NULL, 1000000, true);
    add_file(r, "big2.gguf", NULL, 600000, true);
    add_file(r, "liar.bin", NULL, 4000, true);
    r->files[r->n - 1].lie_size = true;
    add_file(r, "corrupt.bin", NULL, 4000, true);
    r->files[r->n - 1].corrupt = true;
    add_file(r, "norange.bin", NULL, 200000, true);
    r->files[r->n - 1].no_range = true;

    const char *opts[] = {"listening_ports", "127.0.0.1:0", "num_threads", "4", "enable_keep_alive", "no", NULL};
    struct mg_callbacks cb = {0};
    mg_init_library(0);
    S.ctx = mg_start(&cb, NULL, opts);
    if (!S.ctx) return -1;
    mg_set_request_handler(S.ctx, "/", handler, NULL);
    struct mg_server_port ports[4];
    if (mg_get_server_ports(S.ctx, 4, ports) < 1 || ports[0].port <= 0) return -1;
    S.port = ports[0].port;

    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", S.port);
    setenv("HF_ENDPOINT", ep, 1);
    setenv("HF_HUB_CACHE", S.cache, 1);
    char nt[300];
    snprintf(nt, sizeof nt, "%s/no-token", S.tmp); /* never read the user's token file */
    setenv("HF_TOKEN_PATH", nt, 1);
    unsetenv("HF_TOKEN");
    unsetenv("HUGGING_FACE_HUB_TOKEN");
    unsetenv("HF_HUB_OFFLINE");
    setenv("NO_PROXY", "127.0.0.1,localhost", 1); /* a CI proxy must not see loopback requests */
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (S.ctx) mg_stop(S.ctx);
    S.ctx = NULL;
    mg_exit_library();
    for (int i = 0; i < S.n_repos; i++)
        for (int j = 0; j < S.repos[i].n; j++) free(S.repos[i].files[j].data);
    return tu_tmpdir_remove(S.tmp);
}

/* ---- helpers ---- */

static void file_sha(const char *path, char out[65]) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    lgpu_sha256 c;
    lgpu_sha256_init(&c);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) lgpu_sha256_update(&c, buf, n);
    fclose(f);
    lgpu_sha256_hex(&c, out);
}

static const fake_file *fake(const char *repo, const char *name) {
    fake_repo *r = find_repo(repo, strlen(repo));
    return find_file(r, name);
}

static const lgpu_hub_opts quiet = {.progress = LGPU_HUB_PROGRESS_OFF};

/* ---- tests ---- */

static void test_sha256(void **state) {
    (void)state;
    char hex[65];
    sha_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: 2-block padding */
    sha_hex(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    lgpu_sha256 c; /* a million 'a' fed in odd-sized pieces */
    lgpu_sha256_init(&c);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof a ? left : sizeof a;
        lgpu_sha256_update(&c, a, n);
        left -= n;
    }
    lgpu_sha256_hex(&c, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_spec(void **state) {
    (void)state;
    char repo[128], file[256];
    TU_OK(lgpu_hub_parse_spec("TheBloke/Llama-2-7B-GGUF:llama-2-7b.Q4_0.gguf", repo, sizeof repo, file, sizeof file));
    assert_string_equal(repo, "TheBloke/Llama-2-7B-GGUF");
    assert_string_equal(file, "llama-2-7b.Q4_0.gguf");
    TU_OK(lgpu_hub_parse_spec("org/name", repo, sizeof repo, file, sizeof file));
    assert_string_equal(file, "");
    const char *bad[] = {"org", "org/", "/name", "org/na me", "org/name:", "org/name:../x", "org/name:/etc/passwd",
                         "a/b/c", "org/-name", "org/na--me", "org/name:a/../../b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(lgpu_hub_parse_spec(bad[i], repo, sizeof repo, file, sizeof file), LGPU_EINVAL);
        assert_false(lgpu_hub_is_spec(bad[i]));
    }
    assert_true(lgpu_hub_is_spec("org/name"));
    assert_true(lgpu_hub_is_spec("org/name:sub/f.gguf"));
    assert_false(lgpu_hub_is_spec("./org/name"));
    assert_false(lgpu_hub_is_spec("/abs/path.gguf"));
    /* an existing local path of the same shape wins */
    char cwd[1024], d[400];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(S.tmp), 0);
    assert_int_equal(mkdir("localorg", 0755), 0);
    snprintf(d, sizeof d, "localorg/model.gguf");
    FILE *f = fopen(d, "w");
    assert_non_null(f);
    fclose(f);
    assert_false(lgpu_hub_is_spec("localorg/model.gguf"));
    assert_true(lgpu_hub_is_spec("localorg/other.gguf"));
    assert_int_equal(chdir(cwd), 0);
}

/* No FILE: the Q4_0 .gguf of three is picked; the cache looks like huggingface_hub's. */
static void test_pick_and_layout(void **state) {
    (void)state;
    char path[4096], want[4096], link[4096], hex[65];
    lgpu_hub_opts o = {.progress = LGPU_HUB_PROGRESS_ON}; /* exercise the bar (stderr) */
    TU_OK(lgpu_hub_resolve("org/model", path, sizeof path, &o));
    snprintf(want, sizeof want, "%s/models--org--model/snapshots/%s/model-Q4_0.gguf", S.cache, C_MODEL);
    assert_string_equal(path, want);
    const fake_file *ff = fake("org/model", "model-Q4_0.gguf");
    ssize_t n = readlink(path, link, sizeof link - 1);
    assert_true(n > 0);
    link[n] = 0;
    snprintf(want, sizeof want, "../../blobs/%s", ff->sha);
    assert_string_equal(link, want);
    file_sha(path, hex);
    assert_string_equal(hex, ff->sha);
    snprintf(want, sizeof want, "%s/models--org--model/blobs/%s", S.cache, ff->sha);
    struct stat sb;
    assert_int_equal(lstat(want, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_size, ff->len);
    snprintf(want, sizeof want, "%s/models--org--model/blobs/%s.incomplete", S.cache, ff->sha);
    assert_int_not_equal(stat(want, &sb), 0);
    /* refs/main holds the commit, without a newline */
    snprintf(want, sizeof want, "%s/models--org--model/refs/main", S.cache);
    FILE *f = fopen(want, "rb");
    assert_non_null(f);
    char ref[64] = "";
    assert_int_equal(fread(ref, 1, sizeof ref - 1, f), 40);
    fclose(f);
    assert_string_equal(ref, C_MODEL);

    /* a named file: non-LFS (weak ETag) and one in a subfolder */
    TU_OK(lgpu_hub_resolve("org/model:config.json", path, sizeof path, &quiet));
    FILE *cf = fopen(path, "rb");
    assert_non_null(cf);
    char txt[64] = "";
    assert_true(fread(txt, 1, sizeof txt - 1, cf) > 0);
    fclose(cf);
    assert_string_equal(txt, "{\"dim\": 64}\n");
    n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    snprintf(want, sizeof want, "../../blobs/%.40s", fake("org/model", "config.json")->sha);
    assert_string_equal(link, want);
    TU_OK(lgpu_hub_download("org/model", "sub/dir/extra.bin", path, sizeof path, &quiet));
    n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    snprintf(want, sizeof want, "../../../../blobs/%s", fake("org/model", "sub/dir/extra.bin")->sha);
    assert_string_equal(link, want);
    file_sha(path, hex);
    assert_string_equal(hex, fake("org/model", "sub/dir/extra.bin")->sha);

    /* by commit: same snapshot, and no refs/<sha> file */
    lgpu_hub_opts by_commit = {.revision = C_MODEL, .progress = LGPU_HUB_PROGRESS_OFF};
    TU_OK(lgpu_hub_resolve("org/model:model-Q8_0.gguf", path, sizeof path, &by_commit));
    snprintf(want, sizeof want, "%s/models--org--model/refs/%s", S.cache, C_MODEL);
    assert_int_not_equal(stat(want, &sb), 0);
    /* a too-small output buffer */
    char small[16];
    assert_int_equal(lgpu_hub_resolve("org/model:config.json", small, sizeof small, &quiet), LGPU_ERANGE);
}

static void test_safetensors_dir(void **state) {
    (void)state;
    char path[4096], want[4096], f[4200], hex[65];
    TU_OK(lgpu_hub_resolve("org/st", path, sizeof path, &quiet));
    snprintf(want, sizeof want, "%s/models--org--st/snapshots/%s", S.cache, C_ST);
    assert_string_equal(path, want);
    const char *expect[] = {"config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors.index.json",
                            "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        snprintf(f, sizeof f, "%s/%s", path, expect[i]);
        file_sha(f, hex);
        assert_string_equal(hex, fake("org/st", expect[i])->sha);
    }
    snprintf(f, sizeof f, "%s/README.md", path);
    struct stat sb;
    assert_int_not_equal(stat(f, &sb), 0); /* only what the model needs */
}

static void test_http_errors(void **state) {
    (void)state;
    char path[4096];
    assert_int_equal(lgpu_hub_resolve("org/missing", path, sizeof path, &quiet), LGPU_ENOTFOUND);
    assert_non_null(strstr(lgpu_last_error(), "repository or file not found: org/missing"));
    assert_int_equal(lgpu_hub_resolve("org/model:nope.gguf", path, sizeof path, &quiet), LGPU_ENOTFOUND);
    assert_non_null(strstr(lgpu_last_error(), "repository or file not found: org/model:nope.gguf"));
    lgpu_hub_opts rev = {.revision = "v9", .progress = LGPU_HUB_PROGRESS_OFF};
    assert_int_equal(lgpu_hub_resolve("org/model:config.json", path, sizeof path, &rev), LGPU_ENOTFOUND);

    /* gated: no token, a wrong one (sent as a Bearer header), then HF_TOKEN */
    assert_int_equal(lgpu_hub_resolve("org/gated", path, sizeof path, &quiet), LGPU_ENET);
    assert_non_null(strstr(lgpu_last_error(), "HF_TOKEN"));
    assert_non_null(strstr(lgpu_last_error(), "gated"));
    lgpu_hub_opts bad = {.token = "hf_bad", .progress = LGPU_HUB_PROGRESS_OFF};
    assert_int_equal(lgpu_hub_resolve("org/gated:model.gguf", path, sizeof path, &bad), LGPU_ENET);
    assert_string_equal(S.last_auth, "Bearer hf_bad");
    setenv("HF_TOKEN", "hf_good", 1);
    TU_OK(lgpu_hub_resolve("org/gated", path, sizeof path, &quiet));
    unsetenv("HF_TOKEN");
    char hex[65];
    file_sha(path, hex);
    assert_string_equal(hex, fake("org/gated", "model.gguf")->sha);
    /* the CDN (other path, same host here) got the redirect without trouble */

    /* a renamed repo: relative redirects are followed on HEAD and GET */
    TU_OK(lgpu_hub_resolve("oldorg/model:config.json", path, sizeof path, &quiet));
    assert_non_null(strstr(path, "models--oldorg--model/snapshots/"));
}

static void test_resume(void **state) {
    (void)state;
    char path[4096], part[4096], hex[65];
    const fake_file *big = fake("org/big", "big.gguf");
    snprintf(part, sizeof part, "%s/models--org--big/blobs/%s.incomplete", S.cache, big->sha);

    /* the connection drops after 400000 bytes and retries are off: the first
     * call fails and leaves the partial blob */
    S.cut_file = "big.gguf";
    S.cut_after = 400000;
    S.cuts_left = 1;
    lgpu_hub_opts once = {.retries = -1, .progress = LGPU_HUB_PROGRESS_OFF};
    assert_int_equal(lgpu_hub_resolve("org/big:big.gguf", path, sizeof path, &once), LGPU_ENET);
    assert_non_null(strstr(lgpu_last_error(), "run again to resume"));
    struct stat sb;
    assert_int_equal(stat(part, &sb), 0);
    assert_int_equal(sb.st_size, 400000);

    /* the second call resumes from byte 400000 */
    S.last_range = -2;
    TU_OK(lgpu_hub_resolve("org/big:big.gguf", path, sizeof path, &once));
    assert_int_equal(S.last_range, 400000);
    file_sha(path, hex);
    assert_string_equal(hex, big->sha);
    assert_int_not_equal(stat(part, &sb), 0);

    /* with retries on, two cuts are healed inside one call */
    S.cut_file = "big2.gguf";
    S.cut_after = 150000;
    S.cuts_left = 2;
    S.n_range_gets = 0;
    TU_OK(lgpu_hub_resolve("org/big:big2.gguf", path, sizeof path, &quiet));
    assert_int_equal(S.n_range_gets, 2);
    assert_int_equal(S.last_range, 300000);
    file_sha(path, hex);
    assert_string_equal(hex, fake("org/big", "big2.gguf")->sha);

    /* a server that ignores Range: the client starts over from 0 */
    S.cut_file = "norange.bin";
    S.cut_after = 50000;
    S.cuts_left = 1;
    TU_OK(lgpu_hub_resolve("org/big:norange.bin", path, sizeof path, &quiet));
    file_sha(path, hex);
    assert_string_equal(hex, fake("org/big", "norange.bin")->sha);
    S.cut_file = NULL;
}

static void test_verify(void **state) {
    (void)state;
    char path[4096], part[4096];
    struct stat sb;
    assert_int_equal(lgpu_hub_resolve("org/big:liar.bin", path, sizeof path, &quiet), LGPU_EIO);
    assert_non_null(strstr(lgpu_last_error(), "size mismatch"));
    const fake_file *c = fake("org/big", "corrupt.bin");
    assert_int_equal(lgpu_hub_resolve("org/big:corrupt.bin", path, sizeof path, &quiet), LGPU_EIO);
    assert_non_null(strstr(lgpu_last_error(), "sha256 mismatch"));
    snprintf(part, sizeof part, "%s/models--org--big/blobs/%s.incomplete", S.cache, c->sha);
    assert_int_not_equal(stat(part, &sb), 0); /* bad data is not kept for resuming */
    snprintf(part, sizeof part, "%s/models--org--big/blobs/%s", S.cache, c->sha);
    assert_int_not_equal(stat(part, &sb), 0);
}

/* Last: stop the server; cached files still resolve, others fail cleanly. */
static void test_offline(void **state) {
    (void)state;
    char path[4096], online[4096], hex[65];
    TU_OK(lgpu_hub_resolve("org/model", online, sizeof online, &quiet));
    mg_stop(S.ctx);
    S.ctx = NULL;

    TU_OK(lgpu_hub_resolve("org/model", path, sizeof path, &quiet)); /* connection refused -> cache */
    assert_string_equal(path, online);
    file_sha(path, hex);
    assert_string_equal(hex, fake("org/model", "model-Q4_0.gguf")->sha);
    TU_OK(lgpu_hub_resolve("org/model:sub/dir/extra.bin", path, sizeof path, &quiet));
    TU_OK(lgpu_hub_resolve("org/st", path, sizeof path, &quiet));
    char want[4096];
    snprintf(want, sizeof want, "%s/models--org--st/snapshots/%s", S.cache, C_ST);
    assert_string_equal(path, want);

    /* not cached: the network error, with curl's words */
    assert_int_equal(lgpu_hub_resolve("org/model:README.md", path, sizeof path, &quiet), LGPU_ENET);
    assert_non_null(strstr(lgpu_last_error(), "cannot fetch http://127.0.0.1"));

    /* HF_HUB_OFFLINE: no network at all */
    setenv("HF_HUB_OFFLINE", "1", 1);
    TU_OK(lgpu_hub_resolve("org/model:config.json", path, sizeof path, &quiet));
    assert_int_equal(lgpu_hub_resolve("org/model:README.md", path, sizeof path, &quiet), LGPU_ENOTFOUND);
    assert_non_null(strstr(lgpu_last_error(), "offline"));
    assert_int_equal(lgpu_hub_resolve("org/never", path, sizeof path, &quiet), LGPU_ENOTFOUND);
    unsetenv("HF_HUB_OFFLINE");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_spec),
        cmocka_unit_test(test_pick_and_layout),
        cmocka_unit_test(test_safetensors_dir),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_offline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
