/* LGPU_PROFILE=1: GPU time per op name, from the timestamps around each
 * dispatch, printed as a table when the device closes. */
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "vk/vk.h"

int lgpu_vk_prof_intern(lgpu_vk_dev *vd, const char *op) {
    pthread_mutex_lock(&vd->prof_lock);
    int i = 0;
    while (i < vd->n_prof && strncmp(vd->prof[i].op, op, sizeof vd->prof[i].op - 1)) i++;
    if (i == vd->n_prof) {
        if (LGPU_GROW(vd->prof, vd->cap_prof, (size_t)vd->n_prof + 1, 32, "profile table")) {
            pthread_mutex_unlock(&vd->prof_lock);
            return -1;
        }
        memset(&vd->prof[i], 0, sizeof vd->prof[i]);
        snprintf(vd->prof[i].op, sizeof vd->prof[i].op, "%s", op);
        vd->n_prof++;
    }
    pthread_mutex_unlock(&vd->prof_lock);
    return i;
}

void lgpu_vk_prof_add(lgpu_vk_dev *vd, int row, double ns) {
    if (row < 0) return;
    pthread_mutex_lock(&vd->prof_lock);
    vd->prof[row].calls++;
    vd->prof[row].total_ns += ns;
    pthread_mutex_unlock(&vd->prof_lock);
}

static int by_total_desc(const void *a, const void *b) {
    double x = ((const lgpu_vk_prof_entry *)a)->total_ns, y = ((const lgpu_vk_prof_entry *)b)->total_ns;
    return x < y ? 1 : x > y ? -1 : 0;
}

void lgpu_vk_prof_print(lgpu_vk_dev *vd, FILE *f) {
    pthread_mutex_lock(&vd->prof_lock);
    qsort(vd->prof, (size_t)vd->n_prof, sizeof *vd->prof, by_total_desc);
    double total = 0;
    uint64_t calls = 0;
    for (int i = 0; i < vd->n_prof; i++) {
        total += vd->prof[i].total_ns;
        calls += vd->prof[i].calls;
    }
    fprintf(f, "lgpu profile (%s): GPU time per op\n", vd->info.name);
    fprintf(f, "%-32s %10s %12s %12s %7s\n", "op", "calls", "total ms", "mean us", "%");
    for (int i = 0; i < vd->n_prof; i++) {
        const lgpu_vk_prof_entry *p = &vd->prof[i];
        if (!p->calls) continue;
        fprintf(f, "%-32s %10llu %12.3f %12.2f %6.1f%%\n", p->op, (unsigned long long)p->calls, p->total_ns / 1e6,
                p->total_ns / 1e3 / (double)p->calls, total > 0 ? 100.0 * p->total_ns / total : 0.0);
    }
    fprintf(f, "%-32s %10llu %12.3f\n", "total", (unsigned long long)calls, total / 1e6);
    pthread_mutex_unlock(&vd->prof_lock);
}

void lgpu_vk_prof_destroy(lgpu_vk_dev *vd) {
    free(vd->prof);
    vd->prof = NULL;
    vd->n_prof = 0;
    vd->cap_prof = 0;
}
