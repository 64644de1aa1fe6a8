// Counts heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) of the
// process it is preloaded into, and writes the running count to $MCOUNT_FILE every 20 ms.
// Built and used by bench/allocs.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_ulong count;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);

// dlsym may allocate before real_calloc is known: serve that from a static arena.
static char arena[4096];
static size_t arena_used;

static void resolve(void) {
    if (real_malloc) return;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
}

void *malloc(size_t n) { resolve(); atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return real_malloc(n); }

void *calloc(size_t a, size_t b) {
    if (!real_calloc) {
        size_t n = (a * b + 15) & ~(size_t)15;
        if (arena_used + n > sizeof arena) return NULL;
        void *p = arena + arena_used;
        arena_used += n;
        return p;  // already zero
    }
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return real_calloc(a, b);
}

void *realloc(void *p, size_t n) { resolve(); atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return real_realloc(p, n); }
int posix_memalign(void **p, size_t a, size_t n) { resolve(); atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return real_posix_memalign(p, a, n); }
void *aligned_alloc(size_t a, size_t n) { resolve(); atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return real_aligned_alloc(a, n); }
void *memalign(size_t a, size_t n) { resolve(); atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return real_memalign(a, n); }

void free(void *p) {
    static void (*real_free)(void *);
    if ((char *)p >= arena && (char *)p < arena + sizeof arena) return;
    if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
    real_free(p);
}

static void *reporter(void *unused) {
    (void)unused;
    const char *path = getenv("MCOUNT_FILE");
    if (!path) return NULL;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    for (;;) {
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%lu\n", atomic_load(&count));
            fclose(f);
            rename(tmp, path);
        }
        usleep(20000);
    }
    return NULL;
}

__attribute__((constructor)) static void start(void) {
    resolve();
    pthread_t t;
    if (getenv("MCOUNT_FILE") && pthread_create(&t, NULL, reporter, NULL) == 0) pthread_detach(t);
}
