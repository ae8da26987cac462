/* Persistent host thread pool behind lgpu_parallel_for.
 *
 * One process-wide pool, created lazily and grown on demand up to
 * MAX_THREADS-1 workers; the caller always works as thread 0. A job is
 * published by writing its fields, marking each participating worker POSTED
 * and bumping its `go` counter. A worker joins by moving POSTED -> RUNNING;
 * chunks are handed out through an atomic counter. When the caller runs out
 * of chunks it cancels workers that have not joined yet (POSTED -> IDLE) and
 * waits only for RUNNING ones, so a worker that is asleep or descheduled
 * costs nothing and a preempted one delays at most its current chunk. Idle
 * workers spin briefly (a decode step issues ~100 jobs per token, a few
 * microseconds apart) and then sleep on a condition variable.
 *
 * Concurrency: only one job runs at a time. A call that finds the pool busy
 * (another program thread, or a nested call from inside a job) does not wait:
 * it runs its whole range on its own thread, which gives the same results
 * because callers must not depend on the split. An atexit handler stops and
 * joins the workers so leak checkers see no thread stacks. */
#include "core/parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define MAX_THREADS 64
#define CHUNKS_PER_THREAD 4
#define SPIN_NS 100000 /* how long a waiting thread polls before sleeping or yielding */

enum { IDLE, POSTED, RUNNING, DONE };

typedef struct {
    _Alignas(64) atomic_uint go; /* bumped by the caller to wake this worker */
    atomic_int state;            /* IDLE / POSTED / RUNNING / DONE for the current job */
    pthread_t tid;
} worker;

static struct {
    pthread_mutex_t busy; /* held by the thread running a job */
    pthread_mutex_t mu;   /* guards sleeping and stop for the condvar */
    pthread_cond_t cv;
    int nworkers; /* started workers, indices 1..nworkers */
    bool atexit_registered;
    atomic_int nsleep;
    atomic_bool stop;
    /* the current job, written before the workers are marked POSTED */
    lgpu_range_fn fn;
    void *ctx;
    int64_t n, nchunks;
    _Alignas(64) atomic_llong next_chunk;
    worker w[MAX_THREADS];
} pool = {.busy = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Run chunks of the current job until none are left. Chunk c covers
 * [n*c/nchunks, n*(c+1)/nchunks). */
static void run_chunks(int thread) {
    const int64_t n = pool.n, nchunks = pool.nchunks;
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&pool.next_chunk, 1, memory_order_relaxed);
        if (c >= nchunks) break;
        pool.fn(pool.ctx, n * c / nchunks, n * (c + 1) / nchunks, thread);
    }
}

/* Wait until *go differs from `seen`, spinning first; returns the new value. */
static unsigned wait_go(worker *w, unsigned seen) {
    int64_t t0 = 0;
    for (int i = 0;; i++) {
        unsigned g = atomic_load_explicit(&w->go, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
        if ((i & 255) == 255) {
            int64_t t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > SPIN_NS) break;
        }
    }
    pthread_mutex_lock(&pool.mu);
    atomic_fetch_add(&pool.nsleep, 1); /* seq_cst: pairs with the caller's go store + nsleep load */
    unsigned g;
    while ((g = atomic_load(&w->go)) == seen) pthread_cond_wait(&pool.cv, &pool.mu);
    atomic_fetch_sub(&pool.nsleep, 1);
    pthread_mutex_unlock(&pool.mu);
    return g;
}

