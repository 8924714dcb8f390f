//! Board profiles: what bertq expects of each board family it targets. `bertq doctor --board ID`
//! checks a board against its profile; `scripts/cross_build.sh ID` builds for it.
//!
//! Kernels follow from the core: Cortex-A53/A72 have NEON only (`neon`), Cortex-A55/A76/A78
//! add the dot-product instructions (`dotprod`), none of these has i8mm (`i8mm` needs Armv8.6:
//! Neoverse V1/V2, Cortex-A710 and later). The runtime picks the table at run time, so one
//! binary serves every board; `target_cpu` only tunes code generation for the board's core.

/// One board family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Short name for `--board` and the cross-build script.
    pub id: &'static str,
    pub name: &'static str,
    pub soc: &'static str,
    /// The cores, as on the spec sheet.
    pub cores: &'static str,
    pub core_count: u32,
    /// `-C target-cpu` for the cross build (`generic` for any aarch64).
    pub target_cpu: &'static str,
    /// CPU features bertq's kernels use that the board has.
    pub features: &'static [&'static str],
    /// The kernel table the runtime selects on it.
    pub kernels: &'static str,
    /// The UART on the board's header, as Linux names it.
    pub uart: &'static str,
    /// Recommended `bertq serve --workers` (one session each).
    pub workers: u32,
    /// RAM of the variants sold, in MB.
    pub ram_mb: &'static [u32],
    /// Substrings of `/proc/device-tree/model` that identify the board.
    pub device_tree: &'static [&'static str],
    pub notes: &'static str,
}

