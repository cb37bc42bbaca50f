/* Minimal test harness for the C ABI tests: CHECK counts failures, reads reference vectors. */
#ifndef BERTLING_CHECK_H
#define BERTLING_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bertling.h>

static int g_passed = 0, g_failed = 0;

#if defined(__GNUC__)
#define MAYBE_UNUSED __attribute__((unused))
#else
#define MAYBE_UNUSED
#endif

#define CHECK(cond, ...)                                                                         \
    do {                                                                                         \
        if (cond) {                                                                              \
            g_passed++;                                                                          \
        } else {                                                                                 \
            g_failed++;                                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                      \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fprintf(stderr, "\n");                                                               \
        }                                                                                        \
    } while (0)

/* The status, and the thread's last error message in the failure text. */
#define CHECK_STATUS(call, want)                                                                 \
    do {                                                                                         \
        bertling_status got_ = (call);                                                           \
        char msg_[512] = "";                                                                     \
        if (got_ != BERTLING_OK) bertling_last_error_message(msg_, sizeof msg_);                 \
        CHECK(got_ == (want), "status %d, expected %d (%s)", (int)got_, (int)(want), msg_);      \
    } while (0)

MAYBE_UNUSED static int finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

/* Reads `n` lines of texts (no trailing newline kept) into a NULL-terminated array. */
MAYBE_UNUSED static char **read_lines(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    size_t cap = 16, len = 0;
    char **lines = malloc(cap * sizeof *lines);
    char buf[65536];
    while (fgets(buf, sizeof buf, f)) {
        size_t l = strlen(buf);
        if (l && buf[l - 1] == '\n') buf[--l] = 0;
        if (len + 1 >= cap) lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[len] = malloc(l + 1);
        memcpy(lines[len++], buf, l + 1);
    }
    fclose(f);
    lines[len] = NULL;
    *n = len;
    return lines;
}

MAYBE_UNUSED static void free_lines(char **lines, size_t n) {
    for (size_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

/* Reads every number of a text file (binding_fixtures writes space-separated numbers). */
MAYBE_UNUSED static float *read_floats(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    size_t cap = 1024, len = 0;
    float *v = malloc(cap * sizeof *v);
    int c;
    char tok[64];
    size_t t = 0;
    while ((c = fgetc(f)) != EOF) {
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
            if (t < sizeof tok - 1) tok[t++] = (char)c;
        } else if (t) {
            tok[t] = 0;
            t = 0;
            if (len == cap) v = realloc(v, (cap *= 2) * sizeof *v);
            v[len++] = strtof(tok, NULL);
        }
    }
    fclose(f);
    *n = len;
    return v;
}

MAYBE_UNUSED static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    if (fread(b, 1, (size_t)len, f) != (size_t)len) { perror(path); exit(2); }
    fclose(f);
    *n = (size_t)len;
    return b;
}

MAYBE_UNUSED static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        if (d > m) m = d;
    }
    return m;
}

#endif
