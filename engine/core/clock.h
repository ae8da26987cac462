/* Monotonic wall clock for timings, progress and timeouts. */
#ifndef LGPU_CORE_CLOCK_H
#define LGPU_CORE_CLOCK_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double lgpu_now_s(void);

#endif
