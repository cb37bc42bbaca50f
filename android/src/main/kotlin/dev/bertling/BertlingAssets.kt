// Loading bertling packages on Android without copying them to the Java heap.
//
// `BertlingModel.fromBytes(ByteArray)` needs the whole package as a ByteArray on the Java heap
// (20 MB for a 4-bit all-MiniLM-L6-v2), which uniffi then copies again into native memory.
// These functions map the package instead (an APK asset, or any file) and hand the mapping to
// the native loader through JNI (bindings/uniffi/src/jvm.rs): the bytes stay in the page cache,
// outside the Java heap, and the model they make is an ordinary `BertlingModel`.
package dev.bertling

import android.content.res.AssetManager
import java.io.File
import java.io.FileInputStream
import java.io.FileNotFoundException
import java.io.RandomAccessFile
import java.nio.ByteBuffer
import java.nio.channels.FileChannel

object BertlingAssets {
    /**
     * Loads the package `name` from the app's assets, e.g.
     * `BertlingAssets.load(context.assets, "minilm-w4.bertling")`.
     *
     * The asset must be stored uncompressed in the APK, so that it can be mapped:
     * `android { androidResources { noCompress += "bertling" } }` in the app's build.gradle.kts.
     * Blocks while the model loads (tens to hundreds of milliseconds): call it off the UI thread.
     */
    @JvmStatic
    @JvmOverloads
    @Throws(BertlingException::class)
    fun load(assets: AssetManager, name: String, options: LoadOptions = LoadOptions()): BertlingModel {
        val fd = try {
            assets.openFd(name)
        } catch (e: FileNotFoundException) {
            // openFd fails this way both for a missing asset and for a compressed one.
            val listed = name.substringAfterLast('/') in
                (assets.list(name.substringBeforeLast('/', "")) ?: emptyArray())
            throw if (listed) {
                BertlingException.InvalidArgument(
                    "asset $name is compressed in the APK and cannot be mapped; store it " +
                        "uncompressed: android { androidResources { noCompress += \"bertling\" } }",
                )
            } else {
                BertlingException.Io("no asset named $name in the APK (${e.message})")
            }
        }
        return fd.use {
            FileInputStream(it.fileDescriptor).channel.use { channel ->
                fromBuffer(channel.map(FileChannel.MapMode.READ_ONLY, it.startOffset, it.length), options)
            }
        }
    }

    /** Loads a package file by mapping it (no copy on the Java heap). */
    @JvmStatic
    @JvmOverloads
    @Throws(BertlingException::class)
    fun fromFile(file: File, options: LoadOptions = LoadOptions()): BertlingModel {
        val raf = try {
            RandomAccessFile(file, "r")
        } catch (e: FileNotFoundException) {
            throw BertlingException.Io("cannot open ${file.path}: ${e.message}")
        }
        return raf.use { fromBuffer(it.channel.map(FileChannel.MapMode.READ_ONLY, 0, it.length()), options) }
    }

    /**
     * Loads the package held in a direct buffer's remaining bytes (from its position to its
     * limit), e.g. a `MappedByteBuffer`. The buffer is only read, during this call.
     */
    @JvmStatic
    @JvmOverloads
    @Throws(BertlingException::class)
    fun fromBuffer(buffer: ByteBuffer, options: LoadOptions = LoadOptions()): BertlingModel {
        if (!buffer.isDirect) {
            throw BertlingException.InvalidArgument(
                "the buffer is not direct: map a file (FileChannel.map), allocate it with " +
                    "ByteBuffer.allocateDirect, or use BertlingModel.fromBytes for a ByteArray",
            )
        }
        val backend = when (options.backend) {
            null, Backend.CPU -> 0
            Backend.WGPU -> 1
            Backend.AUTO -> 2
        }
        val handle = BertlingNative.loadDirect(
            buffer, buffer.position().toLong(), buffer.remaining().toLong(), backend, options.threads,
        )
        return FfiConverterTypeBertlingModel.lift(handle)
    }
}

/** The JNI entry points of libbertling_uniffi.so (feature `jni`). */
internal object BertlingNative {
    init {
        // JNA opens the library for the generated bindings; JNI looks its functions up only in
        // libraries loaded through System.loadLibrary. Both load the same file once.
        System.loadLibrary("bertling_uniffi")
    }

    @JvmStatic
    external fun loadDirect(buffer: ByteBuffer, offset: Long, length: Long, backend: Int, threads: Int): Long
}
