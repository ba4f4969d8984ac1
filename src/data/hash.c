/* hash.c: XXH64, one-shot and streaming (see hash.h).
 *
 * Key idea: four independent 64-bit lanes take 32-byte stripes, then merge; the tail and
 * the length are folded in and the result avalanched. Little-endian reads via memcpy, so
 * the value is the same on every machine this runs on (x86-64, aarch64).
 *
 * ref: xxHash specification, XXH64 (github.com/Cyan4973/xxHash, doc/xxhash_spec.md).
 */
#include "basin/data/hash.h"

#include <string.h>

#define P1 11400714785074694791ull
#define P2 14029467366897019727ull
#define P3 1609587929392839161ull
#define P4 9650029242287828579ull
#define P5 2870177450012600261ull

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t read64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t read32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t lane(uint64_t acc, uint64_t input)
{
    acc += input * P2;
    acc = rotl64(acc, 31);
    return acc * P1;
}

static inline uint64_t merge(uint64_t acc, uint64_t v)
{
    acc ^= lane(0, v);
    return acc * P1 + P4;
}

void hash_xxh64_init(struct hash_xxh64 *h, uint64_t seed)
{
    memset(h, 0, sizeof *h);
    h->seed = seed;
    h->v[0] = seed + P1 + P2;
    h->v[1] = seed + P2;
    h->v[2] = seed;
    h->v[3] = seed - P1;
}

static void stripe(uint64_t *v, const unsigned char *p)
{
    v[0] = lane(v[0], read64(p));
    v[1] = lane(v[1], read64(p + 8));
    v[2] = lane(v[2], read64(p + 16));
    v[3] = lane(v[3], read64(p + 24));
}

void hash_xxh64_update(struct hash_xxh64 *h, const void *data, size_t n)
{
    const unsigned char *p = data;
    h->total += n;
    if (h->n_buf + n < 32) {
        memcpy(h->buf + h->n_buf, p, n);
        h->n_buf += (unsigned)n;
        return;
    }
    if (h->n_buf) {
        size_t k = 32 - h->n_buf;
        memcpy(h->buf + h->n_buf, p, k);
        stripe(h->v, h->buf);
        p += k;
        n -= k;
        h->n_buf = 0;
    }
    uint64_t v[4] = {h->v[0], h->v[1], h->v[2], h->v[3]};
    for (; n >= 32; p += 32, n -= 32) stripe(v, p);
    memcpy(h->v, v, sizeof v);
    memcpy(h->buf, p, n);
    h->n_buf = (unsigned)n;
}

uint64_t hash_xxh64_digest(const struct hash_xxh64 *h)
{
    uint64_t acc;
    if (h->total >= 32) {
        const uint64_t *v = h->v;
        acc = rotl64(v[0], 1) + rotl64(v[1], 7) + rotl64(v[2], 12) + rotl64(v[3], 18);
        for (int i = 0; i < 4; i++) acc = merge(acc, v[i]);
    } else {
        acc = h->seed + P5;
    }
    acc += h->total;
    const unsigned char *p = h->buf;
    unsigned n = h->n_buf;
    for (; n >= 8; p += 8, n -= 8) {
        acc ^= lane(0, read64(p));
        acc = rotl64(acc, 27) * P1 + P4;
    }
    if (n >= 4) {
        acc ^= (uint64_t)read32(p) * P1;
        acc = rotl64(acc, 23) * P2 + P3;
        p += 4;
        n -= 4;
    }
    for (; n > 0; p++, n--) {
        acc ^= *p * P5;
        acc = rotl64(acc, 11) * P1;
    }
    acc ^= acc >> 33;
    acc *= P2;
    acc ^= acc >> 29;
    acc *= P3;
    acc ^= acc >> 32;
    return acc;
}

uint64_t hash_xxh64(const void *data, size_t n, uint64_t seed)
{
    struct hash_xxh64 h;
    hash_xxh64_init(&h, seed);
    hash_xxh64_update(&h, data, n);
    return hash_xxh64_digest(&h);
}