pub const PROFILES: &[Profile] = &[
    Profile {
        id: "rpi3",
        name: "Raspberry Pi 3 (B, B+, A+), Zero 2 W",
        soc: "Broadcom BCM2837 / BCM2710A1",
        cores: "4x Cortex-A53 @ 1.2-1.4 GHz",
        core_count: 4,
        target_cpu: "cortex-a53",
        features: &["neon"],
        kernels: "neon",
        uart: "/dev/serial0",
        workers: 2,
        ram_mb: &[512, 1024],
        device_tree: &["Raspberry Pi 3", "Raspberry Pi Zero 2"],
        notes: "serial0 is the PL011 only with dtoverlay=disable-bt (else the mini UART, whose \
                baud follows the core clock: set core_freq=250 or enable_uart=1). 512 MB boards: \
                1 worker at 128 tokens for 6x384 models.",
    },
    Profile {
        id: "rpi4",
        name: "Raspberry Pi 4 Model B, Compute Module 4, Pi 400",
        soc: "Broadcom BCM2711",
        cores: "4x Cortex-A72 @ 1.5-1.8 GHz",
        core_count: 4,
        target_cpu: "cortex-a72",
        features: &["neon"],
        kernels: "neon",
        uart: "/dev/serial0",
        workers: 3,
        ram_mb: &[1024, 2048, 4096, 8192],
        device_tree: &[
            "Raspberry Pi 4",
            "Raspberry Pi Compute Module 4",
            "Raspberry Pi 400",
        ],
        notes: "Extra PL011 UARTs (uart2-5) via dtoverlay appear as /dev/ttyAMA1-4.",
    },
    Profile {
        id: "rpi5",
        name: "Raspberry Pi 5, Compute Module 5, Pi 500",
        soc: "Broadcom BCM2712",
        cores: "4x Cortex-A76 @ 2.4 GHz",
        core_count: 4,
        target_cpu: "cortex-a76",
        features: &["neon", "dotprod", "fp16"],
        kernels: "dotprod",
        uart: "/dev/ttyAMA0",
        workers: 4,
        ram_mb: &[2048, 4096, 8192, 16384],
        device_tree: &[
            "Raspberry Pi 5",
            "Raspberry Pi Compute Module 5",
            "Raspberry Pi 500",
        ],
        notes: "GPIO 14/15 is /dev/ttyAMA0 with dtparam=uart0=on; the 3-pin debug connector is \
                /dev/ttyAMA10.",
    },
    Profile {
        id: "jetson-orin",
        name: "NVIDIA Jetson Orin (Nano, NX, AGX)",
        soc: "NVIDIA Orin",
        cores: "6-12x Cortex-A78AE @ 1.5-2.2 GHz",
        core_count: 6,
        target_cpu: "cortex-a78",
        features: &["neon", "dotprod", "fp16"],
        kernels: "dotprod",
        uart: "/dev/ttyTHS0",
        workers: 4,
        ram_mb: &[4096, 8192, 16384, 32768, 65536],
        device_tree: &["Jetson Orin", "NVIDIA Orin", "p3768", "p3767", "p3701"],
        notes: "The 40-pin header UART is /dev/ttyTHS0 on JetPack 6 (ttyTHS1 on older \
                releases). bertq runs on the CPU; the GPU is not used.",
    },
    Profile {
        id: "imx8m",
        name: "NXP i.MX 8M (Mini, Nano, Plus) boards",
        soc: "NXP i.MX 8M Mini / Nano / Plus",
        cores: "2-4x Cortex-A53 @ 1.4-1.8 GHz",
        core_count: 4,
        target_cpu: "cortex-a53",
        features: &["neon"],
        kernels: "neon",
        uart: "/dev/ttymxc1",
        workers: 2,
        ram_mb: &[1024, 2048, 4096, 8192],
        device_tree: &["i.MX8MM", "i.MX8MN", "i.MX8MP", "i.MX 8M", "imx8m"],
        notes: "ttymxc1 is the EVK console UART (free it from the console first, or use \
                ttymxc0/2 on the carrier's header). The Plus's NPU is not used.",
    },
    Profile {
        id: "rk3588",
        name: "Rockchip RK3588 / RK3588S boards (Orange Pi 5, Rock 5, ...)",
        soc: "Rockchip RK3588",
        cores: "4x Cortex-A76 @ 2.4 GHz + 4x Cortex-A55 @ 1.8 GHz",
        core_count: 8,
        target_cpu: "cortex-a55",
        features: &["neon", "dotprod", "fp16"],
        kernels: "dotprod",
        uart: "/dev/ttyS2",
        workers: 4,
        ram_mb: &[4096, 8192, 16384, 32768],
        device_tree: &["RK3588", "rk3588", "Orange Pi 5", "ROCK 5"],
        notes: "target-cpu is the A55 so that code runs on both clusters; pin workers to the \
                A76 cores (cpus 4-7) with taskset or CPUAffinity=4-7 in the unit. ttyS2 is the \
                debug UART; header UARTs need an overlay. The NPU is not used.",
    },
    Profile {
        id: "generic",
        name: "Any aarch64 Linux",
        soc: "any",
        cores: "any Armv8-A",
        core_count: 4,
        target_cpu: "generic",
        features: &["neon"],
        kernels: "neon, dotprod or i8mm (detected at run time)",
        uart: "/dev/ttyAMA0",
        workers: 2,
        ram_mb: &[1024],
        device_tree: &[],
        notes: "One binary for every aarch64 board: kernels are chosen at run time.",
    },
];

pub fn by_id(id: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.id == id)
}

/// The profile whose device-tree names match `model` (e.g. the contents of
/// `/proc/device-tree/model`).
pub fn match_device_tree(model: &str) -> Option<&'static Profile> {
    PROFILES
        .iter()
        .find(|p| p.device_tree.iter().any(|s| model.contains(s)))
}

/// The board's model string from the device tree, if it has one.
pub fn device_tree_model() -> Option<String> {
    [
        "/proc/device-tree/model",
        "/sys/firmware/devicetree/base/model",
    ]
    .iter()
    .find_map(|p| std::fs::read(p).ok())
    .map(|b| {
        String::from_utf8_lossy(&b)
            .trim_end_matches('\0')
            .trim()
            .to_string()
    })
}

/// A reference model shape, to say which models fit a board.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub name: &'static str,
    pub layers: u64,
    pub hidden: u64,
    pub heads: u64,
    pub ffn: u64,
    pub vocab: u64,
}

