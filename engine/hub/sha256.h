/* SHA-256 (FIPS 180-4), used to verify downloads whose Hub ETag is the
 * sha256 of the content (LFS files). libcurl exposes no hash API and none of
 * the linked libraries does either, so a compact implementation lives here
 * rather than pulling in OpenSSL/nettle for one function. */
#ifndef LGPU_HUB_SHA256_H
#define LGPU_HUB_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    uint8_t buf[64];
    size_t fill;
} lgpu_sha256;

void lgpu_sha256_init(lgpu_sha256 *c);
void lgpu_sha256_update(lgpu_sha256 *c, const void *data, size_t n);
/* Writes 32 bytes. */
void lgpu_sha256_final(lgpu_sha256 *c, uint8_t out[32]);
/* Writes 64 lowercase hex digits and a NUL. */
void lgpu_sha256_hex(lgpu_sha256 *c, char out[65]);

#endif
