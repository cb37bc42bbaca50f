// Tagging in Kotlin's own string indices: the generated `tagSpans` gives each word's range in
// UTF-8 bytes and in UTF-16 code units; a Kotlin String is indexed by the latter.
package dev.bertling

/**
 * One word of a tagged text: `text.substring(start, end) == word` (UTF-16 indices), its label
 * and the label's probability.
 */
data class WordTag(val word: String, val start: Int, val end: Int, val label: String, val probability: Float)

/**
 * The words of [text] (as the model's tokenizer splits them) with the labels of the model's
 * token head, e.g. part-of-speech tags. Throws `BertlingException.NoClassificationHead` for a
 * model without a token head and `InvalidArgument` for a text longer than the model takes.
 */
@Throws(BertlingException::class)
fun BertlingModel.tag(text: String): List<WordTag> =
    tagSpans(text).map { WordTag(it.word, it.utf16Start, it.utf16End, it.label, it.probability) }
