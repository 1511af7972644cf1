/* veil-h5check — checks an untrusted HDF5 file for the loaders, in a
 * process of its own (model_h5.c says why).
 *
 *   veil-h5check JOB [ARG...] < IMAGE > ANSWER
 *
 * Reads the file's bytes from stdin, runs the loader's job on them (model;
 * inputs NAME RANK... [--regression], the last when the labels are a
 * regressor's float targets) and writes the answer: the int32 status, then the
 * error message when it is not 0. Exit 0 when the answer was written; a
 * crash, or the alarm after VEIL_H5_CHECK_SECONDS, is the caller's error.
 * Not meant to be run by hand: veil_model_load and veil_inputs_read start
 * it.
 *
 * A guarded allocator. This process has not the caller's heap layout, so
 * an over-read in libhdf5 that lands on mapped memory here could land on
 * unmapped memory there (or the reverse). So every block allocated while
 * the file is read here ends where 8 MiB of inaccessible address space
 * begin, and blocks follow each other with such a gap between them: reading
 * past the end of any buffer libhdf5 allocated (or before its start), by 16
 * bytes or by megabytes, stops this process with SIGSEGV, and the check is
 * at least as strict as the caller's own reading. Electric Fence leaves one
 * page; that was not enough: the reported file (models/tiny.h5 with byte
 * 1261 flipped) makes libhdf5 read 65,288 bytes into a 160-byte message,
 * over a page and into another block. The gaps are address space only, no
 * memory. glibc supports replacing malloc this way (its manual, "Replacing
 * malloc"). Not under a sanitizer, whose allocator the program then keeps. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5util.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GUARDED_HEAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define GUARDED_HEAP 0
#endif
#endif
#ifndef GUARDED_HEAP
#define GUARDED_HEAP 1
#endif

#if GUARDED_HEAP
/* glibc's own allocator, for when the guarded arena is full. */
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

/* Before each block: where its pages start and their length (0: from
 * glibc), and the size asked. */
typedef struct guard_header {
    void *base;
    size_t len;
    size_t size;
    size_t pad;
} guard_header;

/* One reservation of address space, inaccessible until a block's pages are
 * made readable and writable: blocks are placed one after another with
 * GUARD_GAP bytes left inaccessible after each. */
enum { GUARD_PAGE = 4096 };
#define GUARD_GAP ((size_t)8 << 20)
#define GUARD_ARENA ((size_t)1 << 42) /* 4 TiB of address space, no memory */
static unsigned char *g_arena, *g_next, *g_end;
static int g_guard; /* from the first byte of the file on; libhdf5's start-up is not the file's */

/* Freed blocks of up to REUSE_PAGES pages, kept (readable and writable, the
 * gap after each still closed) for the next block of their page count:
 * most of libhdf5's blocks are small and freed soon, and changing a
 * mapping is the cost of this allocator. */
enum { REUSE_PAGES = 8, REUSE_DEPTH = 256 };
static unsigned char *g_reuse[REUSE_PAGES + 1][REUSE_DEPTH];
static int g_reuse_n[REUSE_PAGES + 1];

/* DATA bytes of pages in the arena, followed by a gap; NULL before the file
 * is read, or when the arena's mappings, each one a kernel VMA, run out
 * (vm.max_map_count) before its space does. */
