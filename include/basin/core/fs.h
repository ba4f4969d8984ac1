/* fs.h: files and folders for every layer: mkdir -p, atomic replacement of a file, removal
 * of temporaries that dead processes left behind, and the user's cache and state folders.
 *
 * Atomic writes: the new content goes to "<path>.tmp-<pid>-<n>" beside the target, is
 * fsync'ed, renamed over the target, and the folder is fsync'ed so the rename survives a
 * power loss. A reader sees the old file or the new one, never a mix. A process killed
 * mid-write leaves its temporary behind; the next atomic write to the same path (by any
 * process) removes the temporaries whose process no longer exists. Folders are replaced the
 * same way by their writers (synth), with fs_temp_dir and fs_sync_parent.
 *
 * Modes follow the user's umask (0666 files, 0777 folders), as cp and mkdir do.
 */
#ifndef BASIN_CORE_FS_H
#define BASIN_CORE_FS_H

#include <stddef.h>
#include <stdint.h>

#define FS_PATH_MAX 4096

/* mkdir -p: create path and its missing parents. 0, STATUS_INVALID for an empty or too long
 * path, STATUS_IO naming the part that could not be made (or exists and is no folder). */
int fs_mkdir_p(const char *path);
/* fs_mkdir_p of the folder holding path (nothing for a bare name). */
int fs_mkdir_parent(const char *path);

enum fs_atomic_flags {
    FS_ATOMIC_NO_SYNC = 1, /* no fsync: for caches, whose readers validate what they read */
};

/* One atomic file write in progress (caller storage; begin ... commit or abort). */
struct fs_atomic {
    int fd;                     /* the temporary, open read-write; -1 when closed */
    int flags;                  /* enum fs_atomic_flags */
    char path[FS_PATH_MAX];     /* the target */
    char tmp[FS_PATH_MAX + 48]; /* the temporary beside it */
};

/* Remove the stale temporaries of path (fs_clean_stale), then create a new temporary beside
 * it (O_EXCL, close-on-exec). The folder must exist. 0, STATUS_INVALID (path too long) or
 * STATUS_IO naming path and the reason. On failure nothing is left open. */
int fs_atomic_begin(struct fs_atomic *w, const char *path, int flags);
/* Write all of buf to the temporary (short writes and EINTR retried). 0 or STATUS_IO. */
int fs_atomic_write(struct fs_atomic *w, const void *buf, size_t n);
/* fsync, close, rename over path, fsync the folder (no syncs with FS_ATOMIC_NO_SYNC). On
 * failure (STATUS_IO naming path) the temporary is removed and the target is untouched. */
int fs_atomic_commit(struct fs_atomic *w);
/* Close and remove the temporary; a no-op after commit or a previous abort. */
void fs_atomic_abort(struct fs_atomic *w);

/* Write n bytes to path atomically (begin, write, commit). */
int fs_write_file(const char *path, const void *buf, size_t n, int flags);

/* A new temporary folder "<path>.tmp-<pid>-XXXXXX" beside path (name in tmp, n bytes),
 * created with the umask's mode, after removing path's stale temporaries. The caller fills
 * it, renames it into place and calls fs_sync_parent. 0, STATUS_INVALID, STATUS_IO. */
int fs_temp_dir(const char *path, char *tmp, size_t n);
/* fsync the folder holding path, so a rename into it is durable (best effort: some file
 * systems refuse to fsync a folder). */
void fs_sync_parent(const char *path);

/* Remove the files and folders "<path>.tmp-<pid>-*" beside path whose process <pid> no
 * longer exists. Returns how many were removed. */
int fs_clean_stale(const char *path);
/* rm -rf path (best effort; no-op when absent). */
void fs_remove_tree(const char *path);

/* Bytes and files under path (regular files only, symbolic links not followed). */
int fs_tree_size(const char *path, uint64_t *bytes, long *files);

/* "$XDG_CACHE_HOME/basin/<sub>" when XDG_CACHE_HOME is set and absolute, else
 * "$HOME/.cache/basin/<sub>" (sub NULL or "": the basin folder itself). Nothing is created.
 * STATUS_NOT_FOUND when neither variable helps, STATUS_INVALID when buf (n) is too small. */
int fs_cache_dir(const char *sub, char *buf, size_t n);
/* The same under $XDG_STATE_HOME, else $HOME/.local/state (command history). */
int fs_state_dir(const char *sub, char *buf, size_t n);

#endif
