// The Android loading path (android/src/main/kotlin/dev/bertling/BertlingAssets.kt and its JNI
// entry point, bindings/uniffi/src/jvm.rs) on the host JVM, with android-stubs/ standing in for
// the AssetManager: a package inside a fake APK at an odd offset, as an uncompressed asset is.

import android.content.res.AssetManager
import dev.bertling.*
import java.io.File
import java.nio.ByteBuffer

fun assetChecks(dir: File, texts: List<String>, reference: List<List<Float>>) {
    val pkg = File(dir, "model.bertling").readBytes()
    val truncated = File(dir, "truncated.bertling").readBytes()
    // The fake APK: 4,097 bytes of junk, the package, 13 bytes of junk, the truncated package.
    val apk = File(dir, "fake.apk")
    val junk = ByteArray(4097) { (it * 31).toByte() }
    apk.writeBytes(junk + pkg + ByteArray(13) + truncated)
    val at = junk.size.toLong()
    val assets = AssetManager(
        apk,
        mapOf(
            "models/minilm.bertling" to AssetManager.Entry(at, pkg.size.toLong(), compressed = false),
            "models/zipped.bertling" to AssetManager.Entry(at, pkg.size.toLong(), compressed = true),
            "models/broken.bertling" to AssetManager.Entry(at + pkg.size + 13, truncated.size.toLong(), compressed = false),
        ),
    )

    check("BertlingAssets.load maps an asset at an odd offset; its embeddings match the runtime's") {
        BertlingAssets.load(assets, "models/minilm.bertling", LoadOptions(threads = 2)).use { m ->
            val d = maxDiff(m.embed(texts), reference)
            ensure(d <= 1e-5f) { "max |difference| $d" }
            ensure(m.info().outputWidth == reference[0].size) { "output width ${m.info().outputWidth}" }
        }
    }
    check("a compressed asset is InvalidArgument and says how to store it") {
        val e = expectThrows<BertlingException.InvalidArgument> { BertlingAssets.load(assets, "models/zipped.bertling") }
        ensure(e.message!!.contains("noCompress")) { "message: ${e.message}" }
    }
    check("a missing asset is Io") {
        expectThrows<BertlingException.Io> { BertlingAssets.load(assets, "models/none.bertling") }
    }
    check("a truncated asset is InvalidModel, thrown through JNI") {
        expectThrows<BertlingException.InvalidModel> { BertlingAssets.load(assets, "models/broken.bertling") }
    }
    check("BertlingAssets.fromFile maps a package file") {
        BertlingAssets.fromFile(File(dir, "model.bertling")).use { m ->
            val d = maxDiff(m.embed(texts), reference)
            ensure(d <= 1e-5f) { "max |difference| $d" }
        }
        expectThrows<BertlingException.Io> { BertlingAssets.fromFile(File(dir, "missing.bertling")) }
    }
    check("fromBuffer reads a direct buffer from its position to its limit") {
        val buf = ByteBuffer.allocateDirect(pkg.size + 10)
        buf.put(ByteArray(3)).put(pkg).put(ByteArray(7))
        buf.position(3).limit(3 + pkg.size)
        BertlingAssets.fromBuffer(buf, LoadOptions(backend = Backend.CPU, threads = 1)).use { m ->
            val d = maxDiff(m.embed(texts), reference)
            ensure(d <= 1e-5f) { "max |difference| $d" }
        }
        // One byte short: the checksum or the layout must fail, never a crash.
        buf.position(3).limit(2 + pkg.size)
        expectThrows<BertlingException.InvalidModel> { BertlingAssets.fromBuffer(buf) }
    }
    check("fromBuffer refuses a heap buffer and bad options") {
        expectThrows<BertlingException.InvalidArgument> { BertlingAssets.fromBuffer(ByteBuffer.wrap(pkg)) }
        val buf = ByteBuffer.allocateDirect(pkg.size).put(pkg).flip() as ByteBuffer
        expectThrows<BertlingException.InvalidArgument> { BertlingAssets.fromBuffer(buf, LoadOptions(threads = -3)) }
    }
    check("a model loaded through JNI is a full BertlingModel: cancel, info, close") {
        // close() frees through uniffi's own free function: the JNI handle must be a real one.
        repeat(8) {
            val buf = ByteBuffer.allocateDirect(pkg.size).put(pkg).flip() as ByteBuffer
            BertlingAssets.fromBuffer(buf, LoadOptions(threads = 1)).use { m -> m.cancel(); m.info() }
        }
    }
}
