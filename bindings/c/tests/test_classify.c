/* Classification through the C ABI equals the Rust API's (the binding_fixtures reference);
 * label names, with the size query and a short buffer.
 * Usage: test_classify PACKAGE TEXTS REFERENCE LABELS
 *   REFERENCE: per text "label_id p0 p1 ..." (runtime/examples/binding_fixtures.rs); LABELS: the label names, one per line. */
#include "check.h"

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: test_classify PACKAGE TEXTS REFERENCE LABELS\n"); return 2; }
    size_t n, nref, nlabels;
    char **texts = read_lines(argv[2], &n);
    float *ref = read_floats(argv[3], &nref);
    char **names = read_lines(argv[4], &nlabels);

    bertling_load_options opts;
    bertling_load_options_init(&opts);
    opts.threads = 1;
    bertling_model *model = NULL;
    CHECK_STATUS(bertling_model_load_file(argv[1], &opts, &model), BERTLING_OK);
    if (!model) return finish("test_classify");
    size_t labels = bertling_model_num_labels(model);
    CHECK(labels == nlabels && nref == n * (labels + 1), "labels %zu, reference %zu", labels, nref);

    float *probs = calloc(n * labels, sizeof *probs);
    uint32_t *ids = calloc(n, sizeof *ids);
    CHECK_STATUS(bertling_classify(model, (const char *const *)texts, n, probs, n * labels, ids), BERTLING_OK);
    for (size_t i = 0; i < n && nref == n * (labels + 1); i++) {
        const float *r = ref + i * (labels + 1);
        CHECK(ids[i] == (uint32_t)r[0], "text %zu: label %u, expected %g", i, ids[i], r[0]);
        float d = max_abs_diff(probs + i * labels, r + 1, labels);
        CHECK(d <= 1e-5f, "text %zu: max |C - Rust| = %g", i, d);
    }

    for (size_t l = 0; l < labels; l++) {
        size_t need = 0;
        CHECK_STATUS(bertling_label_name(model, l, NULL, 0, &need), BERTLING_ERR_BUFFER_TOO_SMALL);
        CHECK(need == strlen(names[l]) + 1, "label %zu needs %zu", l, need);
        char small[2] = {'x', 'y'};
        CHECK_STATUS(bertling_label_name(model, l, small, sizeof small, &need), BERTLING_ERR_BUFFER_TOO_SMALL);
        CHECK(small[0] == 'x' && small[1] == 'y', "a short buffer was written");
        char *buf = malloc(need);
        size_t again = 0;
        CHECK_STATUS(bertling_label_name(model, l, buf, need, &again), BERTLING_OK);
        CHECK(strcmp(buf, names[l]) == 0 && again == need, "label %zu is '%s', expected '%s'", l, buf, names[l]);
        CHECK_STATUS(bertling_label_name(model, l, buf, need, NULL), BERTLING_OK);
        free(buf);
    }
    char buf[64];
    CHECK_STATUS(bertling_label_name(model, labels, buf, sizeof buf, NULL), BERTLING_ERR_INVALID_ARGUMENT);
    /* A short probs buffer is refused and nothing is written. */
    float *sentinel = malloc(n * labels * sizeof *sentinel);
    for (size_t i = 0; i < n * labels; i++) sentinel[i] = -7.0f;
    uint32_t *sid = malloc(n * sizeof *sid);
    for (size_t i = 0; i < n; i++) sid[i] = 77;
    CHECK_STATUS(bertling_classify(model, (const char *const *)texts, n, sentinel, n * labels - 1, sid),
                 BERTLING_ERR_BUFFER_TOO_SMALL);
    CHECK(sentinel[0] == -7.0f && sid[0] == 77, "outputs written on failure");
    CHECK_STATUS(bertling_classify(model, (const char *const *)texts, n, sentinel, n * labels, NULL),
                 BERTLING_ERR_NULL_ARGUMENT);
    free(sentinel); free(sid);

    bertling_model_free(model);
    free(probs); free(ids); free(ref);
    free_lines(texts, n);
    free_lines(names, nlabels);
    return finish("test_classify");
}
