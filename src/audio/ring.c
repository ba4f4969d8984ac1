/* ring.c: lock-free single-producer / single-consumer ring of frames (see ring.h).
 *
 * Key idea: two monotonic 64-bit counters, `head` (frames written, owned by the producer)
 * and `tail` (frames read, owned by the consumer). Each side reads the other's counter with
 * acquire and publishes its own with release, so the data copied before a release is
 * visible after the matching acquire; the slot of frame i is i & (capacity - 1). The two
 * counters live on separate cache lines so the threads do not false-share.
 *
 * Stamps use the same scheme on a small array: the producer fills slot n & (RING_STAMPS-1)
 * and then publishes n + 1; a slot being rewritten while the consumer reads it is detected
 * by re-reading the published count (seqlock style), and the stamp is skipped.
 *
 * ref: the classic Lamport ring; Linux kfifo; PortAudio's pa_ringbuffer.c (same roles).
 */
#include "basin/audio/ring.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"

struct stamp_slot {
    _Atomic int64_t end, t_ns;
};

struct ring {
    float *buf;                      /* (capacity, C) */
    long capacity;                   /* frames, a power of two */
    int n_channels;
    _Alignas(64) _Atomic int64_t head;    /* frames written (producer) */
    _Atomic int64_t dropped, overruns;    /* producer's counts */
    _Atomic int64_t n_stamps;             /* stamps written (producer) */
    _Atomic int closed;
    _Alignas(64) _Atomic int64_t tail;    /* frames read (consumer) */
    int64_t stamps_taken;                 /* consumer only */
    _Alignas(64) struct stamp_slot stamps[RING_STAMPS];
};

int ring_create(struct ring **out, long min_frames, int n_channels)
{
    *out = NULL;
    if (n_channels < 1 || n_channels > 256)
        return status_set(STATUS_INVALID, "ring: %d channels, expected 1..256", n_channels);
    if (min_frames < 1 || min_frames > (1L << 30))
        return status_set(STATUS_INVALID, "ring: %ld frames, expected 1..2^30", min_frames);
    long cap = 64;
    while (cap < min_frames) cap <<= 1;
    struct ring *r = mem_calloc(1, sizeof *r);
    if (!r) return STATUS_NOMEM;
    r->buf = mem_calloc((size_t)cap * (size_t)n_channels, sizeof(float));
    if (!r->buf) {
        mem_free(r);
        return STATUS_NOMEM;
    }
    r->capacity = cap;
    r->n_channels = n_channels;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->dropped, 0);
    atomic_init(&r->overruns, 0);
    atomic_init(&r->n_stamps, 0);
    atomic_init(&r->closed, 0);
    *out = r;
    return STATUS_OK;
}

void ring_destroy(struct ring *r)
{
    if (!r) return;
    mem_free(r->buf);
    mem_free(r);
}

long ring_capacity(const struct ring *r)
{
    return r->capacity;
}

int ring_channels(const struct ring *r)
{
    return r->n_channels;
}

/* Copy n frames between the ring's slots starting at frame index i and x, in at most two
 * pieces (the wrap). to_ring: x -> ring, else ring -> x. */
static void copy_frames(struct ring *r, int64_t i, float *x, long n, int to_ring)
{
    const long C = r->n_channels, mask = r->capacity - 1;
    long at = (long)(i & mask);
    long first = n < r->capacity - at ? n : r->capacity - at;
    float *slot = r->buf + at * C;
    if (to_ring) {
        memcpy(slot, x, sizeof(float) * (size_t)(first * C));
        if (n > first) memcpy(r->buf, x + first * C, sizeof(float) * (size_t)((n - first) * C));
    } else {
        memcpy(x, slot, sizeof(float) * (size_t)(first * C));
        if (n > first) memcpy(x + first * C, r->buf, sizeof(float) * (size_t)((n - first) * C));
    }
}

