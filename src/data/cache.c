/* cache.c: the cache folder's contents, its cap, least-recently-used trimming, clearing
 * (see cache.h).
 *
 * Key idea: the folder's layout is known here alone (features/, synth-<hash>/, cap); the
 * modules that fill it (features.c, synth.c) only name their own part. Use is recorded in
 * the files themselves (a feature file's mtime is set on every hit), so there is no index
 * to keep consistent between processes.
 */
#include "basin/data/cache.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basin/core/fs.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/data/synth.h"

#define CAP_FILE "cap"
#define FEATURES_DIR "features"
#define CAP_ENV "BASIN_CACHE_MAX"

int cache_dir(char *buf, size_t n)
{
    int st = fs_cache_dir(NULL, buf, n);
    if (st == STATUS_NOT_FOUND)
        return status_set(st, "no cache folder: neither XDG_CACHE_HOME nor HOME is set");
    return st;
}

/* "synth-" and 16 lower-case hex digits, nothing after: a generated data set. */
static int is_synth_set(const char *name)
{
    if (strncmp(name, "synth-", 6)) return 0;
    for (int i = 6; i < 22; i++)
        if (!isxdigit((unsigned char)name[i]) || isupper((unsigned char)name[i])) return 0;
    return name[22] == 0;
}

/* ----------------------------------------------------------------------------- sizes */

int cache_parse_size(const char *text, uint64_t *bytes)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno || !(v >= 0) || !isfinite(v)) goto bad;
    double mult = 1;
    const char *s = end;
    static const char units[] = "kmgt";
    const char *u = *s ? strchr(units, tolower((unsigned char)*s)) : NULL;
    if (u) {
        mult = ldexp(1.0, 10 * (int)(u - units + 1));
        s++;
        if (*s == 'i' || *s == 'I') s++;
    }
    if (*s == 'b' || *s == 'B') s++;
    if (*s) goto bad;
    v = floor(v * mult + 0.5);
    if (v >= 9.2e18) goto bad;
    *bytes = (uint64_t)v;
    return STATUS_OK;
bad:
    return status_set(STATUS_INVALID, "'%s' is not a size (e.g. 2G, 500M, 1.5GiB, 0)", text);
}

int cache_cap(uint64_t *bytes, enum cache_cap_source *src)
{
    enum cache_cap_source from = CACHE_CAP_DEFAULT;
    uint64_t cap = CACHE_DEFAULT_CAP;
    const char *env = getenv(CAP_ENV);
    char dir[FS_PATH_MAX], path[FS_PATH_MAX + 8], line[64];
    if (env && *env) {
        if (cache_parse_size(env, &cap)) return status_prefix(STATUS_INVALID, CAP_ENV);
        from = CACHE_CAP_ENV;
    } else if (fs_cache_dir(NULL, dir, sizeof dir) == STATUS_OK) {
        snprintf(path, sizeof path, "%s/" CAP_FILE, dir);
        FILE *f = fopen(path, "r");
        if (f) {
            uint64_t v;
            if (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\r\n")] = 0;
                if (cache_parse_size(line, &v) == STATUS_OK) cap = v, from = CACHE_CAP_FILE;
            }
            fclose(f);
        }
        status_clear();
    }
    *bytes = cap;
    if (src) *src = from;
    return STATUS_OK;
}

int cache_cap_set(uint64_t bytes)
{
    char dir[FS_PATH_MAX], path[FS_PATH_MAX + 8], text[32];
    int st = cache_dir(dir, sizeof dir);
    if (st) return st;
    if ((st = fs_mkdir_p(dir))) return st;
    snprintf(path, sizeof path, "%s/" CAP_FILE, dir);
    int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)bytes);
    return fs_write_file(path, text, (size_t)n, 0);
}

int cache_usage(struct cache_usage *u)
{
    memset(u, 0, sizeof *u);
    int st = cache_cap(&u->cap_bytes, &u->cap_source);
    if (st) return st;
    char dir[FS_PATH_MAX], def[FS_PATH_MAX], path[FS_PATH_MAX + 300];
    if ((st = cache_dir(dir, sizeof dir))) return st;
    const char *def_name = "";
    if (synth_cache_dir(NULL, def, sizeof def) == STATUS_OK) {
        const char *slash = strrchr(def, '/');
        def_name = slash ? slash + 1 : def;
    }
    status_clear();
    DIR *d = opendir(dir);
    if (!d) return STATUS_OK;   /* nothing cached yet */
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        uint64_t bytes = 0;
        long files = 0;
        if (fs_tree_size(path, &bytes, &files)) continue;
        u->total_bytes += bytes;
        if (!strcmp(e->d_name, FEATURES_DIR)) {
            u->feature_bytes += bytes;
            u->feature_files += files;
        } else if (is_synth_set(e->d_name)) {
            u->synth_bytes += bytes;
            u->synth_sets++;
            if (!strcmp(e->d_name, def_name)) u->default_set = 1, u->default_bytes = bytes;
        } else {
            u->other_bytes += bytes;
        }
    }
    closedir(d);
    status_clear();
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- clearing */

