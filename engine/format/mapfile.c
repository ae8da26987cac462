/* Whole-file read-only mmap with errno-specific details, or borrowed memory. */
#include "format/mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgpu/lgpu.h"

const char *lgpu_path_base(const char *path) {
    if (!path) return "(null)";
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--; /* "dir/" names dir */
    const char *end = path + n, *b = end;
    while (b > path && b[-1] != '/') b--;
    return *b ? b : path;
}

int lgpu_mapfile_create(const char *path, lgpu_mapfile *m) {
    *m = (lgpu_mapfile){0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return lgpu_set_error(e == ENOENT ? LGPU_ENOTFOUND : LGPU_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return lgpu_set_error(LGPU_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return lgpu_set_error(LGPU_EIO, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return lgpu_set_error(LGPU_EIO, "%s: mmap of %lld bytes failed: %s", path, (long long)st.st_size,
                                  strerror(e));
        }
        m->data = p;
        m->size = (uint64_t)st.st_size;
    }
    close(fd);
    return 0;
}

void lgpu_mapfile_from_memory(const void *data, uint64_t size, lgpu_mapfile *m) {
    *m = (lgpu_mapfile){.data = size ? data : NULL, .size = size, .borrowed = true};
}

void lgpu_mapfile_destroy(lgpu_mapfile *m) {
    if (m && m->data && !m->borrowed) munmap((void *)m->data, (size_t)m->size);
    if (m) *m = (lgpu_mapfile){0};
}