static unsigned char *arena_block(size_t data) {
    if (!g_guard) return NULL;
    if (!g_arena) {
        void *a =
            mmap(NULL, GUARD_ARENA, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        g_arena = g_next = g_end = a == MAP_FAILED ? (unsigned char *)1 : a;
        if (a != MAP_FAILED) g_end = g_arena + GUARD_ARENA;
    }
    const size_t pages = data / GUARD_PAGE;
    if (pages <= REUSE_PAGES && g_reuse_n[pages] > 0) return g_reuse[pages][--g_reuse_n[pages]];
    if ((size_t)(g_end - g_next) < data + GUARD_GAP ||
        mprotect(g_next, data, PROT_READ | PROT_WRITE) != 0)
        return NULL;
    unsigned char *block = g_next;
    g_next += data + GUARD_GAP;
    return block;
}

static void *guarded_alloc(size_t size, size_t align) {
    if (align < 16) align = 16;
    if (size > ((size_t)1 << 40) || align > ((size_t)1 << 20) || (align & (align - 1))) {
        errno = ENOMEM;
        return NULL;
    }
    const size_t body = (size + align - 1) & ~(align - 1);
    const size_t head = (sizeof(guard_header) + align - 1) & ~(align - 1);
    const size_t data = (body + head + GUARD_PAGE - 1) & ~(size_t)(GUARD_PAGE - 1);
    unsigned char *block = arena_block(data), *user;
    size_t len = data;
    if (block) {
        user = block + data - body; /* ends where the gap begins */
    } else {
        block = __libc_memalign(align, head + body);
        if (!block) return NULL;
        user = block + head;
        len = 0; /* glibc's */
    }
    guard_header *h = (guard_header *)user - 1;
    h->base = block;
    h->len = len;
    h->size = size;
    return user;
}

void *malloc(size_t size) {
    return guarded_alloc(size, 16);
}

void free(void *p) {
    if (!p) return;
    guard_header *h = (guard_header *)p - 1;
    if (!h->len) {
        __libc_free(h->base);
        return;
    }
    const size_t pages = h->len / GUARD_PAGE;
    if (pages <= REUSE_PAGES && g_reuse_n[pages] < REUSE_DEPTH) {
        g_reuse[pages][g_reuse_n[pages]++] = h->base;
        return;
    }
    /* Back to inaccessible, its memory dropped. */
    mmap(h->base, h->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
         0);
}

void *calloc(size_t n, size_t size) {
    if (size && n > (size_t)-1 / size) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = guarded_alloc(n * size, 16);
    if (p) memset(p, 0, n * size); /* a block may be reused */
    return p;
}

void *realloc(void *p, size_t size) {
    if (!p) return malloc(size);
    if (!size) {
        free(p);
        return NULL;
    }
    void *q = malloc(size);
    if (!q) return NULL;
    size_t old = ((guard_header *)p - 1)->size;
    memcpy(q, p, old < size ? old : size);
    free(p);
    return q;
}

void *memalign(size_t align, size_t size) {
    return guarded_alloc(size, align);
}

void *aligned_alloc(size_t align, size_t size) {
    return guarded_alloc(size, align);
}

int posix_memalign(void **out, size_t align, size_t size) {
    void *p = guarded_alloc(size, align);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t size) {
    return guarded_alloc(size, GUARD_PAGE);
}

void *pvalloc(size_t size) {
    return guarded_alloc((size + GUARD_PAGE - 1) & ~(size_t)(GUARD_PAGE - 1), GUARD_PAGE);
}

size_t malloc_usable_size(void *p) {
    return p ? ((guard_header *)p - 1)->size : 0;
}
#endif

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: veil-h5check JOB [ARG...] < FILE (started by veil's loaders)\n");
        return 2;
    }
    alarm(VEIL_H5_CHECK_SECONDS); /* a loop in libhdf5 ends here, SIGALRM's default */
    struct stat sb;
    if (fstat(0, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0) {
        fprintf(stderr, "veil-h5check: stdin is not a file image\n");
        return 2;
    }
    /* The image, read-only; libhdf5's core driver copies it. */
    void *buf = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, 0, 0);
    if (buf == MAP_FAILED) {
        fprintf(stderr, "veil-h5check: mmap: %s\n", strerror(errno));
        return 2;
    }
    H5open(); /* libhdf5's own start-up, before the file */
#if GUARDED_HEAP
    g_guard = 1;
#endif
    veil_h5_image img = {buf, (size_t)sb.st_size, "<stdin>"};
    veil_status st = veil_h5_check_image(&img, argv[1], argc - 2, argv + 2);
    char msg[2048];
    int32_t code = (int32_t)st;
    memcpy(msg, &code, sizeof code);
    size_t n = st == VEIL_OK ? 0 : strlen(veil_error_message());
    if (n > sizeof msg - sizeof code) n = sizeof msg - sizeof code;
    if (n) memcpy(msg + sizeof code, veil_error_message(), n);
    ssize_t w = write(1, msg, sizeof code + n);
    /* No exit handlers: libhdf5's, or a leak check of what a malformed file
     * made libhdf5 leak, are not this answer's business. */
    _exit(w == (ssize_t)(sizeof code + n) ? 0 : 3);
}
