//! Choosing where tensor work runs: burn's wgpu backend on a real GPU, burn's pure-Rust
//! `flex` backend on the CPU otherwise (a software Vulkan adapter such as lavapipe is fine for
//! drawing but about ten times slower than `flex` for matrix products).

use burn::tensor::{Device, DeviceKind};

/// What the user asked for with `--device`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeviceChoice {
    /// A real GPU when there is one, else the CPU.
    #[default]
    Auto,
    /// The CPU (burn `flex`).
    Cpu,
    /// A GPU through wgpu, even a software one; an error when there is no adapter at all.
    Gpu,
}

/// A compute device and what it is, for the summary and the status bar.
#[derive(Clone, Debug)]
pub struct ComputeDevice {
    /// The burn device tensors are created on.
    pub device: Device,
    /// `CPU (burn flex, N threads)` or `GPU: ADAPTER (BACKEND)`.
    pub description: String,
    /// Whether the work runs on a GPU adapter.
    pub is_gpu: bool,
    /// The largest buffer the GPU accepts (batch sizes adapt to it); `None` on the CPU.
    pub max_buffer: Option<u64>,
}

/// Why a device could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// `--device gpu` on a machine without any wgpu adapter.
    #[error("no GPU adapter found (install a Vulkan driver, or use --device cpu)")]
    NoAdapter,
}

impl ComputeDevice {
    /// The CPU device.
    #[must_use]
    pub fn cpu() -> Self {
        Self {
            device: Device::flex(),
            description: format!("CPU (burn flex, {} threads)", rayon::current_num_threads()),
            is_gpu: false,
            max_buffer: None,
        }
    }

    /// Resolves the user's choice.
    pub fn select(choice: DeviceChoice) -> Result<Self, DeviceError> {
        match choice {
            DeviceChoice::Cpu => Ok(Self::cpu()),
            DeviceChoice::Auto => Ok(best_adapter(false)
                .map_or_else(Self::cpu, |(info, max)| Self::gpu(&info, Some(max)))),
            DeviceChoice::Gpu => best_adapter(true)
                .map(|(info, max)| Self::gpu(&info, Some(max)))
                .ok_or(DeviceError::NoAdapter),
        }
    }

    /// A GPU device for the adapter `info` (the largest buffer it accepts, when known).
    #[must_use]
    pub fn gpu(info: &wgpu::AdapterInfo, max_buffer: Option<u64>) -> Self {
        let kind = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(0),
            wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu(0),
            wgpu::DeviceType::VirtualGpu => DeviceKind::VirtualGpu(0),
            wgpu::DeviceType::Cpu => DeviceKind::Cpu,
            wgpu::DeviceType::Other => DeviceKind::DefaultDevice,
        };
        Self {
            device: Device::wgpu(kind),
            description: format!("GPU: {} ({:?})", info.name, info.backend),
            is_gpu: true,
            max_buffer,
        }
    }
}

/// The best wgpu adapter: discrete, then integrated, then virtual; software adapters only
/// when `allow_software`.
fn best_adapter(allow_software: bool) -> Option<(wgpu::AdapterInfo, u64)> {
    let instance = wgpu::Instance::default();
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let rank = |info: &wgpu::AdapterInfo| match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    adapters
        .iter()
        .map(|a| (a.get_info(), a.limits().max_buffer_size))
        .filter(|(info, _)| {
            allow_software
                || !matches!(
                    info.device_type,
                    wgpu::DeviceType::Cpu | wgpu::DeviceType::Other
                )
        })
        .min_by_key(|(info, _)| rank(info))
}
