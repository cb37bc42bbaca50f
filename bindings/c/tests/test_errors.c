/* Every error path of the C ABI: a status, a message that says what to do, and untouched
 * outputs.
 * Usage: test_errors EMBED_PACKAGE DAMAGED_DIR BUILD
 *   DAMAGED_DIR holds truncated.bertling, corrupt.bertling, future.bertling, garbage.bertling;
 *   BUILD is "gpu" or "cpu" (the library's features). */
#include "check.h"

static size_t message(char *buf, size_t len) { return bertling_last_error_message(buf, len); }

static void load_fails(const char *path, bertling_status want) {
    bertling_model *sentinel = (bertling_model *)0x1;
    bertling_model *out = sentinel;
    CHECK_STATUS(bertling_model_load_file(path, NULL, &out), want);
    CHECK(out == sentinel, "%s: out was written on failure", path);
    char msg[512];
    CHECK(message(msg, sizeof msg) > 1, "%s: no message", path);
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: test_errors PACKAGE DAMAGED_DIR gpu|cpu\n"); return 2; }
    const char *dir = argv[2];
    char path[4096];

    /* Loading. */
    bertling_model *out = NULL;
    CHECK_STATUS(bertling_model_load_file(NULL, NULL, &out), BERTLING_ERR_NULL_ARGUMENT);
    CHECK_STATUS(bertling_model_load_file(argv[1], NULL, NULL), BERTLING_ERR_NULL_ARGUMENT);
    load_fails("/nonexistent/dir/model.bertling", BERTLING_ERR_IO);
    const char *names[] = {"truncated.bertling", "corrupt.bertling", "garbage.bertling"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        load_fails(path, BERTLING_ERR_INVALID_MODEL);
    }
    snprintf(path, sizeof path, "%s/future.bertling", dir);
    load_fails(path, BERTLING_ERR_UNSUPPORTED_VERSION);
    const char bad_utf8[] = {'/', 't', 'm', 'p', '/', (char)0xff, (char)0xfe, 0};
    CHECK_STATUS(bertling_model_load_file(bad_utf8, NULL, &out), BERTLING_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(bertling_model_load_bytes(NULL, 10, NULL, &out), BERTLING_ERR_NULL_ARGUMENT);
    CHECK_STATUS(bertling_model_load_bytes(NULL, 0, NULL, &out), BERTLING_ERR_INVALID_MODEL);
    const unsigned char junk[] = "definitely not a model";
    CHECK_STATUS(bertling_model_load_bytes(junk, sizeof junk, NULL, &out), BERTLING_ERR_INVALID_MODEL);

    bertling_load_options opts;
    bertling_load_options_init(&opts);
    opts.struct_size = 4;
    CHECK_STATUS(bertling_model_load_file(argv[1], &opts, &out), BERTLING_ERR_INVALID_ARGUMENT);
    bertling_load_options_init(&opts);
    opts.backend = 7;
    CHECK_STATUS(bertling_model_load_file(argv[1], &opts, &out), BERTLING_ERR_INVALID_ARGUMENT);
    if (strcmp(argv[3], "cpu") == 0) {
        /* A CPU-only library: the GPU is refused, AUTO runs on the CPU. */
        bertling_load_options_init(&opts);
        opts.backend = BERTLING_BACKEND_WGPU;
        CHECK_STATUS(bertling_model_load_file(argv[1], &opts, &out), BERTLING_ERR_GPU);
        opts.backend = BERTLING_BACKEND_AUTO;
        bertling_model *m = NULL;
        CHECK_STATUS(bertling_model_load_file(argv[1], &opts, &m), BERTLING_OK);
        bertling_model_free(m);
    }
    bertling_load_options_init(NULL); /* a no-op */

    /* The last error message: its size, a cut copy, reset by the next call. */
    CHECK_STATUS(bertling_model_load_file(NULL, NULL, &out), BERTLING_ERR_NULL_ARGUMENT);
    size_t need = message(NULL, 0);
    char full[512], cut[6];
    CHECK(need > 6 && need <= sizeof full, "message needs %zu", need);
    CHECK(message(full, sizeof full) == need && strlen(full) + 1 == need, "'%s'", full);
    CHECK(strstr(full, "path") != NULL, "the message names the argument: '%s'", full);
    CHECK(message(cut, sizeof cut) == need && strlen(cut) == 5 && strncmp(cut, full, 5) == 0, "cut '%s'", cut);

    bertling_model *model = NULL;
    bertling_load_options_init(&opts);
    opts.threads = 1;
    CHECK_STATUS(bertling_model_load_file(argv[1], &opts, &model), BERTLING_OK);
    CHECK(message(full, sizeof full) == 0, "a success leaves a message: '%s'", full);
    if (!model) return finish("test_errors");
    size_t dim = bertling_model_dim(model);

    /* Embedding. */
    const char *texts[] = {"a query", "a second one"};
    float *buf = malloc(2 * dim * sizeof *buf);
    for (size_t i = 0; i < 2 * dim; i++) buf[i] = -3.0f;
    CHECK_STATUS(bertling_embed(NULL, texts, 2, buf, 2 * dim), BERTLING_ERR_NULL_ARGUMENT);
    CHECK_STATUS(bertling_embed(model, NULL, 2, buf, 2 * dim), BERTLING_ERR_NULL_ARGUMENT);
    CHECK_STATUS(bertling_embed(model, texts, 2, NULL, 2 * dim), BERTLING_ERR_NULL_ARGUMENT);
    const char *with_null[] = {"fine", NULL};
    CHECK_STATUS(bertling_embed(model, with_null, 2, buf, 2 * dim), BERTLING_ERR_NULL_ARGUMENT);
    message(full, sizeof full);
    CHECK(strstr(full, "texts[1]") != NULL, "'%s'", full);
    const char invalid[] = {'o', 'k', (char)0xc3, (char)0x28, 0};
    const char *with_invalid[] = {"fine", invalid};
    CHECK_STATUS(bertling_embed(model, with_invalid, 2, buf, 2 * dim), BERTLING_ERR_INVALID_ARGUMENT);
    message(full, sizeof full);
    CHECK(strstr(full, "UTF-8") != NULL, "'%s'", full);
    CHECK_STATUS(bertling_embed(model, texts, 2, buf, 2 * dim - 1), BERTLING_ERR_BUFFER_TOO_SMALL);
    int untouched = 1;
    for (size_t i = 0; i < 2 * dim; i++) untouched &= buf[i] == -3.0f;
    CHECK(untouched, "a failing embed wrote its output");
    CHECK_STATUS(bertling_embed(model, NULL, 0, NULL, 0), BERTLING_OK);
    CHECK_STATUS(bertling_embed(model, texts, 2, buf, 2 * dim), BERTLING_OK);

    /* Classification without a head. */
    float probs[4];
    uint32_t ids[2];
    CHECK_STATUS(bertling_classify(model, texts, 2, probs, 4, ids), BERTLING_ERR_NO_CLASSIFICATION_HEAD);
    char name[16];
    CHECK_STATUS(bertling_label_name(model, 0, name, sizeof name, NULL), BERTLING_ERR_NO_CLASSIFICATION_HEAD);
    CHECK_STATUS(bertling_label_name(NULL, 0, name, sizeof name, NULL), BERTLING_ERR_NULL_ARGUMENT);

    /* NULL handles. */
    CHECK(bertling_model_dim(NULL) == 0 && bertling_model_num_labels(NULL) == 0, "NULL sizes");
    bertling_model_free(NULL);
    bertling_model_cancel(NULL);

    bertling_model_free(model);
    free(buf);
    return finish("test_errors");
}
