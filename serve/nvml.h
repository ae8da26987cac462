/* NVIDIA's NVML, when the driver's libnvidia-ml.so.1 is on the machine:
 * loaded with dlopen at the first call, never a build dependency. Without
 * it, the answer says why and nothing fails. */
#ifndef LGPU_SERVE_NVML_H
#define LGPU_SERVE_NVML_H

#include <jansson.h>

/* {"available": true, "devices": [{"index", "name", "utilization_gpu",
 * "utilization_memory", "memory_used_bytes", "memory_total_bytes",
 * "power_w", "temperature_c"}, ...]} or {"available": false, "reason": ...};
 * a figure NVML cannot give is null. Thread-safe. */
json_t *srv_nvml_json(void);

#endif
