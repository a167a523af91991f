//! The history store with 100,000 records: opening and reading the newest page, fuzzy search,
//! recording one finished generation (flush included), and resident memory. Each figure is set
//! against a baseline measured in the same run: a bare sled reverse scan, and the matcher alone
//! over the same strings in memory.
//!
//! cargo bench --bench store

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Utc;
use easel::api::GenerationParams;
use easel::store::{GenerationRecord, HistoryStore, Id, Query, SavedImage, SledStore, Status};
use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher};
use std::path::{Path, PathBuf};
use std::time::Instant;

const WORDS: &[&str] = &[
    "lighthouse",
    "dusk",
    "fox",
    "snow",
    "city",
    "night",
    "neon",
    "forest",
    "river",
    "castle",
    "portrait",
    "watercolor",
    "cyberpunk",
    "sunset",
    "ocean",
    "mountain",
    "robot",
    "garden",
    "夜晚",
    "海边",
    "小镇",
    "山",
    "猫",
    "花",
];

fn prompt(i: usize) -> String {
    let mut rng = fastrand::Rng::with_seed(i as u64);
    let n = 4 + rng.usize(0..10);
    (0..n)
        .map(|_| WORDS[rng.usize(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn record(i: usize) -> GenerationRecord {
    let params = GenerationParams {
        prompt: prompt(i),
        model: ["gpt-image-2", "gpt-image-1.5", "dall-e-3"][i % 3].into(),
        ..Default::default()
    };
    let mut r = GenerationRecord::queued(Id::new(), params, "openai", false, Utc::now());
    r.status = if i.is_multiple_of(17) {
        Status::Failed
    } else {
        Status::Succeeded
    };
    r.starred = i.is_multiple_of(50);
    r.attempts = 1;
    r.outputs = vec![SavedImage {
        path: PathBuf::from(format!("images/2026-11-28/000000000_{}_1.png", r.id)),
        format: "png".into(),
        width: 1024,
        height: 1024,
        bytes: 1_500_000,
        sha256: "0".repeat(64),
    }];
    r
}

/// Build (or reuse) a data dir holding `n` records.
fn prepare(dir: &Path, n: usize) {
    let marker = dir.join(format!("bench-{n}.done"));
    if marker.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
    let store = SledStore::open(dir).unwrap();
    let mut batch = Vec::with_capacity(5000);
    for i in 0..n {
        batch.push(record(i));
        if batch.len() == 5000 {
            store.put_batch(&batch).unwrap();
            batch.clear();
        }
    }
    store.put_batch(&batch).unwrap();
    drop(store);
    std::fs::write(marker, b"").unwrap();
}

/// The memory figure comes from a fresh process that only opens the store and runs a query, so
/// the benchmark's own data (and earlier rounds) do not count.
fn memory_probe(dir: &Path) {
    let store = SledStore::open(dir).unwrap();
    let page = store.page(&Query::default(), None, 50).unwrap();
    assert_eq!(page.records.len(), 50);
    let q = Query {
        text: Some("lighthouse dusk".into()),
        ..Default::default()
    };
    let hits = store.page(&q, None, 50).unwrap();
    assert!(!hits.records.is_empty());
    println!("{}", common::rss_mb());
}

fn main() {
    if let Ok(dir) = std::env::var("EASEL_BENCH_MEMPROBE") {
        memory_probe(Path::new(&dir));
        return;
    }
    let n = if common::quick() { 20_000 } else { 100_000 };
    let rounds = if common::quick() { 5 } else { 15 };
    let dir = std::env::var("EASEL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("easel-bench-store"));
    let t = Instant::now();
    prepare(&dir, n);
    println!(
        "data: {n} records in {} (prepared in {:.1} s)",
        dir.display(),
        t.elapsed().as_secs_f64()
    );

    // Open + newest page of 50, against a bare sled open + reverse scan of 50 raw values.
    let (mut easel_open, mut bare_open) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let store = SledStore::open(&dir).unwrap();
        let page = store.page(&Query::default(), None, 50).unwrap();
        assert_eq!(page.records.len(), 50);
        easel_open.push(common::ms(t.elapsed()));
        drop(store);
        let t = Instant::now();
        let db = sled::Config::new()
            .path(dir.join("history.sled"))
            .cache_capacity(16 * 1024 * 1024)
            .open()
            .unwrap();
        let tree = db.open_tree("generations").unwrap();
        let got = tree.iter().rev().take(50).filter_map(Result::ok).count();
        assert_eq!(got, 50);
        bare_open.push(common::ms(t.elapsed()));
        drop(tree);
        drop(db);
    }
    common::report(
        &format!("store: open + newest page of 50 from {n}"),
        "ms",
        common::median(easel_open),
        Some(("bare sled open + reverse scan", common::median(bare_open))),
        "≤ 1.5× and ≤ 50 ms",
        rounds,
    );

    // Fuzzy search over every prompt, after the index is loaded; against the matcher alone.
    let store = SledStore::open(&dir).unwrap();
    let t = Instant::now();
    store.warm_index().unwrap();
    println!("index load: {:.1} ms", common::ms(t.elapsed()));
    let prompts: Vec<String> = (0..n).map(prompt).collect();
    let queries = ["lighthouse dusk", "neon city", "海边 小镇", "wtrclr"];
    let (mut easel_q, mut bare_q) = (Vec::new(), Vec::new());
    let mut matcher = Matcher::new(Config::DEFAULT);
    for _ in 0..rounds {
        for q in queries {
            let t = Instant::now();
            let query = Query {
                text: Some(q.into()),
                ..Default::default()
            };
            let page = store.page(&query, None, 50).unwrap();
            easel_q.push(common::ms(t.elapsed()));
            let t = Instant::now();
            let pattern = Pattern::parse(q, CaseMatching::Smart, Normalization::Smart);
            let hits = pattern.match_list(prompts.iter(), &mut matcher);
            let top: Vec<_> = hits.into_iter().take(50).collect();
            bare_q.push(common::ms(t.elapsed()));
            assert_eq!(page.records.len(), top.len().min(50));
        }
    }
    common::report(
        &format!("store: fuzzy query over {n} prompts (page of 50)"),
        "ms",
        common::median(easel_q),
        Some((
            "nucleo-matcher alone over the same strings",
            common::median(bare_q),
        )),
        "≤ 1.3× and ≤ 30 ms",
        rounds * queries.len(),
    );

    // Recording one finished generation, flush included.
    let mut put_ms = Vec::new();
    for i in 0..(rounds * 10) {
        let mut r = record(n + i);
        r.outputs.clear();
        let t = Instant::now();
        store.put(&r).unwrap();
        put_ms.push(common::ms(t.elapsed()));
        store.delete(r.id).unwrap();
    }
    common::report(
        "store: record one finished generation (flushed)",
        "ms",
        common::median(put_ms),
        None,
        "median ≤ 2 ms",
        rounds * 10,
    );
    drop(store);
    let probe = std::process::Command::new(std::env::current_exe().unwrap())
        .env("EASEL_BENCH_MEMPROBE", &dir)
        .env_remove("EASEL_BENCH_OUT")
        .output()
        .unwrap();
    let rss: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN);
    common::report(
        &format!("store: resident memory, a process that opened {n} records and ran a query"),
        "MB",
        rss,
        None,
        "< 80 MB",
        1,
    );
}
