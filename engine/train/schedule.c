/* Learning-rate schedules: transformers' lambdas in double (schedule.h). */
#include "train/schedule.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

static double max1(double x) { return x > 1.0 ? x : 1.0; }

float lgpu_lr_at(const lgpu_lr_schedule *s, uint64_t step) {
    double t = (double)step, w = (double)s->warmup_steps, total = (double)s->total_steps, f;
    if (step < s->warmup_steps) {
        f = t / max1(w);
    } else {
        switch (s->kind) {
        case LGPU_LR_LINEAR: f = fmax(0.0, (total - t) / max1(total - w)); break;
        case LGPU_LR_COSINE: f = fmax(0.0, 0.5 * (1.0 + cos(PI * 0.5 * 2.0 * ((t - w) / max1(total - w))))); break;
        default: f = 1.0; break;
        }
    }
    return (float)(s->lr * f);
}

static const char *const names[] = {"constant", "linear", "cosine"};

int lgpu_lr_kind_parse(const char *name) {
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0) return i;
    return -1;
}

const char *lgpu_lr_kind_name(lgpu_lr_kind kind) {
    return (unsigned)kind < 3 ? names[kind] : "unknown";
}