long ring_write(struct ring *r, const float *x, long n)
{
    if (n <= 0) return 0;
    int64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    int64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    long space = r->capacity - (long)(head - tail);
    long w = n < space ? n : space;
    if (w > 0) copy_frames(r, head, (float *)x, w, 1);
    atomic_store_explicit(&r->head, head + w, memory_order_release);
    if (w < n) {
        atomic_fetch_add_explicit(&r->dropped, n - w, memory_order_relaxed);
        atomic_fetch_add_explicit(&r->overruns, 1, memory_order_relaxed);
    }
    if (w > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call, no lock */
        int64_t k = atomic_load_explicit(&r->n_stamps, memory_order_relaxed);
        struct stamp_slot *s = &r->stamps[k & (RING_STAMPS - 1)];
        /* the count published before must be visible before this slot changes (seqlock) */
        atomic_thread_fence(memory_order_release);
        atomic_store_explicit(&s->end, head + w, memory_order_relaxed);
        atomic_store_explicit(&s->t_ns, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, memory_order_relaxed);
        atomic_store_explicit(&r->n_stamps, k + 1, memory_order_release);
    }
    return w;
}

long ring_space(const struct ring *r)
{
    int64_t head = atomic_load_explicit(&((struct ring *)r)->head, memory_order_relaxed);
    int64_t tail = atomic_load_explicit(&((struct ring *)r)->tail, memory_order_acquire);
    return r->capacity - (long)(head - tail);
}

void ring_close(struct ring *r)
{
    atomic_store_explicit(&r->closed, 1, memory_order_release);
}

long ring_read(struct ring *r, float *y, long n)
{
    if (n <= 0) return 0;
    int64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    int64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    long avail = (long)(head - tail);
    long k = n < avail ? n : avail;
    if (k > 0) copy_frames(r, tail, y, k, 0);
    atomic_store_explicit(&r->tail, tail + k, memory_order_release);
    return k;
}

long ring_available(const struct ring *r)
{
    int64_t tail = atomic_load_explicit(&((struct ring *)r)->tail, memory_order_relaxed);
    int64_t head = atomic_load_explicit(&((struct ring *)r)->head, memory_order_acquire);
    return (long)(head - tail);
}

int ring_closed(const struct ring *r)
{
    return atomic_load_explicit(&((struct ring *)r)->closed, memory_order_acquire);
}

int64_t ring_written(const struct ring *r)
{
    return atomic_load_explicit(&((struct ring *)r)->head, memory_order_acquire);
}

int64_t ring_read_total(const struct ring *r)
{
    return atomic_load_explicit(&((struct ring *)r)->tail, memory_order_acquire);
}

int64_t ring_dropped(const struct ring *r)
{
    return atomic_load_explicit(&((struct ring *)r)->dropped, memory_order_relaxed);
}

int64_t ring_overruns(const struct ring *r)
{
    return atomic_load_explicit(&((struct ring *)r)->overruns, memory_order_relaxed);
}

int ring_take_stamps(struct ring *r, struct ring_stamp *out, int max)
{
    int k = 0;
    while (k < max) {
        int64_t n = atomic_load_explicit(&r->n_stamps, memory_order_acquire);
        /* slot n may be being written: the readable ones are the last RING_STAMPS - 1 */
        if (n - r->stamps_taken > RING_STAMPS - 1) r->stamps_taken = n - (RING_STAMPS - 1);
        if (r->stamps_taken >= n) break;
        const struct stamp_slot *s = &r->stamps[r->stamps_taken & (RING_STAMPS - 1)];
        struct ring_stamp st = {atomic_load_explicit(&s->end, memory_order_relaxed),
                                atomic_load_explicit(&s->t_ns, memory_order_relaxed)};
        atomic_thread_fence(memory_order_acquire);
        /* the producer may have started rewriting this slot while it was read (seqlock) */
        int64_t now = atomic_load_explicit(&r->n_stamps, memory_order_relaxed);
        if (now - r->stamps_taken >= RING_STAMPS) continue;
        out[k++] = st;
        r->stamps_taken++;
    }
    return k;
}
