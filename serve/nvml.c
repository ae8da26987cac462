/* NVML through dlopen: the few entry points /monitor/gpu reads, declared
 * here with NVML's documented C signatures (nvml.h, API version 2). */
#include "nvml.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

typedef struct nvml_device *nvml_device_t;
typedef struct { unsigned int gpu, memory; } nvml_utilization_t;
typedef struct { unsigned long long total, free, used; } nvml_memory_t;

#define NVML_SUCCESS 0
#define NVML_TEMPERATURE_GPU 0

static struct {
    void *lib;
    char reason[200];
    int (*init)(void);
    int (*count)(unsigned int *);
    int (*handle)(unsigned int, nvml_device_t *);
    int (*name)(nvml_device_t, char *, unsigned int);
    int (*util)(nvml_device_t, nvml_utilization_t *);
    int (*mem)(nvml_device_t, nvml_memory_t *);
    int (*power)(nvml_device_t, unsigned int *);
    int (*temp)(nvml_device_t, int, unsigned int *);
} nv;
static pthread_once_t nv_once = PTHREAD_ONCE_INIT;

static void nv_load(void) {
    nv.lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!nv.lib) {
        snprintf(nv.reason, sizeof nv.reason, "libnvidia-ml.so.1 not found (no NVIDIA driver on this machine)");
        return;
    }
    *(void **)&nv.init = dlsym(nv.lib, "nvmlInit_v2");
    *(void **)&nv.count = dlsym(nv.lib, "nvmlDeviceGetCount_v2");
    *(void **)&nv.handle = dlsym(nv.lib, "nvmlDeviceGetHandleByIndex_v2");
    *(void **)&nv.name = dlsym(nv.lib, "nvmlDeviceGetName");
    *(void **)&nv.util = dlsym(nv.lib, "nvmlDeviceGetUtilizationRates");
    *(void **)&nv.mem = dlsym(nv.lib, "nvmlDeviceGetMemoryInfo");
    *(void **)&nv.power = dlsym(nv.lib, "nvmlDeviceGetPowerUsage");
    *(void **)&nv.temp = dlsym(nv.lib, "nvmlDeviceGetTemperature");
    int rc = -1;
    if (!nv.init || !nv.count || !nv.handle) snprintf(nv.reason, sizeof nv.reason, "libnvidia-ml.so.1 lacks nvmlInit_v2");
    else if ((rc = nv.init()) != NVML_SUCCESS) snprintf(nv.reason, sizeof nv.reason, "nvmlInit_v2 failed (NVML error %d)", rc);
    if (rc != NVML_SUCCESS) {
        dlclose(nv.lib);
        nv.lib = NULL;
    }
}

static json_t *uint_or_null(int ok, double v) { return ok ? json_real(v) : json_null(); }

json_t *srv_nvml_json(void) {
    pthread_once(&nv_once, nv_load);
    json_t *o = json_object();
    if (!nv.lib) {
        json_object_set_new(o, "available", json_false());
        json_object_set_new(o, "reason", json_string(nv.reason));
        return o;
    }
    unsigned int n = 0;
    nv.count(&n);
    json_t *devs = json_array();
    for (unsigned int i = 0; i < n; i++) {
        nvml_device_t d;
        if (nv.handle(i, &d) != NVML_SUCCESS) continue;
        char name[96] = "";
        nvml_utilization_t u;
        nvml_memory_t m;
        unsigned int mw, c;
        int ok_u = nv.util && nv.util(d, &u) == NVML_SUCCESS, ok_m = nv.mem && nv.mem(d, &m) == NVML_SUCCESS;
        int ok_p = nv.power && nv.power(d, &mw) == NVML_SUCCESS;
        int ok_t = nv.temp && nv.temp(d, NVML_TEMPERATURE_GPU, &c) == NVML_SUCCESS;
        if (nv.name) nv.name(d, name, sizeof name);
        json_t *j = json_object();
        json_object_set_new(j, "index", json_integer(i));
        json_object_set_new(j, "name", json_string(name));
        json_object_set_new(j, "utilization_gpu", uint_or_null(ok_u, ok_u ? u.gpu / 100.0 : 0));
        json_object_set_new(j, "utilization_memory", uint_or_null(ok_u, ok_u ? u.memory / 100.0 : 0));
        json_object_set_new(j, "memory_used_bytes", uint_or_null(ok_m, ok_m ? (double)m.used : 0));
        json_object_set_new(j, "memory_total_bytes", uint_or_null(ok_m, ok_m ? (double)m.total : 0));
        json_object_set_new(j, "power_w", uint_or_null(ok_p, ok_p ? mw / 1000.0 : 0));
        json_object_set_new(j, "temperature_c", uint_or_null(ok_t, ok_t ? (double)c : 0));
        json_array_append_new(devs, j);
    }
    json_object_set_new(o, "available", json_true());
    json_object_set_new(o, "devices", devs);
    return o;
}
