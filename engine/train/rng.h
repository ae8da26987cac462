/* The training data's random numbers: splitmix64 (Steele, Lea, Flood 2014),
 * integer-only so a seed gives the same split and shuffles on every machine
 * and compiler, unlike rand() or anything through floating point. */
#ifndef LGPU_TRAIN_RNG_H
#define LGPU_TRAIN_RNG_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t lgpu_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The state of an independent stream `stream` of `seed`: each use of the
 * seed (the split, each epoch's shuffle) gets its own stream, so changing
 * one never shifts another. */
static inline uint64_t lgpu_rng_stream(uint64_t seed, uint64_t stream) {
    uint64_t s = seed;
    uint64_t a = lgpu_splitmix64(&s);
    s = stream ^ 0xD1B54A32D192ED03ull;
    return a ^ lgpu_splitmix64(&s);
}

/* Uniform in [0, n), n > 0, without modulo bias (rejection). */
static inline uint64_t lgpu_rng_below(uint64_t *state, uint64_t n) {
    uint64_t limit = -n % n; /* 2^64 mod n: values below it are rejected */
    for (;;) {
        uint64_t x = lgpu_splitmix64(state);
        if (x >= limit) return x % n;
    }
}

/* Fisher-Yates shuffle of a[0..n) from `state`. */
static inline void lgpu_rng_shuffle(uint64_t *state, size_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)lgpu_rng_below(state, i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

#endif