static void *worker_main(void *arg) {
    int index = (int)(intptr_t)arg;
    worker *w = &pool.w[index];
    unsigned seen = 0; /* grow() zeroed go before creating us; a job may already be posted */
    for (;;) {
        seen = wait_go(w, seen);
        if (atomic_load_explicit(&pool.stop, memory_order_acquire)) break;
        int expect = POSTED; /* fails if the caller already finished without us */
        if (!atomic_compare_exchange_strong_explicit(&w->state, &expect, RUNNING, memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        run_chunks(index);
        atomic_store_explicit(&w->state, DONE, memory_order_release);
    }
    return NULL;
}

static void wake_all(void) {
    if (atomic_load(&pool.nsleep) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }
}

static void shutdown_pool(void) {
    /* If a job is still running on another thread at exit, leave the workers
     * alone rather than deadlock. */
    if (pthread_mutex_trylock(&pool.busy)) return;
    atomic_store(&pool.stop, true);
    for (int i = 1; i <= pool.nworkers; i++) atomic_fetch_add(&pool.w[i].go, 1);
    pthread_mutex_lock(&pool.mu);
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 1; i <= pool.nworkers; i++) pthread_join(pool.w[i].tid, NULL);
    pool.nworkers = 0;
    pthread_mutex_unlock(&pool.busy);
}

/* Start workers up to index nthreads-1; called with `busy` held. Returns the
 * number of threads actually available (>= 1). */
static int grow(int nthreads) {
    if (!pool.atexit_registered) {
        pool.atexit_registered = true;
        atexit(shutdown_pool);
    }
    while (pool.nworkers < nthreads - 1 && !atomic_load(&pool.stop)) {
        int i = pool.nworkers + 1;
        atomic_store(&pool.w[i].go, 0);
        atomic_store(&pool.w[i].state, IDLE);
        if (pthread_create(&pool.w[i].tid, NULL, worker_main, (void *)(intptr_t)i)) break;
        pool.nworkers = i;
    }
    return pool.nworkers + 1 < nthreads ? pool.nworkers + 1 : nthreads;
}

void lgpu_parallel_for(int nthreads, int64_t n, lgpu_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    if (nthreads > n) nthreads = (int)n;
    if (nthreads <= 1 || pthread_mutex_trylock(&pool.busy)) {
        fn(ctx, 0, n, 0);
        return;
    }
    nthreads = grow(nthreads);
    if (nthreads <= 1 || atomic_load(&pool.stop)) {
        pthread_mutex_unlock(&pool.busy);
        fn(ctx, 0, n, 0);
        return;
    }
    int64_t nchunks = (int64_t)nthreads * CHUNKS_PER_THREAD;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.nchunks = nchunks < n ? nchunks : n;
    atomic_store_explicit(&pool.next_chunk, 0, memory_order_relaxed);
    for (int i = 1; i < nthreads; i++) {
        atomic_store_explicit(&pool.w[i].state, POSTED, memory_order_release); /* publishes the job fields */
        atomic_fetch_add(&pool.w[i].go, 1);                                    /* seq_cst: see wait_go */
    }
    wake_all();

    run_chunks(0);
    for (int w = 1; w < nthreads; w++) {
        int expect = POSTED;
        if (atomic_compare_exchange_strong(&pool.w[w].state, &expect, IDLE)) continue; /* never joined */
        int64_t t0 = 0;
        for (int i = 0; atomic_load_explicit(&pool.w[w].state, memory_order_acquire) != DONE; i++) {
            cpu_relax();
            if ((i & 255) == 255) { /* preempted mid-chunk: stop burning the core */
                int64_t t = now_ns();
                if (!t0) t0 = t;
                else if (t - t0 > SPIN_NS) sched_yield();
            }
        }
        atomic_store_explicit(&pool.w[w].state, IDLE, memory_order_relaxed);
    }
    pthread_mutex_unlock(&pool.busy);
}

int lgpu_default_threads(void) {
    const char *e = getenv("LGPU_THREADS");
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end == 0 && v >= 1) return v > MAX_THREADS ? MAX_THREADS : (int)v;
    }
    static atomic_int cores;
    int c = atomic_load_explicit(&cores, memory_order_relaxed);
    if (!c) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        c = online >= 1 ? (int)online : 1;
#ifdef CPU_COUNT
        cpu_set_t set;
        if (!sched_getaffinity(0, sizeof set, &set) && CPU_COUNT(&set) >= 1 && CPU_COUNT(&set) < c)
            c = CPU_COUNT(&set);
#endif
        if (c > MAX_THREADS) c = MAX_THREADS;
        atomic_store_explicit(&cores, c, memory_order_relaxed);
    }
    return c;
}
