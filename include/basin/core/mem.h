/* mem.h: checked allocation and arenas.
 *
 * mem_alloc and friends return NULL after recording STATUS_NOMEM with the size asked for, so
 * callers write `if (!(p = mem_alloc(n))) return STATUS_NOMEM;`. Blocks are 64-byte aligned
 * (one cache line, one AVX-512 vector) and freed with mem_free (NULL is a no-op).
 *
 * An arena hands out 64-byte aligned slices of one block. The graph planner sizes it once,
 * touches every page at creation (a first-touch page fault costs ~11 us on our machines) and
 * reuses it every step.
 */
#ifndef BASIN_CORE_MEM_H
#define BASIN_CORE_MEM_H

#include <stddef.h>

void *mem_alloc(size_t n_bytes);
void *mem_calloc(size_t n, size_t size);          /* zeroed; checks n*size for overflow */
void *mem_realloc(void *p, size_t n_bytes);       /* not aligned beyond malloc's guarantee */
void mem_free(void *p);
char *mem_strdup(const char *s);

/* n*size without overflow: 0 and STATUS_INVALID recorded when it would overflow. */
size_t mem_mul(size_t n, size_t size);

/* Bytes this process may still allocate before the system or a limit refuses: the
 * smallest of MemAvailable (/proc/meminfo), the room left in the memory cgroup (v2
 * memory.max - memory.current, or v1 limit - usage without inactive page cache), and the
 * room left under RLIMIT_AS (minus VmSize) and RLIMIT_DATA (minus VmData). SIZE_MAX when
 * none of them is known. A snapshot: callers compare an estimate against it before a
 * large allocation, so a model too big for the machine is refused with a message instead
 * of being killed by the OOM killer. */
size_t mem_available_bytes(void);

/* bytes in binary units ("512 B", "3.2 KiB", "24.1 GiB") into buf; returns buf. */
const char *mem_bytes_str(char *buf, size_t n, double bytes);

struct arena {
    char *base;        /* the block, 64-byte aligned */
    size_t size;       /* bytes in the block */
    size_t used;       /* bytes handed out */
};

/* Reserve n_bytes and touch every page. Returns STATUS_NOMEM on failure. */
int arena_init(struct arena *a, size_t n_bytes);
void arena_fini(struct arena *a);
/* A slice of n floats (64-byte aligned), or NULL with STATUS_NOMEM when the arena is full. */
float *arena_floats(struct arena *a, size_t n);
/* Bytes arena_floats(n) consumes, for sizing an arena before creating it. */
size_t arena_floats_size(size_t n);
void arena_reset(struct arena *a);

#endif
