/* src/atomicfile.h - files replaced all-or-nothing: written to PATH.tmp.PID beside the target,
 * then renamed over it, so a reader (or a reopen after a crash) sees the old file or the new
 * one, never half of one. Durable writes also fsync the file before the rename and the
 * directory after it, so an acknowledged write survives power loss; files that are cheap to
 * rebuild (generated datasets) may skip both syncs.
 *
 * The kgm_atomic_file owns its FILE and both path strings until commit or abort, which always
 * release them (also on failure). Errors follow error.h: 0, or a negative KGM_E* code with
 * a one-line message naming the file. */
#ifndef KGM_ATOMICFILE_H
#define KGM_ATOMICFILE_H

#include <stdio.h>

typedef struct {
    FILE *f;           /* write here between open and commit */
    char *path, *tmp;
} kgm_atomic_file;

enum { KGM_ATOMIC_FAST = 0, KGM_ATOMIC_DURABLE = 1 };

/* Creates PATH.tmp.PID for writing. */
int kgm_atomic_open(kgm_atomic_file *a, const char *path);

/* Flushes (and with KGM_ATOMIC_DURABLE fsyncs), closes and renames into place; a write error
 * seen on the stream fails the commit. On any failure the temporary file is removed and the
 * target is left as it was. */
int kgm_atomic_commit(kgm_atomic_file *a, int durability);

/* Closes and removes the temporary file; the target is untouched. */
void kgm_atomic_abort(kgm_atomic_file *a);

/* open + write(f, ctx) + commit in one call; a negative return of write aborts and is passed on
 * (write reports its own error through kgm_fail; a bare stream error is reported here). */
typedef int (*kgm_atomic_writer)(FILE *f, void *ctx);
int kgm_write_atomic(const char *path, kgm_atomic_writer write, void *ctx, int durability);

/* fsyncs the directory holding path, so a rename or create in it is durable. */
int kgm_fsync_dir_of(const char *path);

#endif
