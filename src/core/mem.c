/* mem.c: checked, 64-byte aligned allocation, page-touched arenas and the memory a
 * process may still take (see mem.h). */
#include "basin/core/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* ----------------------------------------------------------------------------- available */

/* The number after "key" in a "key value [kB]" file such as /proc/meminfo, in bytes when
 * the line says kB; -1 when absent. */
static double keyed_value(const char *path, const char *key)
{
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    char line[256];
    double v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && (line[n] == ':' || line[n] == ' ')) {
            char unit[8] = "";
            if (sscanf(line + n + (line[n] == ':'), "%lf %7s", &v, unit) < 1) v = -1;
            else if (!strcmp(unit, "kB")) v *= 1024;
            break;
        }
    fclose(f);
    return v;
}

/* A file holding one number ("max" and unreadable files: -1). */
static double file_value(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    double v = -1;
    if (fscanf(f, "%lf", &v) != 1) v = -1;
    fclose(f);
    return v;
}

static void take_min(double *room, double v)
{
    if (v >= 0 && v < *room) *room = v;
}

/* Room under a cgroup limit; limits of 2^60 and more mean none. */
static void cgroup_room(double *room)
{
    double max = file_value("/sys/fs/cgroup/memory.max");
    if (max >= 0 && max < 0x1p60) {
        double cur = file_value("/sys/fs/cgroup/memory.current");
        if (cur >= 0) take_min(room, max > cur ? max - cur : 0);
        return;
    }
    max = file_value("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    if (max >= 0 && max < 0x1p60) {
        double use = file_value("/sys/fs/cgroup/memory/memory.usage_in_bytes");
        double cache = keyed_value("/sys/fs/cgroup/memory/memory.stat", "total_inactive_file");
        if (use >= 0) {
            if (cache > 0 && cache < use) use -= cache;
            take_min(room, max > use ? max - use : 0);
        }
    }
}

static void rlimit_room(double *room, int resource, const char *status_key)
{
    struct rlimit rl;
    if (getrlimit(resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return;
    double used = keyed_value("/proc/self/status", status_key);
    if (used < 0) used = 0;
    double lim = (double)rl.rlim_cur;
    take_min(room, lim > used ? lim - used : 0);
}

size_t mem_available_bytes(void)
{
    double room = 0x1p62;
    take_min(&room, keyed_value("/proc/meminfo", "MemAvailable"));
    cgroup_room(&room);
    rlimit_room(&room, RLIMIT_AS, "VmSize");
    rlimit_room(&room, RLIMIT_DATA, "VmData");
    if (room >= 0x1p62) return SIZE_MAX;
    return room < (double)SIZE_MAX ? (size_t)room : SIZE_MAX;
}

const char *mem_bytes_str(char *buf, size_t n, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (bytes >= 1024 && u < 6) bytes /= 1024, u++;
    if (u == 0) snprintf(buf, n, "%.0f B", bytes);
    else snprintf(buf, n, "%.1f %s", bytes, units[u]);
    return buf;
}
