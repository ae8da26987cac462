/* Status codes, per-thread error details and logging. */
#include "lgpu/lgpu.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *lgpu_strerror(int status) {
    switch (status) {
#define LGPU_X_STR(name, value, desc) \
    case value: return desc;
        LGPU_STATUS_MAP(LGPU_X_STR)
#undef LGPU_X_STR
    default: return "unknown error";
    }
}

const char *lgpu_err_name(int status) {
    switch (status) {
#define LGPU_X_NAME(name, value, desc) \
    case value: return "LGPU_" #name;
        LGPU_STATUS_MAP(LGPU_X_NAME)
#undef LGPU_X_NAME
    default: return "LGPU_E?";
    }
}

static _Thread_local char last_error[1024];

const char *lgpu_last_error(void) { return last_error; }

void lgpu_clear_error(void) { last_error[0] = 0; }

int lgpu_set_error(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    lgpu_log(LGPU_LOG_DEBUG, "%s: %s", lgpu_err_name(status), last_error);
    return status;
}

static int log_threshold(void) {
    static int threshold = -1;
    if (threshold < 0) {
        const char *e = getenv("LGPU_LOG");
        threshold = LGPU_LOG_WARN;
        if (e) {
            if (!strcasecmp(e, "debug")) threshold = LGPU_LOG_DEBUG;
            else if (!strcasecmp(e, "info")) threshold = LGPU_LOG_INFO;
            else if (!strcasecmp(e, "error")) threshold = LGPU_LOG_ERROR;
        }
    }
    return threshold;
}

void lgpu_log(lgpu_log_level level, const char *fmt, ...) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    if ((int)level < log_threshold()) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lgpu %s: ", names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
