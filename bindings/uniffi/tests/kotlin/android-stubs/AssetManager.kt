// Host-JVM stand-ins for the two android.content.res classes BertlingAssets uses, with the
// members and failure behaviour of the real ones (openFd on a compressed or missing asset
// throws FileNotFoundException; a descriptor points into the APK at an offset). They let the
// test compile android/src/main/kotlin/dev/bertling/BertlingAssets.kt unchanged and run its
// JNI path on the host. Not shipped.
package android.content.res

import java.io.Closeable
import java.io.File
import java.io.FileDescriptor
import java.io.FileNotFoundException
import java.io.RandomAccessFile

class AssetFileDescriptor(private val file: RandomAccessFile, val startOffset: Long, val length: Long) : Closeable {
    val fileDescriptor: FileDescriptor get() = file.fd
    override fun close() = file.close()
}

/** An "APK": one file holding assets at given offsets; compressed ones cannot be opened as fds. */
class AssetManager(private val apk: File, private val entries: Map<String, Entry>) {
    data class Entry(val offset: Long, val length: Long, val compressed: Boolean)

    fun openFd(name: String): AssetFileDescriptor {
        val e = entries[name] ?: throw FileNotFoundException(name)
        if (e.compressed) {
            throw FileNotFoundException("This file can not be opened as a file descriptor; it is probably compressed")
        }
        return AssetFileDescriptor(RandomAccessFile(apk, "r"), e.offset, e.length)
    }

    fun list(path: String): Array<String> {
        val prefix = if (path.isEmpty()) "" else "$path/"
        return entries.keys.filter { it.startsWith(prefix) }.map { it.removePrefix(prefix).substringBefore('/') }
            .distinct().toTypedArray()
    }
}
