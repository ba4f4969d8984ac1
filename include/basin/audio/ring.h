/* ring.h: a lock-free single-producer / single-consumer ring of audio frames.
 *
 * The bridge between an audio callback and the thread that uses its samples (DESIGN.md
 * section 7: "The PortAudio callback writes only into a lock-free SPSC ring; a listening job
 * reads it"). One thread writes (the producer: a device callback), one thread reads (the
 * consumer: a recording or listening job); neither ever blocks, locks or allocates, so the
 * producer side is safe in a real-time callback.
 *
 * A frame is n_channels interleaved floats; the ring holds a power of two of frames, at
 * least what was asked. The read and write counters are 64-bit frame counts since creation
 * (they never wrap in practice), published with C11 release/acquire atomics.
 *
 * Overruns: a write that does not fit writes what fits and drops the rest (the newest
 * frames: the oldest are the consumer's, and only the consumer may move the read counter).
 * The dropped frames and the writes that dropped are counted, never reported from the
 * producer; the consumer reads the counts.
 *
 * Stamps: every write also records (frames written so far, CLOCK_MONOTONIC time) in a small
 * queue of its own, so the consumer can tell when a frame entered the ring (the listening
 * latency is measured from there). The queue keeps the last RING_STAMPS writes; a consumer
 * that falls further behind loses the older stamps, not samples.
 *
 * End of stream: the producer calls ring_close() when no more frames will come (a device
 * that finished or failed); the consumer sees ring_closed() and drains what is left.
 */
#ifndef BASIN_AUDIO_RING_H
#define BASIN_AUDIO_RING_H

#include <stdint.h>

#define RING_STAMPS 512

struct ring;

/* One write's stamp: frames written in total after it, and when (ns, CLOCK_MONOTONIC). */
struct ring_stamp {
    int64_t end;
    int64_t t_ns;
};

/* A ring of at least min_frames frames (rounded up to a power of two, at least 64) of
 * n_channels (1..256) floats. 0, STATUS_INVALID (bad sizes) or STATUS_NOMEM. *out is owned
 * by the caller. */
int ring_create(struct ring **out, long min_frames, int n_channels);
void ring_destroy(struct ring *r);   /* NULL is a no-op */

long ring_capacity(const struct ring *r);   /* frames */
int ring_channels(const struct ring *r);

/* Producer. Copy up to n frames of x (n, C) in; returns the frames written (n, or fewer
 * when the ring is full: the rest are dropped and counted). Wait-free. */
long ring_write(struct ring *r, const float *x, long n);
/* Frames that fit now (producer side). */
long ring_space(const struct ring *r);
/* No more frames will come. */
void ring_close(struct ring *r);

/* Consumer. Copy up to n frames out into y (n, C); returns the frames read. Wait-free. */
long ring_read(struct ring *r, float *y, long n);
/* Frames ready to read now. */
long ring_available(const struct ring *r);
/* 1 once the producer closed the ring (frames may still be left to read). */
int ring_closed(const struct ring *r);
/* Frames written in total (the index one past the newest frame), and read in total. */
int64_t ring_written(const struct ring *r);
int64_t ring_read_total(const struct ring *r);
/* Frames dropped because the ring was full, and how many writes dropped some. */
int64_t ring_dropped(const struct ring *r);
int64_t ring_overruns(const struct ring *r);
/* Take up to max stamps not taken yet, oldest first; returns how many. Stamps lost to a
 * consumer more than RING_STAMPS writes behind are skipped. */
int ring_take_stamps(struct ring *r, struct ring_stamp *out, int max);

#endif