pub const SHAPES: &[Shape] = &[
    Shape {
        name: "MiniLM-L6 / Rampart (6x384)",
        layers: 6,
        hidden: 384,
        heads: 12,
        ffn: 1536,
        vocab: 30522,
    },
    Shape {
        name: "BERT-base (12x768)",
        layers: 12,
        hidden: 768,
        heads: 12,
        ffn: 3072,
        vocab: 30522,
    },
    Shape {
        name: "BERT-large (24x1024)",
        layers: 24,
        hidden: 1024,
        heads: 16,
        ffn: 4096,
        vocab: 30522,
    },
];

impl Shape {
    /// int8 file size in bytes (weights one byte each, f32 per-row scales, biases, norms).
    pub fn file_bytes(&self) -> u64 {
        let (h, f, l) = (self.hidden, self.ffn, self.layers);
        let per_layer = 4 * h * h + 2 * h * f + 4 * (4 * h + 2 * f + 8 * h);
        (self.vocab + 512 + 2) * (h + 4) + l * per_layer + 2 * 1024 * 1024
    }
    /// Session memory in bytes at `seq` tokens (estimate following the runtime's buffers).
    pub fn session_bytes(&self, seq: u64) -> u64 {
        let (h, f) = (self.hidden, self.ffn);
        let f32s = 6 * seq * h + seq * f + seq * seq + seq + seq * 64;
        4 * f32s + seq * h.max(f) + seq * 64
    }
}

/// Memory a server needs: the model file (mapped once, shared by the workers) plus one session
/// per worker.
pub fn server_bytes(file: u64, session: u64, workers: u64) -> u64 {
    file + workers * session
}

/// A board can give bertq about this share of its RAM (the OS, page cache and other services
/// keep the rest).
pub const RAM_BUDGET: f64 = 0.6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_consistent() {
        let mut ids: Vec<&str> = PROFILES.iter().map(|p| p.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), PROFILES.len(), "ids are unique");
        for p in PROFILES {
            assert!(p.features.contains(&"neon"), "{}", p.id);
            // The kernel table follows from the features.
            if p.features.contains(&"dotprod") {
                assert_eq!(p.kernels, "dotprod", "{}", p.id);
            } else if p.id != "generic" {
                assert_eq!(p.kernels, "neon", "{}", p.id);
            }
            assert!(p.workers >= 1 && p.workers <= p.core_count, "{}", p.id);
            assert!(p.uart.starts_with("/dev/"), "{}", p.id);
            assert!(!p.ram_mb.is_empty());
        }
        for id in [
            "rpi3",
            "rpi4",
            "rpi5",
            "jetson-orin",
            "imx8m",
            "rk3588",
            "generic",
        ] {
            assert!(by_id(id).is_some(), "{id}");
        }
    }

    #[test]
    fn device_tree_names_pick_the_board() {
        assert_eq!(
            match_device_tree("Raspberry Pi 4 Model B Rev 1.4")
                .unwrap()
                .id,
            "rpi4"
        );
        assert_eq!(
            match_device_tree("Raspberry Pi 5 Model B Rev 1.0")
                .unwrap()
                .id,
            "rpi5"
        );
        assert_eq!(
            match_device_tree("Raspberry Pi 3 Model B Plus Rev 1.3")
                .unwrap()
                .id,
            "rpi3"
        );
        assert_eq!(match_device_tree("Orange Pi 5 Plus").unwrap().id, "rk3588");
        assert_eq!(
            match_device_tree("NXP i.MX8MPlus EVK board").unwrap().id,
            "imx8m"
        );
        assert!(match_device_tree("QEMU Virtual Machine").is_none());
    }

    #[test]
    fn size_estimates_are_plausible() {
        // MiniLM-L6 has 22.7 M parameters: about 23 MB in int8.
        let mini = SHAPES[0].file_bytes() as f64 / 1e6;
        assert!((18.0..30.0).contains(&mini), "{mini}");
        // BERT-base: 110 M parameters.
        let base = SHAPES[1].file_bytes() as f64 / 1e6;
        assert!((100.0..125.0).contains(&base), "{base}");
        // The runtime reports 9.8 MB for a 6x384 session at 512 tokens (`bertq info`).
        let s = SHAPES[0].session_bytes(512) as f64 / 1e6;
        assert!((8.0..12.0).contains(&s), "{s}");
    }
}
