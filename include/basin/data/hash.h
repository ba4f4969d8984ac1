/* hash.h: XXH64, a fast non-cryptographic 64-bit hash, one-shot and streaming.
 *
 * The feature cache names its files by hashes of audio file contents and options. XXH64
 * runs at memory speed, so hashing a clip costs far less than decoding it. Not for
 * security: anyone can make two inputs collide on purpose.
 *
 * ref: Yann Collet, xxHash specification, XXH64 (github.com/Cyan4973/xxHash, doc/
 *      xxhash_spec.md). XXH64("", 0) = 0xef46db3751d8e999.
 */
#ifndef BASIN_DATA_HASH_H
#define BASIN_DATA_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Streaming state: caller storage. */
struct hash_xxh64 {
    uint64_t v[4];
    uint64_t total;          /* bytes seen */
    uint64_t seed;
    unsigned char buf[32];   /* a partial stripe */
    unsigned n_buf;
};

void hash_xxh64_init(struct hash_xxh64 *h, uint64_t seed);
void hash_xxh64_update(struct hash_xxh64 *h, const void *data, size_t n);
uint64_t hash_xxh64_digest(const struct hash_xxh64 *h);
/* One shot: init, update, digest. */
uint64_t hash_xxh64(const void *data, size_t n, uint64_t seed);

#endif
