/* src/atomicfile.c - write to a temporary file beside the target, then rename over it. */
#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

int kgm_fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static void release(kgm_atomic_file *a)
{
    free(a->path);
    free(a->tmp);
    a->f = NULL;
    a->path = a->tmp = NULL;
}

int kgm_atomic_open(kgm_atomic_file *a, const char *path)
{
    memset(a, 0, sizeof *a);
    size_t n = strlen(path) + 32;
    a->path = strdup(path);
    a->tmp = malloc(n);
    if (!a->path || !a->tmp) {
        release(a);
        return kgm_fail(KGM_ENOMEM, "out of memory");
    }
    snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        int rc = kgm_fail(KGM_EIO, "cannot write %s: %s", a->tmp, strerror(errno));
        release(a);
        return rc;
    }
    return 0;
}

void kgm_atomic_abort(kgm_atomic_file *a)
{
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    release(a);
}

int kgm_atomic_commit(kgm_atomic_file *a, int durability)
{
    int ok = !ferror(a->f) && fflush(a->f) == 0
             && (durability != KGM_ATOMIC_DURABLE || fsync(fileno(a->f)) == 0);
    int err = ok ? 0 : (errno ? errno : EIO);
    if (fclose(a->f) != 0 && ok) { ok = 0; err = errno; }
    a->f = NULL;
    if (ok && rename(a->tmp, a->path) != 0) { ok = 0; err = errno; }
    if (!ok) {
        int rc = kgm_fail(KGM_EIO, "cannot write %s: %s", a->path, strerror(err));
        kgm_atomic_abort(a);
        return rc;
    }
    int rc = 0;
    if (durability == KGM_ATOMIC_DURABLE && kgm_fsync_dir_of(a->path) != 0)
        rc = kgm_fail(KGM_EIO, "cannot sync the directory of %s: %s", a->path, strerror(errno));
    release(a);
    return rc;
}

int kgm_write_atomic(const char *path, kgm_atomic_writer write, void *ctx, int durability)
{
    kgm_atomic_file a;
    int rc = kgm_atomic_open(&a, path);
    if (rc < 0) return rc;
    errno = 0;
    rc = write(a.f, ctx);
    if (rc < 0) {
        int err = errno ? errno : EIO;
        if (rc == KGM_EIO) rc = kgm_fail(KGM_EIO, "cannot write %s: %s", path, strerror(err));
        kgm_atomic_abort(&a);
        return rc;
    }
    return kgm_atomic_commit(&a, durability);
}
