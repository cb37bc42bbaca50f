/* Embeddings through the C ABI equal the Rust API's (the binding_fixtures reference), from a
 * file and from bytes; 8 threads on one model give the bytes of sequential calls; a call in
 * flight can be cancelled.
 * Usage: test_embed PACKAGE TEXTS REFERENCE */
#include <pthread.h>
#include <time.h>

#include "check.h"

typedef struct {
    const bertling_model *model;
    char **texts;
    size_t n, dim;
    float *out;
    bertling_status status;
    int done;
} job;

static void *embed_job(void *arg) {
    job *j = arg;
    j->status = bertling_embed(j->model, (const char *const *)j->texts, j->n, j->out, j->n * j->dim);
    __atomic_store_n(&j->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: test_embed PACKAGE TEXTS REFERENCE\n"); return 2; }
    size_t n, nref;
    char **texts = read_lines(argv[2], &n);
    float *ref = read_floats(argv[3], &nref);

    CHECK(bertling_abi_version() == BERTLING_ABI_VERSION, "abi %u", bertling_abi_version());
    CHECK(strlen(bertling_version()) > 0, "empty version");

    bertling_load_options opts;
    bertling_load_options_init(&opts);
    CHECK(opts.struct_size == sizeof opts && opts.backend == BERTLING_BACKEND_CPU && opts.threads == 0,
          "defaults %u %u %u", opts.struct_size, opts.backend, opts.threads);
    opts.threads = 1;
    bertling_model *model = NULL;
    CHECK_STATUS(bertling_model_load_file(argv[1], &opts, &model), BERTLING_OK);
    if (!model) return finish("test_embed");
    size_t dim = bertling_model_dim(model);
    CHECK(dim > 0 && nref == n * dim, "dim %zu, %zu reference floats for %zu texts", dim, nref, n);
    CHECK(bertling_model_num_labels(model) == 0, "labels %zu", bertling_model_num_labels(model));

    float *a = calloc(n * dim, sizeof *a);
    CHECK_STATUS(bertling_embed(model, (const char *const *)texts, n, a, n * dim), BERTLING_OK);
    if (nref == n * dim) {
        float d = max_abs_diff(a, ref, n * dim);
        CHECK(d <= 1e-5f, "max |C - Rust| = %g", d);
    }

    /* From bytes, freed right after loading. */
    size_t len;
    unsigned char *bytes = read_file(argv[1], &len);
    bertling_model *from_bytes = NULL;
    CHECK_STATUS(bertling_model_load_bytes(bytes, len, &opts, &from_bytes), BERTLING_OK);
    memset(bytes, 0xAB, len);
    free(bytes);
    float *b = calloc(n * dim, sizeof *b);
    CHECK_STATUS(bertling_embed(from_bytes, (const char *const *)texts, n, b, n * dim), BERTLING_OK);
    CHECK(memcmp(a, b, n * dim * sizeof *a) == 0, "bytes and file give different vectors");
    bertling_model_free(from_bytes);

    /* Eight threads on one model (two worker threads of its own): each result is bytewise the
     * sequential one. */
    bertling_model *shared = NULL;
    opts.threads = 2;
    CHECK_STATUS(bertling_model_load_file(argv[1], &opts, &shared), BERTLING_OK);
    float *seq = calloc(n * dim, sizeof *seq);
    CHECK_STATUS(bertling_embed(shared, (const char *const *)texts, n, seq, n * dim), BERTLING_OK);
    job jobs[8];
    pthread_t threads[8];
    for (int t = 0; t < 8; t++) {
        jobs[t] = (job){shared, texts, n, dim, calloc(n * dim, sizeof(float)), BERTLING_ERR_INTERNAL, 0};
        pthread_create(&threads[t], NULL, embed_job, &jobs[t]);
    }
    for (int t = 0; t < 8; t++) {
        pthread_join(threads[t], NULL);
        CHECK(jobs[t].status == BERTLING_OK, "thread %d: status %d", t, jobs[t].status);
        CHECK(memcmp(jobs[t].out, seq, n * dim * sizeof(float)) == 0, "thread %d differs", t);
        free(jobs[t].out);
    }

    /* Cancellation: a long call on another thread, cancelled until it returns. */
    size_t many = 4000;
    char **lots = malloc(many * sizeof *lots);
    for (size_t i = 0; i < many; i++) lots[i] = texts[i % n];
    job long_job = {shared, lots, many, dim, calloc(many * dim, sizeof(float)), BERTLING_OK, 0};
    pthread_t worker;
    pthread_create(&worker, NULL, embed_job, &long_job);
    struct timespec ms = {0, 1000000};
    while (!__atomic_load_n(&long_job.done, __ATOMIC_SEQ_CST)) {
        bertling_model_cancel(shared);
        nanosleep(&ms, NULL);
    }
    pthread_join(worker, NULL);
    CHECK(long_job.status == BERTLING_ERR_CANCELLED, "status %d", long_job.status);
    char msg[256];
    /* The message belongs to the worker thread; this one has none. */
    CHECK(bertling_last_error_message(msg, sizeof msg) == 0, "main thread has a message");
    CHECK_STATUS(bertling_embed(shared, (const char *const *)texts, n, a, n * dim), BERTLING_OK);
    CHECK(memcmp(a, seq, n * dim * sizeof *a) == 0, "after a cancel the model still gives the same");
    free(long_job.out);
    free(lots);

    bertling_model_free(shared);
    bertling_model_free(model);
    free(a); free(b); free(seq); free(ref);
    free_lines(texts, n);
    return finish("test_embed");
}
