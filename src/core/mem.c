/* mem.c: checked, 64-byte aligned allocation and page-touched arenas (see mem.h). */
#include "basin/core/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basin/core/status.h"

#define MEM_ALIGN 64

void *mem_alloc(size_t n_bytes)
{
    void *p = NULL;
    size_t n = n_bytes ? (n_bytes + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN : MEM_ALIGN;
    if (n < n_bytes || posix_memalign(&p, MEM_ALIGN, n) != 0) {
        status_set(STATUS_NOMEM, "out of memory allocating %zu bytes", n_bytes);
        return NULL;
    }
    return p;
}

size_t mem_mul(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        status_set(STATUS_INVALID, "size %zu x %zu overflows", n, size);
        return 0;
    }
    return n * size;
}

void *mem_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        status_set(STATUS_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = mem_alloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *mem_realloc(void *p, size_t n_bytes)
{
    void *q = realloc(p, n_bytes ? n_bytes : 1);
    if (!q) status_set(STATUS_NOMEM, "out of memory reallocating %zu bytes", n_bytes);
    return q;
}

void mem_free(void *p)
{
    free(p);
}

char *mem_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = mem_alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

size_t arena_floats_size(size_t n)
{
    return (n * sizeof(float) + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN;
}

int arena_init(struct arena *a, size_t n_bytes)
{
    a->used = 0;
    a->size = n_bytes;
    a->base = mem_alloc(n_bytes);
    if (!a->base) return STATUS_NOMEM;
    /* Touch every page now, once, rather than on the first training step. */
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    for (size_t i = 0; i < n_bytes; i += (size_t)page) a->base[i] = 0;
    return STATUS_OK;
}

void arena_fini(struct arena *a)
{
    mem_free(a->base);
    a->base = NULL;
    a->size = a->used = 0;
}

float *arena_floats(struct arena *a, size_t n)
{
    size_t need = arena_floats_size(n);
    if (need > a->size - a->used) {
        status_set(STATUS_NOMEM, "arena of %zu bytes is full (%zu more asked)", a->size, need);
        return NULL;
    }
    float *p = (float *)(a->base + a->used);
    a->used += need;
    return p;
}

void arena_reset(struct arena *a)
{
    a->used = 0;
}
