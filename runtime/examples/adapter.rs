//! Prints the adapter the wgpu backend would use and what it supports.
//!   cargo run -p bertling-runtime --example adapter   (WGPU_BACKEND=vulkan|gl|metal|dx12)
fn main() {
    match bertling_runtime::gpu::GpuContext::new(bertling_runtime::gpu::AdapterChoice::Any) {
        Ok(ctx) => println!("{}\n{:#?}", ctx.describe(), ctx.caps),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
