// The Kotlin bindings end to end on the JVM (bindings/uniffi/test.sh builds and runs it):
// every answer is checked against the Rust runtime's own (files written by
// examples/reference.rs) or against a hand computation.
//
//   java -Djna.nosys=false -Djna.library.path=LIBDIR -cp jna.jar:test.jar BindingTestKt FIXTURES

import dev.bertling.*
import java.io.File
import java.util.concurrent.atomic.AtomicReference
import kotlin.math.abs
import kotlin.math.sqrt

var passed = 0
var failed = 0

fun check(name: String, body: () -> Unit) {
    try {
        body()
        passed++
        println("ok   $name")
    } catch (e: Throwable) {
        failed++
        println("FAIL $name: $e")
    }
}

fun ensure(cond: Boolean, what: () -> String) {
    if (!cond) throw AssertionError(what())
}

/** Runs `body`, which must throw an exception of class `T`. */
inline fun <reified T : Throwable> expectThrows(body: () -> Unit): T {
    try {
        body()
    } catch (e: Throwable) {
        if (e is T) return e
        throw AssertionError("expected ${T::class.simpleName}, got $e")
    }
    throw AssertionError("expected ${T::class.simpleName}, nothing was thrown")
}

fun rows(file: File): List<List<String>> = file.readLines().map { line -> line.split(" ").filter { it.isNotEmpty() } }

fun maxDiff(a: List<List<Float>>, b: List<List<Float>>): Float {
    ensure(a.size == b.size) { "${a.size} vectors, expected ${b.size}" }
    var worst = 0f
    for ((x, y) in a.zip(b)) {
        ensure(x.size == y.size) { "a vector of ${x.size} values, expected ${y.size}" }
        for ((u, v) in x.zip(y)) worst = maxOf(worst, abs(u - v))
    }
    return worst
}

