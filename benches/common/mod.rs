//! Shared by the benchmark binaries: medians, and the JSON line each figure is reported as
//! (scripts/bench collects them into docs/benchmarks.md).

#![allow(dead_code)]

use std::time::Duration;

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Whether the quick (CI) mode was asked for.
pub fn quick() -> bool {
    std::env::var("EASEL_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// Report one figure: printed for people, and appended as a JSON line to $EASEL_BENCH_OUT.
pub fn report(
    name: &str,
    unit: &str,
    easel: f64,
    baseline: Option<(&str, f64)>,
    target: &str,
    samples: usize,
) {
    let ratio = baseline.map(|(_, b)| easel / b);
    match (baseline, ratio) {
        (Some((bname, b)), Some(r)) => {
            println!(
                "{name}: easel {easel:.3} {unit}, {bname} {b:.3} {unit}, ratio {r:.2}× (target {target}; {samples} samples)"
            )
        }
        _ => println!("{name}: easel {easel:.3} {unit} (target {target}; {samples} samples)"),
    }
    if let Ok(path) = std::env::var("EASEL_BENCH_OUT") {
        let line = serde_json::json!({
            "name": name, "unit": unit, "easel": easel,
            "baseline_name": baseline.map(|b| b.0), "baseline": baseline.map(|b| b.1),
            "ratio": ratio, "target": target, "samples": samples,
        });
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Resident memory of this process in MB (Linux).
pub fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
