//! The wgpu device: adapter choice, capabilities, and errors as values.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// What the adapter can do that the kernels care about.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Capabilities {
    pub shader_f16: bool,
    pub subgroups: bool,
    pub timestamps: bool,
    /// WGSL `dot4I8Packed` and friends.
    pub packed_dot: bool,
    pub max_storage_binding: u64,
    pub max_workgroup_storage: u32,
}

/// One device and its queue, shared by every model loaded on it.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub caps: Capabilities,
    /// The first error the device reported outside an error scope, or its loss.
    failure: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.describe()).field("caps", &self.caps).finish()
    }
}

/// Which adapters may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterChoice {
    /// Any adapter, software rasterisers (lavapipe, llvmpipe) included.
    Any,
    /// Hardware GPUs only.
    HardwareOnly,
}

impl GpuContext {
    /// Opens the best adapter of the backends allowed by `WGPU_BACKEND` (all by default).
    pub fn new(choice: AdapterChoice) -> Result<GpuContext> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let packed_dot = instance.wgsl_language_features().contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|e| {
            Error::Gpu(format!("no GPU adapter found ({e}); install a Vulkan, Metal, DX12 or GL driver (on Debian: mesa-vulkan-drivers) or use --backend cpu"))
        })?;
        let info = adapter.get_info();
        if choice == AdapterChoice::HardwareOnly && info.device_type == wgpu::DeviceType::Cpu {
            return Err(Error::Gpu(format!("the only adapter, {} ({:?}), is a software renderer", info.name, info.backend)));
        }
        let wanted = wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY;
        let features = adapter.features() & wanted;
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("bertling"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Gpu(format!("cannot open the GPU device {}: {e}", info.name)))?;
        let failure = Arc::new(Mutex::new(None));
        let f = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }));
        let f = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("the GPU device was lost ({reason:?}): {message}"));
        });
        let caps = Capabilities {
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            // The reductions assume a 64-invocation workgroup made of whole subgroups.
            subgroups: features.contains(wgpu::Features::SUBGROUP) && info.subgroup_max_size <= 64 && info.subgroup_min_size >= 1,
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            packed_dot,
            max_storage_binding: limits.max_storage_buffer_binding_size as u64,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
        };
        Ok(GpuContext { device, queue, info, caps, failure })
    }

    /// "name (backend, driver)".
    pub fn describe(&self) -> String {
        format!("{} ({:?}, {} {})", self.info.name, self.info.backend, self.info.driver, self.info.driver_info)
    }

    /// Fails if the device reported an error or was lost since the last check.
    pub fn check(&self) -> Result<()> {
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some(msg) => Err(Error::Gpu(msg)),
            None => Ok(()),
        }
    }

    /// Runs `f` inside out-of-memory and validation error scopes and turns what they catch
    /// into an error value.
    pub fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = o {
            return Err(Error::Gpu(format!("{what}: out of GPU memory: {e}")));
        }
        if let Some(e) = v {
            return Err(Error::Gpu(format!("{what}: {e}")));
        }
        self.check()?;
        Ok(out)
    }

    /// Waits for all submitted work.
    pub fn wait(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        self.check()
    }

    /// Copies `size` bytes of `src` back to the host.
    pub fn read(&self, src: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: size.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        enc.copy_buffer_to_buffer(src, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        self.map_read(&staging, size)
    }

    /// Maps a MAP_READ buffer and copies its first `size` bytes out.
    pub fn map_read(&self, staging: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..size.max(4)).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv().map_err(|_| Error::Gpu("the GPU never answered a read-back".into()))?.map_err(|e| Error::Gpu(format!("cannot read GPU memory back: {e}")))?;
        let data = staging.slice(..size.max(4)).get_mapped_range().map_err(|e| Error::Gpu(format!("cannot read GPU memory back: {e}")))?.to_vec();
        staging.unmap();
        Ok(data[..size as usize].to_vec())
    }
}