fun main(args: Array<String>) {
    val dir = File(args[0])
    val texts = File(dir, "texts.txt").readLines()
    val reference = rows(File(dir, "embeddings.txt")).map { r -> r.map { it.toFloat() } }
    val info = File(dir, "info.txt").readLines().associate { it.substringBefore(' ') to it.substringAfter(' ') }
    val packagePath = File(dir, "model.bertling").path

    val model = BertlingModel.fromFile(packagePath, LoadOptions())

    check("embed from a file matches the Rust runtime within 1e-5") {
        val d = maxDiff(model.embed(texts), reference)
        ensure(d <= 1e-5f) { "max |difference| $d" }
    }
    check("embed from bytes gives the same vectors") {
        BertlingModel.fromBytes(File(packagePath).readBytes(), LoadOptions(backend = Backend.CPU, threads = 1)).use { m ->
            val d = maxDiff(m.embed(texts), reference)
            ensure(d <= 1e-5f) { "max |difference| $d" }
        }
    }
    check("tokenize gives the runtime's ids and type ids") {
        val tokens = model.tokenize(texts)
        val ids = rows(File(dir, "ids.txt")).map { r -> r.map { it.toInt() } }
        val typeIds = rows(File(dir, "type_ids.txt")).map { r -> r.map { it.toInt() } }
        ensure(tokens.map { it.ids } == ids) { "ids ${tokens.map { it.ids }}" }
        ensure(tokens.map { it.typeIds } == typeIds) { "type ids ${tokens.map { it.typeIds }}" }
    }
    check("info describes the 4-bit package") {
        val i = model.info()
        ensure(i.parameters == info.getValue("parameters").toLong()) { "parameters ${i.parameters}" }
        ensure(i.outputWidth == info.getValue("output_width").toInt()) { "output width ${i.outputWidth}" }
        ensure(i.maxSeqLen == info.getValue("max_seq_len").toInt()) { "max seq len ${i.maxSeqLen}" }
        ensure(i.matrixBits == listOf(4)) { "matrix bits ${i.matrixBits}" }
        ensure(i.embeddingBits == listOf(8)) { "embedding bits ${i.embeddingBits}" }
        ensure(i.blocks.size == info.getValue("blocks").toInt()) { "blocks ${i.blocks}" }
        ensure(i.blocks[0] == "attention w384 h12xd32") { "first block ${i.blocks[0]}" }
        ensure(i.labels.isEmpty()) { "labels ${i.labels}" }
        ensure(i.bytes in 1 until i.parameters * 4) { "bytes ${i.bytes}" }
        ensure(i.specJson.contains("\"blocks\"")) { "spec ${i.specJson.take(200)}" }
    }
    check("a truncated package is InvalidModel") {
        expectThrows<BertlingException.InvalidModel> { BertlingModel.fromFile(File(dir, "truncated.bertling").path, LoadOptions()) }
    }
    check("garbage bytes are InvalidModel") {
        expectThrows<BertlingException.InvalidModel> { BertlingModel.fromBytes("not a model".toByteArray(), LoadOptions()) }
    }
    check("a missing file is Io, and its message names the file") {
        val e = expectThrows<BertlingException.Io> { BertlingModel.fromFile(File(dir, "missing.bertling").path, LoadOptions()) }
        ensure(e.message!!.contains("missing.bertling")) { "message: ${e.message}" }
    }
    check("classify without a head is NoClassificationHead") {
        expectThrows<BertlingException.NoClassificationHead> { model.classify(texts) }
        expectThrows<BertlingException.NoClassificationHead> { model.classifyPairs(listOf(TextPair("a", "b"))) }
    }
    check("tag gives the runtime's words, labels and probabilities, as UTF-16 ranges") {
        // tag.txt: per text the word count, then per word its UTF-8 byte range, label id, probability.
        val tiny = File(dir, "tiny")
        val labels = File(tiny, "tag_labels.txt").readLines()
        BertlingModel.fromFile(File(tiny, "tagger.bertling").path, LoadOptions()).use { tagger ->
            ensure(tagger.info().head == "token" && model.info().head == "none") { "heads" }
            var words = 0
            for ((text, row) in texts.zip(rows(File(tiny, "tag.txt")))) {
                val tags = tagger.tag(text)
                ensure(tags.size == row[0].toInt()) { "'$text': ${tags.size} words, expected ${row[0]}" }
                for ((i, t) in tags.withIndex()) {
                    val r = row.subList(1 + 4 * i, 5 + 4 * i)
                    ensure(text.substring(t.start, t.end) == t.word) { "'$text': $t" }
                    // The UTF-16 range covers the same bytes as the runtime's UTF-8 range.
                    val bytes = text.substring(0, t.start).toByteArray(Charsets.UTF_8).size
                    val len = t.word.toByteArray(Charsets.UTF_8).size
                    ensure(bytes == r[0].toInt() && bytes + len == r[1].toInt()) { "'$text': $t vs $r" }
                    ensure(t.label == labels[r[2].toInt()]) { "'$text': $t vs $r" }
                    ensure(abs(t.probability - r[3].toFloat()) <= 1e-5f) { "'$text': $t vs $r" }
                }
                words += tags.size
            }
            ensure(words > 0) { "no words tagged" }
            expectThrows<BertlingException.NoClassificationHead> { tagger.classify(texts) }
        }
        expectThrows<BertlingException.NoClassificationHead> { model.tag("a text") }
    }
    check("negative threads are InvalidArgument") {
        expectThrows<BertlingException.InvalidArgument> { BertlingModel.fromFile(packagePath, LoadOptions(threads = -1)) }
    }
    check("errors are one BertlingException type") {
        val e: Throwable = expectThrows<BertlingException> { BertlingModel.fromFile(File(dir, "missing").path, LoadOptions()) }
        ensure(e is BertlingException.Io) { "$e" }
    }
    check("cosineSimilarity matches a hand computation") {
        // (1,2,3)·(4,5,6) = 32; |a| = sqrt(14), |b| = sqrt(77)
        val c = cosineSimilarity(listOf(1f, 2f, 3f), listOf(4f, 5f, 6f))
        ensure(abs(c - (32.0 / sqrt(14.0 * 77.0)).toFloat()) < 1e-6f) { "cosine $c" }
        ensure(cosineSimilarity(listOf(0f, 0f), listOf(1f, 2f)) == 0f) { "zero vector" }
        val e = model.embed(texts.take(2))
        val dot = e[0].zip(e[1]).sumOf { (x, y) -> (x * y).toDouble() }
        val n0 = sqrt(e[0].sumOf { (it * it).toDouble() })
        val n1 = sqrt(e[1].sumOf { (it * it).toDouble() })
        val c2 = cosineSimilarity(e[0], e[1])
        ensure(abs(c2 - dot / (n0 * n1)) < 1e-5) { "cosine $c2, by hand ${dot / (n0 * n1)}" }
        expectThrows<BertlingException.InvalidArgument> { cosineSimilarity(listOf(1f), listOf(1f, 2f)) }
    }
    check("similar sentences are closer than unrelated ones") {
        // texts 0 and 1 are paraphrases, text 2 is unrelated (test.sh writes them so).
        val e = model.embed(texts.take(3))
        ensure(cosineSimilarity(e[0], e[1]) > cosineSimilarity(e[0], e[2]) + 0.2f) { "cosines ${cosineSimilarity(e[0], e[1])} ${cosineSimilarity(e[0], e[2])}" }
    }
    check("cancel() fails the running call with Cancelled; the model works afterwards") {
        val long = List(512) { texts[it % texts.size] + " " + texts[(it + 1) % texts.size] }
        val outcome = AtomicReference<Any?>(null)
        val worker = Thread {
            outcome.set(try { model.embed(long) } catch (e: Throwable) { e })
        }
        worker.start()
        // Cancel until the call ends, so the test does not depend on when it starts.
        while (worker.isAlive) {
            model.cancel()
            Thread.sleep(5)
        }
        ensure(outcome.get() is BertlingException.Cancelled) { "outcome ${outcome.get()?.javaClass}" }
        val d = maxDiff(model.embed(texts), reference)
        ensure(d <= 1e-5f) { "after cancel: max |difference| $d" }
    }
    check("profileLatencyTable measures every op of a small search space") {
        val json = profileLatencyTable(Backend.CPU, widths = listOf(64), bits = listOf(4), group = 32, seqLens = listOf(8), runs = 2, threads = 1)
        ensure(json.contains("\"format\": \"bertling-latency-table\"")) { json.take(300) }
        // width 64: attention with 32- and 64-wide heads, 4 feed-forward (1, 1.5, 2, 4 x 64),
        // 3 convolutions, the 64 -> 64 projection; and the width's fixed cost (an identity model)
        val keys = Regex("\"key\": \"([^\"]+)\"").findAll(json).map { it.groupValues[1] }.toList()
        ensure(keys.size == 11) { "keys $keys" }
        ensure("feed_forward/w64/i96/w4g32/s8/b1" in keys) { "keys $keys" }
        ensure("feed_forward/w64/i256/w4g32/s8/b1" in keys) { "keys $keys" }
        ensure("projection/w64/o64/w4g32/s8/b1" in keys) { "keys $keys" }
        ensure("identity/w64/w4g32/s8/b1" in keys) { "keys $keys" }
        // W4A8: the integer kernels the search's students run on
        val a8 = profileLatencyTable(Backend.CPU, widths = listOf(64), bits = listOf(4), group = 32, seqLens = listOf(8), runs = 1, threads = 1, actBits = 8)
        ensure(a8.contains("\"key\": \"attention/w64/h2xd32/w4g32a8/s8/b1\"")) { a8.take(600) }
        expectThrows<BertlingException.InvalidArgument> { profileLatencyTable(Backend.CPU, bits = listOf(1)) }
        expectThrows<BertlingException.InvalidArgument> { profileLatencyTable(Backend.CPU, bits = listOf(4), actBits = 3) }
    }
    model.close()

    // Android: assets and direct buffers through the JNI entry point (AssetsTest.kt).
    assetChecks(dir, texts, reference)

    println("$passed passed, $failed failed")
    if (failed > 0) System.exit(1)
}
