/* Tagging through the C ABI equals the Rust API's (the binding_fixtures reference): byte ranges,
 * labels and probabilities per word; the word count on a short buffer; heads of the wrong kind.
 * Usage: test_tag TAGGER TEXTS REFERENCE LABELS CLASSIFIER EMBEDDER
 *   REFERENCE: per text "n_words (start end label_id prob)*" (runtime/examples/binding_fixtures.rs);
 *   LABELS: the tagger's label names, one per line. */
#include "check.h"

static bertling_model *load(const char *path) {
    bertling_load_options opts;
    bertling_load_options_init(&opts);
    opts.threads = 1;
    bertling_model *model = NULL;
    CHECK_STATUS(bertling_model_load_file(path, &opts, &model), BERTLING_OK);
    return model;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: test_tag TAGGER TEXTS REFERENCE LABELS CLASSIFIER EMBEDDER\n");
        return 2;
    }
    size_t n, nref, nlabels;
    char **texts = read_lines(argv[2], &n);
    float *ref = read_floats(argv[3], &nref);
    char **names = read_lines(argv[4], &nlabels);
    bertling_model *model = load(argv[1]);
    bertling_model *classifier = load(argv[5]);
    bertling_model *embedder = load(argv[6]);
    if (!model || !classifier || !embedder) return finish("test_tag");
    CHECK(bertling_model_head(model) == BERTLING_HEAD_TOKEN, "head %u", bertling_model_head(model));
    CHECK(bertling_model_head(classifier) == BERTLING_HEAD_SEQUENCE, "classifier's head");
    CHECK(bertling_model_head(embedder) == BERTLING_HEAD_NONE, "embedder's head");
    CHECK(bertling_model_head(NULL) == BERTLING_HEAD_NONE, "NULL's head");
    CHECK(bertling_model_num_labels(model) == nlabels, "labels %zu", bertling_model_num_labels(model));
    for (size_t l = 0; l < nlabels; l++) {
        char buf[64];
        CHECK_STATUS(bertling_label_name(model, l, buf, sizeof buf, NULL), BERTLING_OK);
        CHECK(strcmp(buf, names[l]) == 0, "label %zu is '%s', expected '%s'", l, buf, names[l]);
    }

    size_t at = 0, words_seen = 0;
    for (size_t i = 0; i < n && at < nref; i++) {
        size_t want = (size_t)ref[at++];
        size_t got = 12345;
        /* The size query: the count comes back with BUFFER_TOO_SMALL (OK for a text without words). */
        CHECK_STATUS(bertling_tag(model, texts[i], NULL, 0, &got), want ? BERTLING_ERR_BUFFER_TOO_SMALL : BERTLING_OK);
        CHECK(got == want, "text %zu: %zu words, expected %zu", i, got, want);
        size_t cap = strlen(texts[i]) + 1; /* never fewer bytes than words */
        bertling_word_tag *tags = malloc(cap * sizeof *tags);
        for (size_t k = 0; k < cap; k++) tags[k].label_id = 99;
        if (want > 0) {
            CHECK_STATUS(bertling_tag(model, texts[i], tags, want - 1, &got), BERTLING_ERR_BUFFER_TOO_SMALL);
            CHECK(got == want && tags[0].label_id == 99, "text %zu: a short buffer was written", i);
        }
        CHECK_STATUS(bertling_tag(model, texts[i], tags, cap, &got), BERTLING_OK);
        CHECK(got == want, "text %zu: %zu words", i, got);
        for (size_t w = 0; w < want && w < got && at + 4 <= nref; w++, at += 4) {
            CHECK(tags[w].start == (size_t)ref[at] && tags[w].end == (size_t)ref[at + 1],
                  "text %zu word %zu: [%zu, %zu), expected [%g, %g)", i, w, tags[w].start, tags[w].end,
                  ref[at], ref[at + 1]);
            CHECK(tags[w].end <= strlen(texts[i]) && tags[w].start < tags[w].end, "range inside the text");
            CHECK(tags[w].label_id == (uint32_t)ref[at + 2], "text %zu word %zu: label %u", i, w, tags[w].label_id);
            float d = tags[w].prob - ref[at + 3];
            CHECK(d <= 1e-5f && d >= -1e-5f, "text %zu word %zu: prob %g vs %g", i, w, tags[w].prob, ref[at + 3]);
        }
        words_seen += want;
        free(tags);
    }
    CHECK(at == nref && words_seen > 0, "reference read to %zu of %zu", at, nref);

    /* The wrong head, NULLs, invalid UTF-8: a status, and *n_words set to 0. */
    bertling_word_tag one[4];
    size_t got = 7;
    CHECK_STATUS(bertling_tag(classifier, "good movie", one, 4, &got), BERTLING_ERR_NO_CLASSIFICATION_HEAD);
    CHECK(got == 0, "n_words %zu after a failure", got);
    got = 7;
    CHECK_STATUS(bertling_tag(embedder, "good movie", one, 4, &got), BERTLING_ERR_NO_CLASSIFICATION_HEAD);
    CHECK(got == 0, "n_words %zu after a failure", got);
    const char *text = "good movie";
    float probs[8];
    uint32_t id;
    CHECK_STATUS(bertling_classify(model, &text, 1, probs, 8, &id), BERTLING_ERR_NO_CLASSIFICATION_HEAD);
    CHECK_STATUS(bertling_tag(model, NULL, one, 4, &got), BERTLING_ERR_NULL_ARGUMENT);
    CHECK_STATUS(bertling_tag(model, "good", one, 4, NULL), BERTLING_ERR_NULL_ARGUMENT);
    CHECK_STATUS(bertling_tag(model, "good", NULL, 4, &got), BERTLING_ERR_NULL_ARGUMENT);
    CHECK_STATUS(bertling_tag(NULL, "good", one, 4, &got), BERTLING_ERR_NULL_ARGUMENT);
    CHECK_STATUS(bertling_tag(model, "bad \xff", one, 4, &got), BERTLING_ERR_INVALID_ARGUMENT);

    bertling_model_free(model);
    bertling_model_free(classifier);
    bertling_model_free(embedder);
    free(ref);
    free_lines(texts, n);
    free_lines(names, nlabels);
    return finish("test_tag");
}
