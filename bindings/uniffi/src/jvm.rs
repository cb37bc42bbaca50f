//! JNI entry points for Android (feature `jni`): loading a package from a direct `ByteBuffer` —
//! an APK asset mapped with `FileChannel.map` — so that the weights never pass through the Java
//! heap, which `BertlingModel.fromBytes(ByteArray)` cannot avoid (uniffi copies a `ByteArray`
//! into Rust).
//!
//! The Kotlin side is `android/src/main/kotlin/dev/bertling/BertlingAssets.kt`: it maps the asset,
//! calls [`Java_dev_bertling_BertlingNative_loadDirect`] and lifts the returned uniffi handle into
//! a normal `BertlingModel`, so an app sees one model type whichever way it loaded it. Errors are
//! thrown as the same `BertlingException` subclasses the generated bindings throw.

use std::sync::Arc;

use jni::objects::{JByteBuffer, JClass};
use jni::descriptors::Desc;
use jni::refs::Reference as _;
use jni::strings::JNIString;
use jni::sys::{jint, jlong};
use jni::{Env, EnvUnowned};

use crate::{guard, invalid, Backend, BertlingError, BertlingModel, LoadOptions, Result};

/// `BertlingNative.loadDirect(buffer, offset, length, backend, threads): Long`.
///
/// Reads the package in `buffer[offset, offset + length)` (a direct buffer: its memory is not
/// on the Java heap and stays put) and returns the uniffi handle of a new `BertlingModel`, which
/// Kotlin lifts with `FfiConverterTypeBertlingModel.lift`. `backend`: 0 CPU, 1 wgpu, 2 auto (the
/// `Backend` enum's ordinals); `threads`: 0 = one per core. On failure it throws
/// `BertlingException.<Kind>` and returns 0.
#[no_mangle]
pub extern "system" fn Java_dev_bertling_BertlingNative_loadDirect<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    buffer: JByteBuffer<'local>,
    offset: jlong,
    length: jlong,
    backend: jint,
    threads: jint,
) -> jlong {
    env.with_env(|env| -> jni::errors::Result<jlong> {
        match guard(|| load_direct(env, &buffer, offset, length, backend, threads)) {
            Ok(handle) => Ok(handle),
            Err(e) => {
                throw(env, &e);
                Ok(0)
            }
        }
    })
    // Only a panic of jni itself gets here (ours are caught by `guard`): a RuntimeException.
    .resolve::<jni::errors::ThrowRuntimeExAndDefault>()
}

fn load_direct(
    env: &mut Env<'_>,
    buffer: &JByteBuffer<'_>,
    offset: jlong,
    length: jlong,
    backend: jint,
    threads: jint,
) -> Result<jlong> {
    if buffer.is_null() {
        return Err(invalid("the buffer is null"));
    }
    let not_direct = |_| {
        invalid(
            "the buffer is not a direct ByteBuffer: map the file or asset with FileChannel.map, \
             or allocate it with ByteBuffer.allocateDirect",
        )
    };
    let address = env.get_direct_buffer_address(buffer).map_err(not_direct)?;
    let capacity = env.get_direct_buffer_capacity(buffer).map_err(not_direct)?;
    let start = usize::try_from(offset).ok();
    let len = usize::try_from(length).ok();
    let end = start.zip(len).and_then(|(s, l)| s.checked_add(l));
    let (start, end) = match (start, end) {
        (Some(s), Some(e)) if e <= capacity => (s, e),
        _ => {
            return Err(invalid(format!(
                "bytes [{offset}, {offset} + {length}) do not lie in the buffer's {capacity} bytes"
            )))
        }
    };
    // SAFETY: a direct buffer's memory stays valid and in place while the buffer is reachable,
    // which the caller's reference guarantees for the length of this call; [start, end) lies in
    // its capacity (checked above). The runtime only reads it and keeps no reference.
    let bytes = unsafe { std::slice::from_raw_parts(address.add(start), end - start) };
    let backend = match backend {
        0 => Backend::Cpu,
        1 => Backend::Wgpu,
        2 => Backend::Auto,
        other => return Err(invalid(format!("backend {other}: use 0 (CPU), 1 (wgpu) or 2 (auto)"))),
    };
    let options = LoadOptions { backend: Some(backend), threads };
    let model = bertling_runtime::Model::from_package_bytes(bytes, &options.to_runtime()?)?;
    let handle = <BertlingModel as uniffi::FfiConverterArc<crate::UniFfiTag>>::lower(Arc::new(
        BertlingModel { model },
    ));
    // Handles are addresses; Kotlin keeps them in a Long.
    Ok(handle.as_raw() as jlong)
}

/// The Kotlin class of an error: `BertlingException.Io` is `dev/bertling/BertlingException$Io`.
fn exception_class(e: &BertlingError) -> &'static str {
    match e {
        BertlingError::Io(_) => "dev/bertling/BertlingException$Io",
        BertlingError::InvalidModel(_) => "dev/bertling/BertlingException$InvalidModel",
        BertlingError::UnsupportedVersion(_) => "dev/bertling/BertlingException$UnsupportedVersion",
        BertlingError::NoClassificationHead(_) => {
            "dev/bertling/BertlingException$NoClassificationHead"
        }
        BertlingError::InvalidArgument(_) => "dev/bertling/BertlingException$InvalidArgument",
        BertlingError::Gpu(_) => "dev/bertling/BertlingException$Gpu",
        BertlingError::Cancelled(_) => "dev/bertling/BertlingException$Cancelled",
        BertlingError::Internal(_) => "dev/bertling/BertlingException$Internal",
    }
}

/// Throws `e` as its `BertlingException` subclass; if that class cannot be found (the generated
/// bindings are missing, or a shrinker renamed them against the consumer rules), as an
/// `IllegalStateException` that says so, so the failure is never silent.
fn throw(env: &mut Env<'_>, e: &BertlingError) {
    let message = e.to_string();
    let class = exception_class(e);
    // Find the class first: a failed throw_new would not say whether the lookup or the throw
    // failed. A successful throw reports `JavaException` (the one now pending).
    let found: jni::errors::Result<jni::refs::Auto<'_, JClass<'_>>> =
        Desc::<JClass<'_>>::lookup(JNIString::from(class), env);
    let thrown = match found {
        Ok(found) => matches!(
            env.throw_new(&found, JNIString::from(&message)),
            Err(jni::errors::Error::JavaException)
        ) && env.exception_check(),
        Err(_) => false,
    };
    if !thrown {
        // Whatever the failed lookup left pending is replaced by ours.
        env.exception_clear();
        let _ = env.throw_new(
            JNIString::from("java/lang/IllegalStateException"),
            JNIString::from(format!(
                "{message} (and {class} could not be thrown: are the generated dev.bertling \
                 bindings in the app, and kept by ProGuard/R8?)"
            )),
        );
    }
}
