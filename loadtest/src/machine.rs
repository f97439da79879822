//! Facts about the machine a result was measured on (CPU count and model, kernel), printed
//! with every comparison and stored in every JSON line.

use std::fs;

/// Online CPUs.
pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `model name` from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Kernel release (`uname -r`).
pub fn kernel() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// One line for the report header.
pub fn facts_line() -> String {
    format!(
        "machine: nproc {}, kernel {}, CPU {}",
        nproc(),
        kernel(),
        cpu_model()
    )
}

/// The same facts as a JSON object.
pub fn facts_json() -> serde_json::Value {
    serde_json::json!({ "nproc": nproc(), "kernel": kernel(), "cpu": cpu_model() })
}