int cache_clear(uint64_t *freed_bytes)
{
    char dir[FS_PATH_MAX], path[FS_PATH_MAX + 300];
    int st = cache_dir(dir, sizeof dir);
    if (st) return st;
    if (freed_bytes) *freed_bytes = 0;
    uint64_t before = 0, after = 0;
    long files;
    if (fs_tree_size(dir, &before, &files)) before = 0;
    DIR *d = opendir(dir);
    if (!d) {
        status_clear();
        return STATUS_OK;
    }
    /* Names first, removal after: removing while reading a folder may skip entries. */
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        const char *tmp = strstr(name, ".tmp-");
        char base[256];
        if (!strcmp(name, FEATURES_DIR) || is_synth_set(name)) {
            snprintf(base, sizeof base, "%s", name);
        } else if (tmp && tmp - name == 22 && !strncmp(name, "synth-", 6)) {
            /* A temporary of a data set that never finished: its base name, so that
             * fs_clean_stale can tell whether its process still runs. */
            snprintf(base, sizeof base, "%.22s", name);
            if (!is_synth_set(base)) continue;
        } else {
            continue;
        }
        if (n == cap) {
            int c = cap ? 2 * cap : 16;
            char **p = mem_realloc(names, (size_t)c * sizeof *p);
            if (!p) break;
            names = p, cap = c;
        }
        if (!(names[n] = mem_strdup(base))) break;
        n++;
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        /* The folder, and the temporaries beside it whose process is gone. */
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        fs_remove_tree(path);
        fs_clean_stale(path);
        mem_free(names[i]);
    }
    mem_free(names);
    if (fs_tree_size(dir, &after, &files)) after = before;
    status_clear();
    if (freed_bytes) *freed_bytes = before > after ? before - after : 0;
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- trimming */

struct feat_file {
    char *path;
    uint64_t bytes;
    long long mtime_ns;
};

static int feat_cmp(const void *a, const void *b)
{
    const struct feat_file *x = a, *y = b;
    if (x->mtime_ns != y->mtime_ns) return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return strcmp(x->path, y->path);
}

struct feat_list {
    struct feat_file *v;
    long n, cap;
    uint64_t total;
};

/* Add the *.feat files in dir, and in its sub-folders down to depth levels. */
static int collect(struct feat_list *l, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d) return STATUS_OK;
    struct dirent *e;
    int st = STATUS_OK;
    while (!st && (e = readdir(d))) {
        const char *name = e->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..")) continue;
        size_t nd = strlen(dir), nn = strlen(name);
        char *path = mem_alloc(nd + nn + 2);
        if (!path) {
            st = STATUS_NOMEM;
            break;
        }
        snprintf(path, nd + nn + 2, "%s/%s", dir, name);
        struct stat sb;
        if (lstat(path, &sb) != 0) {
            mem_free(path);
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            if (depth > 0) st = collect(l, path, depth - 1);
            mem_free(path);
            continue;
        }
        if (!S_ISREG(sb.st_mode) || nn < 5 || strcmp(name + nn - 5, ".feat")) {
            mem_free(path);
            continue;
        }
        if (l->n == l->cap) {
            long c = l->cap ? 2 * l->cap : 1024;
            struct feat_file *v = mem_realloc(l->v, (size_t)c * sizeof *v);
            if (!v) {
                mem_free(path);
                st = STATUS_NOMEM;
                break;
            }
            l->v = v, l->cap = c;
        }
        l->v[l->n++] = (struct feat_file){
            path, (uint64_t)sb.st_size,
            (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec};
        l->total += (uint64_t)sb.st_size;
    }
    closedir(d);
    return st;
}

int cache_trim(const char *features_dir, uint64_t cap, uint64_t *freed_bytes)
{
    if (freed_bytes) *freed_bytes = 0;
    struct feat_list l = {0};
    int st = collect(&l, features_dir, 2);
    if (!st && l.total > cap) {
        qsort(l.v, (size_t)l.n, sizeof *l.v, feat_cmp);
        uint64_t total = l.total, freed = 0;
        for (long i = 0; i < l.n && total > cap; i++) {
            if (unlink(l.v[i].path) != 0 && errno != ENOENT) continue;
            total -= l.v[i].bytes;
            freed += l.v[i].bytes;
        }
        if (freed_bytes) *freed_bytes = freed;
    }
    for (long i = 0; i < l.n; i++) mem_free(l.v[i].path);
    mem_free(l.v);
    return st;
}
