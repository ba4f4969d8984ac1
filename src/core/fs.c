/* fs.c: mkdir -p, atomic file replacement, stale temporaries, user folders (see fs.h).
 *
 * Temporaries are named "<target>.tmp-<pid>-<suffix>", so whoever writes to the target next
 * can tell from the name alone whether the process that made one is still alive
 * (kill(pid, 0) fails with ESRCH only for a pid that does not exist).
 */
#define _GNU_SOURCE
#include "basin/core/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basin/core/status.h"

int fs_mkdir_p(const char *path)
{
    char buf[FS_PATH_MAX];
    size_t n = strlen(path);
    if (n == 0) return status_set(STATUS_INVALID, "empty folder name");
    if (n >= sizeof buf) return status_set(STATUS_INVALID, "%.64s...: folder name too long", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        if (buf[i - 1] == '/') continue; /* "a//b" */
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return status_set(STATUS_IO, "%s: cannot create folder %s: %s", path, buf,
                              strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return status_set(STATUS_IO, "%s: exists and is not a folder", path);
    return STATUS_OK;
}

int fs_mkdir_parent(const char *path)
{
    char buf[FS_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return STATUS_OK;
    if ((size_t)(slash - path) >= sizeof buf)
        return status_set(STATUS_INVALID, "%.64s...: path too long", path);
    snprintf(buf, sizeof buf, "%.*s", (int)(slash - path), path);
    return fs_mkdir_p(buf);
}

/* The folder holding path and the file name in it. */
static void split_path(const char *path, char *dir, size_t n_dir, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, n_dir, ".");
        *base = path;
    } else {
        if (slash == path) snprintf(dir, n_dir, "/");
        else snprintf(dir, n_dir, "%.*s", (int)(slash - path), path);
        *base = slash + 1;
    }
}

void fs_sync_parent(const char *path)
{
    char dir[FS_PATH_MAX];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void fs_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int fs_clean_stale(const char *path)
{
    char dir[FS_PATH_MAX], full[FS_PATH_MAX + 300];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    size_t blen = strlen(base);
    if (!blen) return 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (strncmp(name, base, blen) || strncmp(name + blen, ".tmp-", 5)) continue;
        char *end;
        errno = 0;
        long pid = strtol(name + blen + 5, &end, 10);
        if (errno || end == name + blen + 5 || *end != '-' || pid <= 0) continue;
        if (pid == (long)getpid()) continue; /* ours: another thread may be writing it */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        snprintf(full, sizeof full, "%s/%s", dir, name);
        fs_remove_tree(full);
        removed++;
    }
    closedir(d);
    return removed;
}

int fs_atomic_begin(struct fs_atomic *w, const char *path, int flags)
{
    static atomic_uint seq;
    w->fd = -1;
    w->flags = flags;
    w->tmp[0] = 0;
    size_t n = strlen(path);
    if (n == 0) return status_set(STATUS_INVALID, "empty file name");
    if (n >= sizeof w->path) return status_set(STATUS_INVALID, "%.64s...: path too long", path);
    memcpy(w->path, path, n + 1);
    fs_clean_stale(path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp-%ld-%u", path, (long)getpid(),
             atomic_fetch_add(&seq, 1u));
    w->fd = open(w->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (w->fd < 0) {
        int err = errno;
        w->tmp[0] = 0;
        return status_set(STATUS_IO, "%s: cannot create a file beside it: %s", path,
                          strerror(err));
    }
    return STATUS_OK;
}

int fs_atomic_write(struct fs_atomic *w, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t k = write(w->fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return status_set(STATUS_IO, "%s: write failed: %s", w->path,
                              k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return STATUS_OK;
}

int fs_atomic_commit(struct fs_atomic *w)
{
    int sync = !(w->flags & FS_ATOMIC_NO_SYNC), s = STATUS_OK;
    if (sync && fsync(w->fd) != 0)
        s = status_set(STATUS_IO, "%s: fsync failed: %s", w->path, strerror(errno));
    int rc = close(w->fd);
    w->fd = -1;
    if (!s && rc != 0) s = status_set(STATUS_IO, "%s: close failed: %s", w->path, strerror(errno));
    if (!s && rename(w->tmp, w->path) != 0)
        s = status_set(STATUS_IO, "%s: cannot replace it: %s", w->path, strerror(errno));
    if (s) {
        fs_atomic_abort(w);
        return s;
    }
    w->tmp[0] = 0;
    if (sync) fs_sync_parent(w->path);
    return STATUS_OK;
}

void fs_atomic_abort(struct fs_atomic *w)
{
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->tmp[0]) unlink(w->tmp);
    w->tmp[0] = 0;
}

int fs_write_file(const char *path, const void *buf, size_t n, int flags)
{
    struct fs_atomic w;
    int s = fs_atomic_begin(&w, path, flags);
    if (s) return s;
    if ((s = fs_atomic_write(&w, buf, n))) {
        fs_atomic_abort(&w);
        return s;
    }
    return fs_atomic_commit(&w);
}

int fs_temp_dir(const char *path, char *tmp, size_t n)
{
    int k = snprintf(tmp, n, "%s.tmp-%ld-XXXXXX", path, (long)getpid());
    if (k < 0 || (size_t)k >= n) return status_set(STATUS_INVALID, "%.64s...: path too long", path);
    fs_clean_stale(path);
    if (!mkdtemp(tmp))
        return status_set(STATUS_IO, "%s: cannot create a folder beside it: %s", path,
                          strerror(errno));
    /* mkdtemp makes 0700; a data set is shared like any folder the user makes. */
    mode_t mask = umask(0);
    umask(mask);
    if (chmod(tmp, 0777 & ~mask) != 0) {
        int err = errno;
        rmdir(tmp);
        return status_set(STATUS_IO, "%s: %s", tmp, strerror(err));
    }
    return STATUS_OK;
}

static _Thread_local uint64_t tree_bytes;
static _Thread_local long tree_files;

static int add_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (flag == FTW_F && S_ISREG(sb->st_mode)) {
        tree_bytes += (uint64_t)sb->st_size;
        tree_files++;
    }
    return 0;
}

int fs_tree_size(const char *path, uint64_t *bytes, long *files)
{
    tree_bytes = 0;
    tree_files = 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        *bytes = 0, *files = 0;
        if (errno == ENOENT) return STATUS_OK;
        return status_set(STATUS_IO, "%s: %s", path, strerror(errno));
    }
    nftw(path, add_entry, 16, FTW_PHYS);
    *bytes = tree_bytes;
    *files = tree_files;
    return STATUS_OK;
}

/* "$<var>/basin/<sub>" or "$HOME/<fallback>/basin/<sub>". */
static int user_dir(const char *var, const char *fallback, const char *sub, char *buf, size_t n)
{
    const char *base = getenv(var), *home = getenv("HOME");
    const char *sep = sub && *sub ? "/" : "", *s = sub ? sub : "";
    int k;
    if (base && base[0] == '/') k = snprintf(buf, n, "%s/basin%s%s", base, sep, s);
    else if (home && home[0]) k = snprintf(buf, n, "%s/%s/basin%s%s", home, fallback, sep, s);
    else return status_set(STATUS_NOT_FOUND, "neither %s nor HOME is set", var);
    if (k < 0 || (size_t)k >= n) return status_set(STATUS_INVALID, "%s: path too long", var);
    return STATUS_OK;
}

int fs_cache_dir(const char *sub, char *buf, size_t n)
{
    return user_dir("XDG_CACHE_HOME", ".cache", sub, buf, n);
}

int fs_state_dir(const char *sub, char *buf, size_t n)
{
    return user_dir("XDG_STATE_HOME", ".local/state", sub, buf, n);
}
