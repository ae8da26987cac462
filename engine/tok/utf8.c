/* UTF-8 helpers and GPT-2's byte <-> unicode mapping (byte-level BPE stores
 * every byte as a printable character: printable Latin-1 bytes map to
 * themselves, the other 68 bytes to U+0100.. in byte order); vocabularies
 * are indexed by raw bytes, so only the reverse direction is needed. */
#include "tok/tok_internal.h"

#include <pthread.h>

static int16_t cp_byte[324]; /* code points 0..323 -> byte, -1 if unmapped */
static pthread_once_t map_once = PTHREAD_ONCE_INIT;

static bool printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

static void build_map(void) {
    int n = 0;
    for (int cp = 0; cp < 324; cp++) cp_byte[cp] = -1;
    for (int b = 0; b < 256; b++) cp_byte[printable(b) ? b : 256 + n++] = (int16_t)b;
}

int lgpu_tok_utf8_put(uint32_t cp, char *d) {
    unsigned char *u = (unsigned char *)d;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (unsigned char)(0xF0 | (cp >> 18));
    u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int lgpu_tok_utf8_get(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0) return 0;
    int len = tok_utf8_len(u[0]);
    if (u[0] >= 0xF8) return 0; /* would pass for a 4-byte lead below */
    if (len == 1) {
        if (u[0] >= 0x80) return 0;
        *cp = u[0];
        return 1;
    }
    if ((size_t)len > n) return 0;
    uint32_t c = u[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (u[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_cp[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

int lgpu_tok_gpt2_decode(const char *s, size_t n, char *out, size_t *out_len) {
    pthread_once(&map_once, build_map);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = lgpu_tok_utf8_get(s + i, n - i, &cp);
        if (l == 0 || cp >= 324 || cp_byte[cp] < 0) return -1;
        out[o++] = (char)cp_byte[cp];
        i += (size_t)l;
    }
    *out_len = o;
    return 0;
}
