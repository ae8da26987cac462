/* Files written whole or not at all (core/atomic_file.h). */
#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lgpu/lgpu.h"

int lgpu_fsync_parent_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return lgpu_set_error(LGPU_ENOMEM, "fsync of the folder of %s", path);
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int st = 0;
    if (fd < 0 || fsync(fd) != 0) st = lgpu_set_error(LGPU_EIO, "%s: cannot sync the folder: %s", dir, strerror(errno));
    if (fd >= 0) close(fd);
    free(copy);
    return st;
}

int lgpu_atomic_file_begin(lgpu_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path);
    af->path = strdup(path);
    af->tmp = malloc(n + 5);
    if (!af->path || !af->tmp) {
        lgpu_atomic_file_abort(af);
        return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", path);
    }
    memcpy(af->tmp, path, n);
    memcpy(af->tmp + n, ".tmp", 5);
    if (!(af->f = fopen(af->tmp, "wb"))) {
        int st = lgpu_set_error(LGPU_EIO, "%s: cannot create: %s", af->tmp, strerror(errno));
        lgpu_atomic_file_abort(af);
        return st;
    }
    return 0;
}

int lgpu_atomic_file_write(lgpu_atomic_file *af, const void *data, size_t n) {
    if (!af->f) return lgpu_set_error(LGPU_EINVAL, "atomic file: write without begin");
    if (af->failed) return lgpu_set_error(LGPU_EIO, "%s: an earlier write failed", af->tmp);
    if (n && fwrite(data, 1, n, af->f) != n) {
        af->failed = true;
        return lgpu_set_error(LGPU_EIO, "%s: write failed: %s", af->tmp, strerror(errno));
    }
    return 0;
}

int lgpu_atomic_file_commit(lgpu_atomic_file *af) {
    if (!af->f) return lgpu_set_error(LGPU_EINVAL, "atomic file: commit without begin");
    int st = 0;
    if (af->failed) st = lgpu_set_error(LGPU_EIO, "%s: an earlier write failed", af->tmp);
    else if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0)
        st = lgpu_set_error(LGPU_EIO, "%s: flush failed: %s", af->tmp, strerror(errno));
    FILE *f = af->f;
    af->f = NULL;
    if (fclose(f) != 0 && !st) st = lgpu_set_error(LGPU_EIO, "%s: close failed: %s", af->tmp, strerror(errno));
    if (!st && rename(af->tmp, af->path) != 0)
        st = lgpu_set_error(LGPU_EIO, "%s: rename to %s failed: %s", af->tmp, af->path, strerror(errno));
    if (!st) st = lgpu_fsync_parent_dir(af->path);
    else unlink(af->tmp);
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    return st;
}

void lgpu_atomic_file_abort(lgpu_atomic_file *af) {
    if (af->f) {
        fclose(af->f);
        af->f = NULL;
        unlink(af->tmp);
    }
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
}

int lgpu_write_file_atomic(const char *path, const void *data, size_t n) {
    lgpu_atomic_file af;
    int st = lgpu_atomic_file_begin(&af, path);
    if (!st) st = lgpu_atomic_file_write(&af, data, n);
    if (!st) return lgpu_atomic_file_commit(&af);
    lgpu_atomic_file_abort(&af);
    return st;
}
