#include "test_util.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tu_rng_seed(tu_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 1; }

uint32_t tu_rng_u32(tu_rng *r) {
    uint64_t x = r->s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->s = x;
    return (uint32_t)(x >> 32);
}

float tu_rng_uniform(tu_rng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)((tu_rng_u32(r) >> 8) * (1.0 / 16777216.0));
}

float tu_rng_normal(tu_rng *r) {
    double u1 = ((tu_rng_u32(r) >> 8) + 0.5) / 16777216.0, u2 = (tu_rng_u32(r) >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void tu_fill_uniform(tu_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = tu_rng_uniform(r, lo, hi);
}

double tu_nmse(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return num / den;
}

size_t tu_compare(const char *what, const float *a, const float *ref, size_t n, double atol, double rtol) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (!(d <= atol + rtol * fabs((double)ref[i]))) {
            if (bad < 5) fprintf(stderr, "  %s[%zu]: got %.9g want %.9g (diff %.3g)\n", what, i, a[i], ref[i], d);
            bad++;
        }
    }
    if (bad) fprintf(stderr, "  %s: %zu of %zu values out of tolerance\n", what, bad, n);
    return bad;
}

static char *next_buf(void) {
    static _Thread_local char buf[8][4096];
    static _Thread_local unsigned slot;
    return buf[slot++ & 7];
}

const char *tu_path(const char *dir, const char *name) {
    char *out = next_buf();
    snprintf(out, 4096, "%s/%s", dir, name);
    return out;
}

static const char *join(const char *env, const char *fallback, const char *rel) {
    const char *root = getenv(env);
    return tu_path(root ? root : fallback, rel);
}

const char *tu_model_path(const char *name) { return join("LGPU_MODELS", "../shared/models", name); }
const char *tu_source_path(const char *rel) { return join("LGPU_SOURCE_ROOT", ".", rel); }

char *tu_tmpdir_create(const char *tag, char *buf, size_t cap) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    int n = snprintf(buf, cap, "%s/lgpu-test-%s-XXXXXX", base, tag);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "tu_tmpdir_create: path under %s too long for %zu bytes\n", base, cap);
        return NULL;
    }
    if (!mkdtemp(buf)) {
        fprintf(stderr, "tu_tmpdir_create: mkdtemp %s: %s\n", buf, strerror(errno));
        return NULL;
    }
    return buf;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    if (remove(path) != 0 && errno != ENOENT) {
        fprintf(stderr, "tu_tmpdir_remove: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int tu_tmpdir_remove(const char *dir) {
    if (!dir || !*dir) return 0;
    const char *slash = strrchr(dir, '/');
    if (strncmp(slash ? slash + 1 : dir, "lgpu-test-", 10) != 0) { /* a guard against removing a wrong tree */
        fprintf(stderr, "tu_tmpdir_remove: %s was not made by tu_tmpdir_create\n", dir);
        return -1;
    }
    if (access(dir, F_OK) != 0) return 0; /* already gone */
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}
