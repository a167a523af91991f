//! Targeted tests of the history store and of `easel history` around it: a second process on the
//! same data folder, damaged records, export and import (and hostile imports), and a large
//! history.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration as ChronoDuration, Utc};
use easel::api::GenerationParams;
use easel::store::files::{image_stem, write_atomic};
use easel::store::transfer;
use easel::store::{
    GenerationRecord, HistoryStore, Id, Query, RecordedError, SavedImage, SledStore, Status,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_easel");

/// A private HOME, config folder and data folder for one test.
struct Sandbox {
    _root: tempfile::TempDir,
    home: PathBuf,
    config_home: PathBuf,
    data_home: PathBuf,
    data: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let config_home = root.path().join("config");
        let data_home = root.path().join("share");
        let data = root.path().join("data");
        for d in [&home, &config_home, &data_home] {
            std::fs::create_dir_all(d).unwrap();
        }
        Sandbox {
            _root: root,
            home,
            config_home,
            data_home,
            data,
        }
    }

    /// The binary on `data_dir`, with a clean environment (no OPENAI_*, no other EASEL_*).
    fn run_on(&self, data_dir: &Path, args: &[&str]) -> Run {
        let out = Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.config_home)
            .env("XDG_DATA_HOME", &self.data_home)
            .env("EASEL_DATA_DIR", data_dir)
            .env("LANG", "C.UTF-8")
            .env("EASEL_SERVICE", "off")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_on(&self.data, args)
    }
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn rec(prompt: &str, status: Status) -> GenerationRecord {
    let params = GenerationParams {
        prompt: prompt.into(),
        ..Default::default()
    };
    let mut r = GenerationRecord::queued(Id::new(), params, "demo", true, Utc::now());
    r.status = status;
    r
}

fn json(r: &GenerationRecord) -> String {
    serde_json::to_string(r).unwrap()
}

// ---------------------------------------------------------------------------------------------
// (a) A second process on the same data folder
// ---------------------------------------------------------------------------------------------

#[test]
fn second_process_is_refused_with_the_holders_pid_and_nothing_breaks() {
    let sb = Sandbox::new();
    let store = SledStore::open(&sb.data).unwrap();
    let first = rec("held by the test", Status::Succeeded);
    store.put(&first).unwrap();

    let run = sb.run(&["history", "list"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("another easel is using"), "{run:?}");
    assert!(
        run.stderr.contains(&sb.data.display().to_string()),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!("pid {}", std::process::id())),
        "{run:?}"
    );
    assert!(!run.stderr.contains("panicked"), "{run:?}");

    // The holder goes on as if nothing happened.
    let second = rec("written after the refusal", Status::Failed);
    store.put(&second).unwrap();
    assert_eq!(store.get(first.id).unwrap().as_ref(), Some(&first));
    assert_eq!(store.len(), 2);
    drop(store);

    let store = SledStore::open(&sb.data).unwrap();
    assert_eq!(store.get(second.id).unwrap().as_ref(), Some(&second));
    let report = store.doctor(false).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(store.skipped().is_empty());
    drop(store);

    // And once the holder is gone, the binary gets in.
    let run = sb.run(&["history", "list"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("written after the refusal"), "{run:?}");
}

// ---------------------------------------------------------------------------------------------
// (b) Damaged records
// ---------------------------------------------------------------------------------------------

#[test]
fn damaged_records_are_skipped_reported_and_repaired() {
    let sb = Sandbox::new();
    let records: Vec<GenerationRecord> = (0..5)
        .map(|i| rec(&format!("record {i} 夜晚"), Status::Succeeded))
        .collect();
    {
        let store = SledStore::open(&sb.data).unwrap();
        for r in &records {
            store.put(r).unwrap();
        }
    }
    let garbage = records[1].id;
    let future = records[3].id;
    {
        let db = sled::open(sb.data.join("history.sled")).unwrap();
        let gens = db.open_tree("generations").unwrap();
        assert_eq!(gens.len(), 5);
        gens.insert(garbage.key(), &b"\x00\xff{not json at all"[..])
            .unwrap();
        let newer = serde_json::json!({ "v": 99, "record": serde_json::to_value(&records[3]).unwrap(), "hologram": true });
        gens.insert(future.key(), serde_json::to_vec(&newer).unwrap())
            .unwrap();
        db.flush().unwrap();
    }

    let bad_keys = [hex::encode(garbage.key()), hex::encode(future.key())];
    {
        let store = SledStore::open(&sb.data).unwrap();
        let page = store.page(&Query::default(), None, 10).unwrap();
        let ids: Vec<Id> = page.records.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![records[4].id, records[2].id, records[0].id]);
        let skipped = store.skipped();
        let mut keys: Vec<&str> = skipped.iter().map(|b| b.key.as_str()).collect();
        keys.sort();
        let mut want: Vec<&str> = bad_keys.iter().map(String::as_str).collect();
        want.sort();
        assert_eq!(keys, want, "{skipped:?}");
        let newer = skipped.iter().find(|b| b.key == bad_keys[1]).unwrap();
        assert!(newer.error.contains("newer easel"), "{newer:?}");
        // Reading them one by one, or through the index, does not panic either.
        assert_eq!(store.get(garbage).unwrap(), None);
        assert_eq!(store.get(future).unwrap(), None);
        let text = Query {
            text: Some("record".into()),
            ..Default::default()
        };
        let found = store.page(&text, None, 10).unwrap();
        assert_eq!(found.records.len(), 3);
        let succeeded = Query {
            status: Some(Status::Succeeded),
            ..Default::default()
        };
        assert_eq!(store.page(&succeeded, None, 10).unwrap().records.len(), 3);
        let stats = store.stats().unwrap();
        assert_eq!((stats.total, stats.skipped), (3, 2));
        assert_eq!(store.queue().unwrap().len(), 0);
    }

    let list = sb.run(&["history", "list"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert!(
        list.stderr.contains("warning") && list.stderr.contains("easel history doctor"),
        "{list:?}"
    );
    for k in &bad_keys {
        assert!(list.stderr.contains(k.as_str()), "{list:?}");
    }
    assert_eq!(list.stdout.lines().count(), 3, "{list:?}");

    let doctor = sb.run(&["history", "doctor"]);
    assert_eq!(doctor.code, 1, "{doctor:?}");
    for k in &bad_keys {
        assert!(
            doctor.stdout.contains(&format!("damaged record {k}")),
            "{doctor:?}"
        );
    }
    assert!(doctor.stdout.contains("--repair"), "{doctor:?}");

    let repair = sb.run(&["history", "doctor", "--repair"]);
    assert_eq!(repair.code, 0, "{repair:?}");

    let again = sb.run(&["history", "doctor"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("healthy (3 generations)"),
        "{again:?}"
    );
    let list = sb.run(&["history", "list"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert!(!list.stderr.contains("warning"), "{list:?}");

    // The damaged records were set aside, not destroyed.
    let db = sled::open(sb.data.join("history.sled")).unwrap();
    let quarantine = db.open_tree("quarantine").unwrap();
    assert_eq!(quarantine.len(), 2);
    assert!(quarantine.contains_key(garbage.key()).unwrap());
    assert_eq!(db.open_tree("generations").unwrap().len(), 3);
    assert_eq!(db.open_tree("summaries").unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// (c) Export and import
// ---------------------------------------------------------------------------------------------

/// Write a fake image under `data_dir` the way the store names them; returns what a record keeps.
fn image_file(data_dir: &Path, r: &GenerationRecord, index: usize) -> SavedImage {
    let (dir, stem) = image_stem(&r.id, r.created, index);
    let rel = dir.join(format!("{stem}.png"));
    let abs = data_dir.join(&rel);
    std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
    let bytes = format!("not really a png {} {index}", r.id).into_bytes();
    write_atomic(&abs, &bytes).unwrap();
    SavedImage {
        path: rel,
        format: "png".into(),
        width: 64,
        height: 48,
        bytes: bytes.len() as u64,
        sha256: easel::store::files::sha256_hex(&bytes),
    }
}

/// About fifty records with every field in use somewhere.
fn varied_records(data_dir: &Path) -> Vec<GenerationRecord> {
    let prompts = [
        "a lighthouse at dusk",
        "夜晚的海边小镇",
        "a fox 🦊 in the snow, \"quoted\" and\nmulti-line",
        "tab\tand backslash \\ and unicode ✨",
        "красный квадрат",
    ];
    let models = ["gpt-image-2", "dall-e-3", "gpt-image-1-mini"];
    let base = Utc::now() - ChronoDuration::days(3);
    let mut out: Vec<GenerationRecord> = Vec::new();
    for i in 0..50usize {
        let mut params = GenerationParams {
            prompt: format!("{} #{i}", prompts[i % prompts.len()]),
            model: models[i % models.len()].into(),
            ..Default::default()
        };
        if i % 2 == 0 {
            params.size = Some("1024x1536".into());
            params.quality = Some("high".into());
        }
        if i % 3 == 0 {
            params.n = 2;
            params.output_format = Some("webp".into());
            params.output_compression = Some(70);
        }
        let created = base + ChronoDuration::milliseconds(i as i64 * 61_123);
        let mut r = GenerationRecord::queued(
            Id::new(),
            params,
            if i % 4 == 0 { "demo" } else { "openai" },
            i % 4 == 0,
            created,
        );
        r.status = Status::ALL[i % Status::ALL.len()];
        r.starred = i % 5 == 0;
        if i % 7 == 0 {
            r.tags = vec!["keep".into(), "海".into()];
        }
        if i > 0 && i % 6 == 0 {
            r.parent_id = Some(out[i - 1].id);
        }
        r.attempts = (i % 3) as u32;
        if r.status == Status::Succeeded {
            r.started = Some(created + ChronoDuration::seconds(1));
            r.finished = Some(created + ChronoDuration::milliseconds(12_345));
            r.revised_prompt = (i % 2 == 1).then(|| format!("revised: {}", r.prompt));
            r.usage = Some(serde_json::from_value(serde_json::json!({"input_tokens": 50 + i, "output_tokens": 4160, "total_tokens": 4210 + i})).unwrap());
            r.cost_usd = Some(0.042 + i as f64 / 997.0);
            r.request_id = Some(format!("req_{i}"));
            r.outputs = (0..usize::from(r.params.n))
                .map(|k| image_file(data_dir, &r, k))
                .collect();
        }
        if r.status == Status::Failed {
            r.error = Some(RecordedError {
                kind: "moderation".into(),
                message: "refused by the safety system".into(),
                code: Some("moderation_blocked".into()),
                status: Some(400),
                request_id: Some(format!("req_f{i}")),
                hint: Some("change the prompt".into()),
            });
        }
        out.push(r);
    }
    out
}

/// How a record is expected to come out of an import: jobs never restart by themselves.
fn as_imported(r: &GenerationRecord) -> GenerationRecord {
    let mut r = r.clone();
    if matches!(r.status, Status::Queued | Status::Running) {
        r.status = Status::Interrupted;
    }
    r
}

fn assert_same_history(source: &[GenerationRecord], dest: &SledStore) {
    assert_eq!(dest.len(), source.len());
    for r in source {
        let got = dest
            .get(r.id)
            .unwrap()
            .unwrap_or_else(|| panic!("{} was not imported", r.id));
        assert_eq!(json(&got), json(&as_imported(r)));
    }
    assert!(
        dest.queue().unwrap().is_empty(),
        "imported jobs were queued"
    );
}

#[test]
fn export_import_round_trip_through_the_library() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let records = varied_records(a.path());
    let source = SledStore::open(a.path()).unwrap();
    for r in &records {
        source.put(r).unwrap();
    }
    assert!(source.doctor(false).unwrap().is_clean());
    let mut buf = Vec::new();
    assert_eq!(transfer::export(&source, &mut buf).unwrap(), 50);
    let text = String::from_utf8(buf.clone()).unwrap();
    assert_eq!(text.lines().count(), 50);
    // Oldest first, paths relative to the data folder.
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["record"]["id"], records[0].id.to_string());
    assert!(
        !text.contains(&a.path().display().to_string()),
        "an absolute path was exported"
    );

    let dest = SledStore::open(b.path()).unwrap();
    let report = transfer::import(&dest, b.path(), &mut buf.as_slice()).unwrap();
    assert_eq!(
        (report.imported, report.present, report.refused.clone()),
        (50, 0, vec![])
    );
    assert_same_history(&records, &dest);

    // Importing the same file again changes nothing.
    let report = transfer::import(&dest, b.path(), &mut buf.as_slice()).unwrap();
    assert_eq!(
        (report.imported, report.present, report.refused.clone()),
        (0, 50, vec![])
    );
    assert_same_history(&records, &dest);

    // A second export of the copy is the first one, but for the jobs that were stopped.
    let mut again = Vec::new();
    transfer::export(&dest, &mut again).unwrap();
    let again = String::from_utf8(again).unwrap();
    assert_eq!(again.lines().count(), 50);
    for (x, y) in text.lines().zip(again.lines()) {
        let (x, y): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(x).unwrap(),
            serde_json::from_str(y).unwrap(),
        );
        let status = x["record"]["status"].as_str().unwrap();
        if status == "queued" || status == "running" {
            assert_eq!(y["record"]["status"], "interrupted");
        } else {
            assert_eq!(x, y);
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn export_import_round_trip_through_the_binary() {
    let sb = Sandbox::new();
    let records = varied_records(&sb.data);
    {
        let store = SledStore::open(&sb.data).unwrap();
        for r in &records {
            store.put(r).unwrap();
        }
    }
    let file = sb.home.join("history export.jsonl");
    let export = sb.run(&["history", "export", "--out", file.to_str().unwrap()]);
    assert_eq!(export.code, 0, "{export:?}");
    assert!(export.stderr.contains("exported 50"), "{export:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 50);

    // The export opened the store: the jobs left running there (their process is gone) are
    // now interrupted, in the source and in the export.
    let records: Vec<GenerationRecord> = {
        let source = SledStore::open(&sb.data).unwrap();
        records
            .iter()
            .map(|r| source.get(r.id).unwrap().unwrap())
            .collect()
    };
    let other = sb.home.join("elsewhere");
    let import = sb.run_on(&other, &["history", "import", file.to_str().unwrap()]);
    assert_eq!(import.code, 0, "{import:?}");
    assert!(
        import
            .stdout
            .contains("imported 50, already present 0, refused 0"),
        "{import:?}"
    );
    let again = sb.run_on(&other, &["history", "import", file.to_str().unwrap()]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stdout
            .contains("imported 0, already present 50, refused 0"),
        "{again:?}"
    );

    // With the images carried over too, the copy is whole.
    copy_tree(&sb.data.join("images"), &other.join("images"));
    let doctor = sb.run_on(&other, &["history", "doctor"]);
    assert_eq!(doctor.code, 0, "{doctor:?}");
    assert!(!doctor.stdout.contains("file with no record"), "{doctor:?}");

    let dest = SledStore::open(&other).unwrap();
    assert_same_history(&records, &dest);
}

// ---------------------------------------------------------------------------------------------
// (d) Hostile imports
// ---------------------------------------------------------------------------------------------

/// A record line with one image at `path` (`{id}` in it becomes the record's id).
fn line_with_output(path: &str) -> (Id, String) {
    let mut r = rec(&format!("points at {path}"), Status::Succeeded);
    r.outputs = vec![SavedImage {
        path: PathBuf::from(path.replace("{id}", &r.id.to_string())),
        format: "png".into(),
        width: 1,
        height: 1,
        bytes: 1,
        sha256: "00".into(),
    }];
    (
        r.id,
        serde_json::to_string(&serde_json::json!({ "v": 1, "record": r })).unwrap(),
    )
}

/// An import file with good lines among hostile ones, against a data folder holding symlinks
/// that lead out of it. Returns the file's text, the ids that must be imported, those that must
/// not, and the line numbers that must be refused.
fn hostile_setup(data_dir: &Path, outside: &Path) -> (String, Vec<Id>, Vec<Id>, Vec<usize>) {
    std::fs::create_dir_all(data_dir.join("images")).unwrap();
    std::fs::write(outside.join("present.png"), b"outside").unwrap();
    std::os::unix::fs::symlink(outside, data_dir.join("images/out")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("present.png"),
        data_dir.join("images/link.png"),
    )
    .unwrap();
    std::fs::create_dir_all(data_dir.join("images/2026-11-28")).unwrap();

    let (good1, l1) = line_with_output("images/2026-11-28/214700000_{id}_1.png");
    let (up, l2) = line_with_output("../x.png");
    let (abs, l3) = line_with_output("/etc/passwd");
    let (through_dir, l4) = line_with_output("images/out/present.png");
    let (through_dir_new, l5) = line_with_output("images/out/not-there-yet.png");
    let (file_link, l6) = line_with_output("images/link.png");
    let (sneaky, l7) = line_with_output("images/2026-11-28/../../../x.png");
    std::os::unix::fs::symlink(
        outside.join("gone.png"),
        data_dir.join("images/dangling.png"),
    )
    .unwrap();
    let (dangling, l9) = line_with_output("images/dangling.png");
    let mut good2 = rec("a bare record, no envelope, no images", Status::Failed);
    good2.outputs.clear();
    let l8 = serde_json::to_string(&good2).unwrap();
    let text = [
        l1,
        l2,
        l3,
        l4,
        l5,
        String::new(),
        l6,
        "{\"v\": 1, \"record\": 42}".into(),
        l7,
        l8,
        l9,
    ]
    .join("\n")
        + "\n";
    (
        text,
        vec![good1, good2.id],
        vec![
            up,
            abs,
            through_dir,
            through_dir_new,
            file_link,
            sneaky,
            dangling,
        ],
        vec![2, 3, 4, 5, 7, 8, 9, 11],
    )
}

#[test]
fn hostile_import_lines_are_refused_by_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (text, good, bad, lines) = hostile_setup(&data, outside.path());
    let store = SledStore::open(&data).unwrap();
    let report = transfer::import(&store, &data, &mut text.as_bytes()).unwrap();
    let refused: Vec<usize> = report.refused.iter().map(|(n, _)| *n).collect();
    assert_eq!(refused, lines, "{report:?}");
    assert_eq!(report.imported, 2, "{report:?}");
    for (n, why) in &report.refused {
        match n {
            2 | 9 => assert!(why.contains(".."), "{n}: {why}"),
            3 => assert!(why.contains("absolute"), "{n}: {why}"),
            4 | 5 | 7 | 11 => assert!(why.contains("symlink"), "{n}: {why}"),
            _ => {}
        }
    }
    for id in good {
        assert!(store.get(id).unwrap().is_some());
    }
    for id in bad {
        assert!(store.get(id).unwrap().is_none(), "{id} was imported");
    }
    assert_eq!(store.len(), 2);
    assert!(outside.path().join("present.png").exists());
}

#[test]
fn hostile_import_lines_are_refused_by_the_binary() {
    let sb = Sandbox::new();
    let outside = tempfile::tempdir().unwrap();
    let (text, good, bad, lines) = hostile_setup(&sb.data, outside.path());
    let file = sb.home.join("hostile.jsonl");
    std::fs::write(&file, text).unwrap();
    let run = sb.run(&["history", "import", file.to_str().unwrap()]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("imported 2, already present 0, refused 8"),
        "{run:?}"
    );
    for n in &lines {
        assert!(
            run.stderr
                .contains(&format!("{}:{n}: refused", file.display())),
            "line {n}: {run:?}"
        );
    }
    let store = SledStore::open(&sb.data).unwrap();
    for id in good {
        assert!(store.get(id).unwrap().is_some());
    }
    for id in bad {
        assert!(store.get(id).unwrap().is_none(), "{id} was imported");
    }
}

// ---------------------------------------------------------------------------------------------
// (e) A large history
// ---------------------------------------------------------------------------------------------

/// Put `n` records one by one (each flushed), reopen, and check the newest page and a search.
fn large_history(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let mut ids = Vec::with_capacity(n);
    {
        let store = SledStore::open(dir.path()).unwrap();
        for i in 0..n {
            let status = if i % 10 == 0 {
                Status::Failed
            } else {
                Status::Succeeded
            };
            let r = rec(&format!("prompt number {i} 夜晚"), status);
            store.put(&r).unwrap();
            ids.push(r.id);
        }
    }
    eprintln!("{n} puts took {:?}", started.elapsed());
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.len(), n);
    let t = std::time::Instant::now();
    let page = store.page(&Query::default(), None, 50).unwrap();
    eprintln!("the newest page took {:?}", t.elapsed());
    let got: Vec<Id> = page.records.iter().map(|r| r.id).collect();
    let want: Vec<Id> = ids.iter().rev().take(50).copied().collect();
    assert_eq!(got, want);
    assert_eq!(
        page.records[0].prompt,
        format!("prompt number {} 夜晚", n - 1)
    );
    assert!(page.next.is_some());
    // The second page follows on.
    let second = store.page(&Query::default(), page.next, 50).unwrap();
    let want: Vec<Id> = ids.iter().rev().skip(50).take(50).copied().collect();
    assert_eq!(
        second.records.iter().map(|r| r.id).collect::<Vec<_>>(),
        want
    );
    let failed = Query {
        status: Some(Status::Failed),
        ..Default::default()
    };
    assert_eq!(store.count(&failed).unwrap(), n / 10);
    let target = n * 5 / 8 + 3;
    let text = Query {
        text: Some(format!("number {target}")),
        ..Default::default()
    };
    let hit = store.page(&text, None, 5).unwrap();
    assert_eq!(hit.records.first().map(|r| r.id), Some(ids[target]));
}

#[test]
fn two_thousand_records() {
    large_history(2_000);
}

/// About 11 s in a debug build (every put is flushed to disk): run with `--ignored`.
#[test]
#[ignore = "slow in debug builds (~11 s): cargo test --test store_behaviour -- --ignored"]
fn twenty_thousand_records_smoke() {
    large_history(20_000);
}

// ---------------------------------------------------------------------------------------------
// Writers at the same time (the studio stars a job while its worker records how it ended)
// ---------------------------------------------------------------------------------------------

#[test]
fn starring_while_a_job_is_recorded_loses_no_transition() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
    let mut job = rec("a job that is starred while it runs", Status::Queued);
    store.enqueue(&job, false).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let starrer = {
        let (store, done, id) = (store.clone(), done.clone(), job.id);
        std::thread::spawn(move || {
            let mut on = true;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                store.set_starred(id, on).unwrap();
                store
                    .set_tags(id, if on { vec!["x".into()] } else { vec![] })
                    .unwrap();
                on = !on;
            }
        })
    };
    let mut regressions = Vec::new();
    job.status = Status::Running;
    for attempt in 1..=150u32 {
        job.attempts = attempt;
        store.put(&job).unwrap();
        let now = store.get(job.id).unwrap().unwrap();
        if now.attempts < attempt {
            regressions.push((attempt, now.attempts));
        }
    }
    job.status = Status::Succeeded;
    job.attempts = 151;
    store.put(&job).unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    starrer.join().unwrap();
    assert!(
        regressions.is_empty(),
        "a star overwrote newer writes (written, then read): {regressions:?}"
    );
    let last = store.get(job.id).unwrap().unwrap();
    assert_eq!((last.status, last.attempts), (Status::Succeeded, 151));
    assert!(store.queue().unwrap().is_empty());
}

#[test]
fn starring_while_deleting_does_not_bring_the_record_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
    let mut back = 0;
    for _ in 0..40 {
        let r = rec("deleted while starred", Status::Succeeded);
        store.put(&r).unwrap();
        let starrer = {
            let (store, id) = (store.clone(), r.id);
            std::thread::spawn(move || {
                for i in 0..200 {
                    if store.set_starred(id, i % 2 == 0).is_err() {
                        break;
                    }
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(1));
        store.delete(r.id).unwrap();
        starrer.join().unwrap();
        if store.get(r.id).unwrap().is_some() {
            back += 1;
            store.delete(r.id).unwrap();
        }
    }
    assert_eq!(
        back, 0,
        "deleted records came back {back} time(s) out of 40"
    );
    assert!(store.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Issue 9 and 10: crafted imports, damaged databases, repair, listing, permissions
// ---------------------------------------------------------------------------------------------

impl Sandbox {
    /// A config that makes the demo backend quick.
    fn quick_demo(&self) {
        let file = self.config_home.join("easel").join("config.toml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, "[demo]\nlatency_ms = 20\n").unwrap();
    }

    /// Generate with the demo backend; returns the saved paths printed.
    fn generate(&self, data_dir: &Path, prompt: &str, extra: &[&str]) -> Vec<PathBuf> {
        let mut args = vec!["generate", prompt, "--no-preview"];
        args.extend_from_slice(extra);
        let run = self.run_on(data_dir, &args);
        assert_eq!(run.code, 0, "{run:?}");
        run.stdout.lines().map(PathBuf::from).collect()
    }
}

/// A record with an image and its sidecar on disk, stored in `data_dir`.
fn stored_with_image(data_dir: &Path, prompt: &str) -> GenerationRecord {
    let mut r = rec(prompt, Status::Succeeded);
    let saved = image_file(data_dir, &r, 0);
    std::fs::write(
        data_dir.join(&saved.path).with_extension("json"),
        b"{\"easel_sidecar\": 1}",
    )
    .unwrap();
    r.outputs = vec![saved];
    let store = SledStore::open(data_dir).unwrap();
    store.put(&r).unwrap();
    r
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Issue 9 item 2 (import side): paths that name the store's own files, or a file another
/// record owns (its image, or its sidecar through another extension), are refused.
#[test]
fn crafted_import_paths_naming_the_store_or_another_records_files_are_refused() {
    let sb = Sandbox::new();
    let owner = stored_with_image(&sb.data, "the owner");
    let owned = owner.outputs[0].path.to_str().unwrap().to_string();
    let same_sidecar = owner.outputs[0]
        .path
        .with_extension("webp")
        .to_str()
        .unwrap()
        .to_string();
    let targets = [
        "history.sled/db".to_string(),
        "history.sled/conf".to_string(),
        "./history.sled/conf".to_string(),
        "easel.lock".to_string(),
        owned.clone(),
        format!("./{owned}"),
        same_sidecar,
        "images".to_string(),
        owner.outputs[0]
            .path
            .with_extension("json")
            .to_str()
            .unwrap()
            .to_string(),
    ];
    let mut lines = String::new();
    for t in &targets {
        lines.push_str(&line_with_output(t).1);
        lines.push('\n');
    }
    // Two records in one file claiming the same new image: the second is refused.
    let (first_id, first) = line_with_output("images/2026-11-28/214700000_{id}_1.png");
    let (second_id, second) =
        line_with_output(&format!("images/2026-11-28/214700000_{first_id}_1.png"));
    lines.push_str(&format!("{first}\n{second}\n"));
    let file = sb.home.join("crafted.jsonl");
    std::fs::write(&file, lines).unwrap();
    let run = sb.run(&["history", "import", file.to_str().unwrap()]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "imported 1, already present 0, refused {}",
            targets.len() + 1
        )),
        "{run:?}"
    );
    for n in (1..=targets.len()).chain([targets.len() + 2]) {
        assert!(
            run.stderr
                .contains(&format!("{}:{n}: refused", file.display())),
            "line {n}: {run:?}"
        );
    }
    let store = SledStore::open(&sb.data).unwrap();
    assert!(store.get(second_id).unwrap().is_none());
    assert_eq!(store.len(), 2);
}

/// Issue 9 item 2 (rm side): even a record that already points at the store's files or at
/// another record's image (written by an older easel) never makes rm delete them.
#[test]
fn rm_never_deletes_the_database_or_another_records_files() {
    let sb = Sandbox::new();
    let owner = stored_with_image(&sb.data, "the owner");
    let targets = [
        "history.sled/db",
        "history.sled/conf",
        "./history.sled/conf",
        "easel.lock",
        owner.outputs[0].path.to_str().unwrap(),
    ];
    let mut ids = Vec::new();
    {
        let store = SledStore::open(&sb.data).unwrap();
        for t in targets {
            let mut r = rec(&format!("crafted {t}"), Status::Succeeded);
            r.outputs = vec![SavedImage {
                path: PathBuf::from(t),
                format: "png".into(),
                width: 1,
                height: 1,
                bytes: 1,
                sha256: "00".into(),
            }];
            store.put(&r).unwrap();
            ids.push(r.id.to_string());
        }
    }
    let mut args = vec!["history", "rm", "--purge"];
    args.extend(ids.iter().map(String::as_str));
    let run = sb.run(&args);
    assert_eq!(run.code, 0, "{run:?}");
    for f in ["history.sled/db", "history.sled/conf", "easel.lock"] {
        assert!(sb.data.join(f).exists(), "{f} was deleted: {run:?}");
    }
    let image = sb.data.join(&owner.outputs[0].path);
    assert!(image.exists(), "another record's image was deleted");
    assert!(image.with_extension("json").exists());
    let list = sb.run(&["history", "list"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert!(list.stdout.contains("the owner"), "{list:?}");
    // The owner's own rm still removes its files.
    let run = sb.run(&["history", "rm", "--purge", &owner.id.to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!image.exists() && !image.with_extension("json").exists());
}

fn damage(data: &Path, how: &str) {
    let db = data.join("history.sled").join("db");
    match how {
        "cut" => {
            let len = std::fs::metadata(&db).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
            f.set_len(len / 2).unwrap();
        }
        "flip" => {
            let mut bytes = std::fs::read(&db).unwrap();
            let (mid, len) = (bytes.len() / 2, bytes.len());
            for b in bytes[mid - len / 4..mid + len / 4].iter_mut().step_by(97) {
                *b ^= 0x5a;
            }
            std::fs::write(&db, bytes).unwrap();
        }
        "conf" => {
            std::fs::write(
                data.join("history.sled").join("conf"),
                b"\x00\xffgarbage = [[[\n",
            )
            .unwrap();
        }
        _ => unreachable!(),
    }
}

/// Issue 9 item 7: whatever the damage, `doctor --repair` rebuilds history from the sidecars,
/// keeps the damaged database, and says how many records it recovered.
#[test]
fn a_damaged_database_is_rebuilt_from_the_sidecars() {
    let sb = Sandbox::new();
    sb.quick_demo();
    let source = sb.home.join("source");
    let prompts = ["a lighthouse at dusk", "a red fox", "夜晚的海边小镇"];
    // A history large enough that the log holds more than its header; the generations with
    // images come last, in the part of the log a cut loses.
    {
        let store = SledStore::open(&source).unwrap();
        for i in 0..300 {
            store
                .put(&rec(
                    &format!("filler {i} {}", "x".repeat(200)),
                    Status::Failed,
                ))
                .unwrap();
        }
    }
    for p in prompts {
        sb.generate(&source, p, &[]);
    }
    for how in ["cut", "flip", "conf"] {
        let data = sb.home.join(format!("damaged-{how}"));
        copy_tree(&source, &data);
        damage(&data, how);
        let list = sb.run_on(&data, &["history", "list", "--limit", "400"]);
        if list.code != 0 {
            assert!(
                list.stderr.contains("easel history doctor --repair"),
                "{how}: {list:?}"
            );
        }
        let lost = list.code != 0 || prompts.iter().any(|p| !list.stdout.contains(p));
        let repair = sb.run_on(&data, &["history", "doctor", "--repair"]);
        assert_eq!(repair.code, 0, "{how}: {repair:?}");
        assert!(lost, "{how}: the damage did not show");
        assert!(
            repair.stdout.contains("rebuilt the history") && repair.stdout.contains("recovered 3"),
            "{how}: {repair:?}"
        );
        let list = sb.run_on(&data, &["history", "list", "--limit", "400"]);
        assert_eq!(list.code, 0, "{how}: {list:?}");
        for p in prompts {
            assert!(
                list.stdout.contains(p),
                "{how}: {p} lost: {list:?} after {repair:?}"
            );
        }
        let doctor = sb.run_on(&data, &["history", "doctor"]);
        assert_eq!(doctor.code, 0, "{how}: {doctor:?}");
        {
            let kept = std::fs::read_dir(&data)
                .unwrap()
                .filter_map(|e| e.ok())
                .any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("history.sled.damaged")
                });
            assert!(kept, "{how}: the damaged database was not kept");
        }
    }
}

/// Issue 10 item 8: a repair ends the report of a missing image, and the next doctor is clean.
#[test]
fn repair_ends_the_report_of_a_missing_image() {
    let sb = Sandbox::new();
    let a = stored_with_image(&sb.data, "image removed by hand");
    let b = stored_with_image(&sb.data, "pruned");
    for r in [&a, &b] {
        std::fs::remove_file(sb.data.join(&r.outputs[0].path)).unwrap();
    }
    let doctor = sb.run(&["history", "doctor"]);
    assert_eq!(doctor.code, 1, "{doctor:?}");
    assert!(doctor.stdout.contains("missing file"), "{doctor:?}");
    let repair = sb.run(&["history", "doctor", "--repair"]);
    assert_eq!(repair.code, 0, "{repair:?}");
    let again = sb.run(&["history", "doctor"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(!again.stdout.contains("missing file"), "{again:?}");
    let show = sb.run(&["history", "show", &a.id.to_string(), "--no-preview"]);
    assert_eq!(show.code, 0, "{show:?}");
    assert!(!show.stdout.contains("easel history doctor"), "{show:?}");
    assert!(show.stdout.contains("deleted"), "{show:?}");
    // --prune-missing removes records left without any image.
    let prune = sb.run(&["history", "doctor", "--repair", "--prune-missing"]);
    assert_eq!(prune.code, 0, "{prune:?}");
    let store = SledStore::open(&sb.data).unwrap();
    assert!(store.get(a.id).unwrap().is_none(), "{prune:?}");
    assert!(store.get(b.id).unwrap().is_none(), "{prune:?}");
}

/// Issue 10 item 9: `--limit 0` is a usage error, and every line of `--json` is a record.
#[test]
fn list_limit_zero_is_refused_and_every_json_line_is_a_record() {
    let sb = Sandbox::new();
    {
        let store = SledStore::open(&sb.data).unwrap();
        for i in 0..3 {
            store
                .put(&rec(&format!("record {i}"), Status::Succeeded))
                .unwrap();
        }
    }
    let zero = sb.run(&["history", "list", "--limit", "0"]);
    assert_eq!(zero.code, 64, "{zero:?}");
    assert!(!zero.stderr.contains("no generations yet"), "{zero:?}");
    let page = sb.run(&["history", "list", "--json", "--limit", "2"]);
    assert_eq!(page.code, 0, "{page:?}");
    let lines: Vec<serde_json::Value> = page
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{page:?}");
    assert!(lines.iter().all(|v| v.get("id").is_some()), "{page:?}");
    let cursor = page
        .stderr
        .split_whitespace()
        .skip_while(|w| *w != "--after")
        .nth(1)
        .unwrap_or_else(|| panic!("no cursor on stderr: {page:?}"))
        .to_string();
    let rest = sb.run(&[
        "history", "list", "--json", "--limit", "2", "--after", &cursor,
    ]);
    assert_eq!(rest.code, 0, "{rest:?}");
    assert_eq!(rest.stdout.lines().count(), 1, "{rest:?}");
    assert!(rest.stdout.contains("record 0"), "{rest:?}");
}

/// Issue 10 item 10: imported records list by their `created` time, not by the id's.
#[test]
fn imported_records_list_by_created() {
    let sb = Sandbox::new();
    // Ids made in one order, creation times in the other.
    let base = Utc::now() - ChronoDuration::days(30);
    let mut text = String::new();
    let mut by_created = Vec::new();
    for i in 0..4 {
        let mut r = rec(&format!("made {i}"), Status::Succeeded);
        r.created = base - ChronoDuration::days(i);
        by_created.push(r.prompt.clone());
        text.push_str(&json(&r));
        text.push('\n');
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // A live record, created now: newest of all.
    stored_with_image(&sb.data, "made now");
    let file = sb.home.join("order.jsonl");
    std::fs::write(&file, text).unwrap();
    let run = sb.run(&["history", "import", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let list = sb.run(&["history", "list"]);
    assert_eq!(list.code, 0, "{list:?}");
    let shown: Vec<String> = list
        .stdout
        .lines()
        .map(|l| l.split("made").nth(1).unwrap().trim().to_string())
        .collect();
    assert_eq!(shown, ["now", "0", "1", "2", "3"], "{list:?}");
    // Page by page, through the cursor, the same order.
    let first = sb.run(&["history", "list", "--json", "--limit", "2"]);
    let cursor = first
        .stderr
        .split_whitespace()
        .skip_while(|w| *w != "--after")
        .nth(1)
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_string();
    let second = sb.run(&["history", "list", "--limit", "2", "--after", &cursor]);
    assert!(second.stdout.contains("made 1"), "{second:?}");
    assert!(second.stdout.contains("made 2"), "{second:?}");
}

/// Issue 9 item 8: an import line over the limits is refused with its line number, and the
/// lines around it are imported.
#[test]
fn oversized_import_lines_and_fields_are_refused_with_the_line_number() {
    let sb = Sandbox::new();
    let ok1 = rec("fine", Status::Succeeded);
    let long_prompt = rec(&"p".repeat(32_001), Status::Succeeded);
    let mut long_line = rec("padded", Status::Succeeded);
    long_line.tags = vec!["t".repeat(3_000_000)];
    let mut many_tags = rec("tags", Status::Succeeded);
    many_tags.tags = (0..1000).map(|i| format!("tag{i}")).collect();
    let mut long_model = rec("model", Status::Succeeded);
    long_model.model = "m".repeat(5000);
    let ok2 = rec("also fine", Status::Succeeded);
    let text = [
        &ok1,
        &long_prompt,
        &long_line,
        &many_tags,
        &long_model,
        &ok2,
    ]
    .map(json)
    .join("\n");
    let file = sb.home.join("big.jsonl");
    std::fs::write(&file, text).unwrap();
    let run = sb.run(&["history", "import", file.to_str().unwrap()]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("imported 2, already present 0, refused 4"),
        "{run:?}"
    );
    for n in 2..=5 {
        assert!(
            run.stderr
                .contains(&format!("{}:{n}: refused", file.display())),
            "line {n}: {run:?}"
        );
    }
    assert!(run.stderr.contains("32000"), "{run:?}");
}

/// Issue 9 item 12: an open data folder (755) still gets a private database, lock and images,
/// and a warning about the folder.
#[test]
fn an_open_data_folder_gets_private_files_and_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.quick_demo();
    std::fs::create_dir_all(sb.data.join("images")).unwrap();
    for d in [&sb.data, &sb.data.join("images")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let list = sb.run(&["history", "list"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert!(
        list.stderr.contains("warning") && list.stderr.contains("chmod 700"),
        "{list:?}"
    );
    let saved = sb.generate(&sb.data, "private", &[]);
    let sled_dir = sb.data.join("history.sled");
    assert_eq!(mode_of(&sled_dir), 0o700);
    for e in std::fs::read_dir(&sled_dir).unwrap() {
        let p = e.unwrap().path();
        let m = mode_of(&p);
        assert_eq!(m & 0o077, 0, "{} is {m:o}", p.display());
    }
    assert_eq!(mode_of(&sb.data.join("easel.lock")), 0o600);
    assert_eq!(mode_of(&sb.data.join("images")), 0o700);
    for p in saved {
        assert_eq!(mode_of(p.parent().unwrap()), 0o700);
    }
}

/// Issue 9 item 15: a job left running by a killed process shows as interrupted in the next
/// `history list`, and doctor says its owner is gone.
#[test]
fn a_job_left_running_by_a_dead_process_is_interrupted_by_the_next_command() {
    let sb = Sandbox::new();
    let mut job = rec("was running when killed", Status::Running);
    job.attempts = 1;
    {
        let store = SledStore::open(&sb.data).unwrap();
        store.enqueue(&job, false).unwrap();
    }
    let list = sb.run(&["history", "list"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert!(!list.stdout.contains('▶'), "{list:?}");
    assert!(list.stdout.contains('!'), "{list:?}");
    let store = SledStore::open(&sb.data).unwrap();
    let got = store.get(job.id).unwrap().unwrap();
    assert_eq!(got.status, Status::Interrupted);
    assert!(store.queue().unwrap().is_empty());
    drop(store);

    // Doctor, as the first command after the kill, says so.
    let job2 = rec("second kill", Status::Running);
    {
        let store = SledStore::open(&sb.data).unwrap();
        store.enqueue(&job2, false).unwrap();
    }
    let doctor = sb.run(&["history", "doctor"]);
    assert!(doctor.stdout.contains("process is gone"), "{doctor:?}");
    assert!(doctor.stdout.contains(&job2.id.short()), "{doctor:?}");
}

/// Issue 9 item 16: an export holding `--out` images (absolute paths) imports back: into
/// another folder (the images are copied in) and into the same one.
#[test]
fn an_export_with_out_images_imports_back() {
    let sb = Sandbox::new();
    sb.quick_demo();
    let out = sb.home.join("my pictures");
    let saved = sb.generate(
        &sb.data,
        "kept in my folder",
        &["--out", out.to_str().unwrap()],
    );
    assert_eq!(saved.len(), 1);
    assert!(saved[0].starts_with(&out));
    let file = sb.home.join("export.jsonl");
    let export = sb.run(&["history", "export", "--out", file.to_str().unwrap()]);
    assert_eq!(export.code, 0, "{export:?}");
    let same = sb.run(&["history", "import", file.to_str().unwrap()]);
    assert_eq!(same.code, 0, "{same:?}");
    let other = sb.home.join("other");
    let run = sb.run_on(&other, &["history", "import", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("imported 1, already present 0, refused 0"),
        "{run:?}"
    );
    let store = SledStore::open(&other).unwrap();
    let r = store
        .page(&Query::default(), None, 5)
        .unwrap()
        .records
        .remove(0);
    let path = &r.outputs[0].path;
    assert!(path.starts_with("images"), "{path:?}");
    assert_eq!(
        std::fs::read(other.join(path)).unwrap(),
        std::fs::read(&saved[0]).unwrap()
    );
    assert!(store.doctor(false).unwrap().is_clean());
    // The original stays where it was.
    assert!(saved[0].exists());
    // Removing the `--out` record keeps the user's file, and says so.
    let source_id = r.id.to_string();
    let rm = sb.run(&["history", "rm", "--purge", &source_id]);
    assert_eq!(rm.code, 0, "{rm:?}");
    assert!(rm.stderr.contains("kept"), "{rm:?}");
    assert!(saved[0].exists());
}

/// Records a damaged (but still opening) database lost come back from their images' sidecars:
/// doctor reports them, a repair recovers them, and nothing else changes.
#[test]
fn records_lost_from_an_open_database_come_back_from_the_sidecars() {
    use easel::store::ImageFiles;
    let dir = tempfile::tempdir().unwrap();
    let files = ImageFiles::new(dir.path(), None);
    let mut r = rec("a lost lighthouse", Status::Succeeded);
    r.params.n = 2;
    r.params.size = Some("1024x1536".into());
    r.revised_prompt = Some("a lighthouse, revised".into());
    let png = b"the bytes the server sent".to_vec();
    let image = easel::api::ReceivedImage {
        bytes: bytes::Bytes::from(png),
        info: easel::api::payload::ImageInfo {
            format: "png",
            width: 4,
            height: 3,
        },
        revised_prompt: None,
        source: "b64_json",
    };
    r.outputs = (0..2)
        .map(|i| {
            files
                .save(
                    &r.id,
                    r.created,
                    i,
                    &image,
                    &easel::store::files::sidecar_of(&r),
                )
                .unwrap()
        })
        .collect();
    let kept = rec("never lost", Status::Failed);
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.put(&r).unwrap();
        store.put(&kept).unwrap();
    }
    // The record goes missing, as when sled drops the end of a damaged log.
    {
        let db = sled::open(dir.path().join("history.sled")).unwrap();
        for tree in ["generations", "summaries"] {
            db.open_tree(tree).unwrap().remove(r.id.key()).unwrap();
        }
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let report = store.doctor(false).unwrap();
    assert_eq!(report.recoverable, 1, "{report:?}");
    assert!(!report.is_clean());
    let report = store.doctor(true).unwrap();
    assert_eq!(report.recovered, 1, "{report:?}");
    let back = store.get(r.id).unwrap().unwrap();
    assert_eq!(back.prompt, r.prompt);
    assert_eq!(back.params.size, r.params.size);
    assert_eq!(back.revised_prompt, r.revised_prompt);
    assert_eq!(back.outputs, r.outputs);
    assert_eq!(back.status, Status::Succeeded);
    assert_eq!(store.get(kept.id).unwrap().as_ref(), Some(&kept));
    assert!(store.doctor(false).unwrap().is_clean());
}

/// A tmpfs mounted for one test (needs root and mount rights); unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_path_buf()))
    }

    fn read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Issue 9 item 11: on a full disk and on a read-only mount, `list`, `show`, `stats`, `doctor`
/// and `export` work (from a private copy); commands that write say precisely why not.
#[test]
fn read_only_commands_work_on_a_full_disk_and_a_read_only_mount() {
    let sb = Sandbox::new();
    sb.quick_demo();
    let Some(mount) = Mount::tmpfs(&sb.home.join("small disk"), "8m") else {
        eprintln!("skipped: mounting a tmpfs needs root (the library test below still runs)");
        return;
    };
    let data = mount.0.join("data");
    sb.generate(&data, "kept on a small disk", &[]);
    let id = {
        let store = SledStore::open(&data).unwrap();
        store.page(&Query::default(), None, 1).unwrap().records[0].id
    };
    let id = id.to_string();
    let reads: [&[&str]; 5] = [
        &["history", "list"],
        &["history", "show", &id, "--no-preview"],
        &["history", "stats"],
        &["history", "doctor"],
        &["history", "export"],
    ];
    // On a full disk sled may still open (it had room set aside) or not: either way the
    // command works. On a read-only mount it cannot: a private copy is read.
    let check = |state: &str, copy: bool| {
        for args in reads {
            let run = sb.run_on(&data, args);
            assert_eq!(run.code, 0, "{state}: {args:?}: {run:?}");
            assert!(
                run.stdout.contains("kept on a small disk")
                    || run.stdout.contains("generations")
                    || run.stdout.contains("healthy"),
                "{state}: {args:?}: {run:?}"
            );
            if copy {
                assert!(run.stderr.contains("read-only copy"), "{state}: {run:?}");
            }
        }
    };
    // Fill the disk.
    let fill = mount.0.join("fill");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64"])
        .arg(format!("of={}", fill.display()))
        .stderr(Stdio::null())
        .status();
    check("full disk", false);
    std::fs::remove_file(&fill).unwrap();
    mount.read_only();
    check("read-only mount", true);
    let rm = sb.run_on(&data, &["history", "rm", &id]);
    assert_ne!(rm.code, 0, "{rm:?}");
    assert!(rm.stderr.contains("read-only"), "{rm:?}");
    let repair = sb.run_on(&data, &["history", "doctor", "--repair"]);
    assert_ne!(repair.code, 0, "{repair:?}");
    assert!(repair.stderr.contains("read-only"), "{repair:?}");
}

/// The read-only copy leaves the data folder byte for byte as it was, and still notices a
/// running easel.
#[test]
fn a_read_only_open_changes_nothing_and_respects_a_running_easel() {
    let dir = tempfile::tempdir().unwrap();
    let r = rec("read from a copy", Status::Succeeded);
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.put(&r).unwrap();
    }
    let snapshot = |root: &Path| {
        let mut files = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        files.sort();
        files
    };
    let before = snapshot(dir.path());
    {
        let store = SledStore::open_read_only(dir.path()).unwrap();
        assert_eq!(store.get(r.id).unwrap().unwrap().prompt, "read from a copy");
        assert!(
            store
                .warnings()
                .iter()
                .any(|w| w.contains("read-only copy"))
        );
        store
            .put(&rec("dropped with the copy", Status::Failed))
            .unwrap();
    }
    assert_eq!(snapshot(dir.path()), before);
    let _writer = SledStore::open(dir.path()).unwrap();
    let Err(easel::store::StoreError::Locked(msg)) = SledStore::open_read_only(dir.path()) else {
        panic!("a read-only open ignored the running easel");
    };
    assert!(msg.contains("another easel is using"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Ratings, tags and notes (issue 13)
// ---------------------------------------------------------------------------------------------

#[test]
fn ratings_tags_and_notes_from_the_command_line() {
    let sb = Sandbox::new();
    let (a, b, c) = (
        rec("a misty harbour", Status::Succeeded),
        rec("a red kite", Status::Succeeded),
        rec("a quiet street", Status::Succeeded),
    );
    {
        let store = SledStore::open(&sb.data).unwrap();
        for r in [&a, &b, &c] {
            store.put(r).unwrap();
        }
    }
    let (ia, ib) = (a.id.to_string(), b.id.to_string());
    let ok = |args: &[&str]| {
        let run = sb.run(args);
        assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
        run
    };
    ok(&["history", "rate", &ia, &ib, "4"]);
    ok(&["history", "rate", &ib, "5"]);
    ok(&["history", "tag", &ia, "+keep", "+sea"]);
    ok(&["history", "tag", &ia, &ib, "+keep", "-sea"]);
    ok(&["history", "note", &ia, "the best of the evening"]);
    // Refused with a usage message: a rating out of range, tags without + or -.
    let bad = sb.run(&["history", "rate", &ia, "9"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("0 (not rated) to 5"), "{}", bad.stderr);
    let bad = sb.run(&["history", "tag", &ia]);
    assert_ne!(bad.code, 0);

    let list = ok(&["history", "list", "--sort", "rating"]);
    let order: Vec<&str> = list
        .stdout
        .lines()
        .map(|l| {
            ["misty", "kite", "street"]
                .into_iter()
                .find(|w| l.contains(w))
                .unwrap_or("?")
        })
        .collect();
    assert_eq!(order, ["kite", "misty", "street"], "{}", list.stdout);
    let four = ok(&["history", "list", "--min-rating", "4", "--tag", "keep"]);
    assert_eq!(four.stdout.lines().count(), 2, "{}", four.stdout);
    let tags = ok(&["history", "tags"]);
    assert!(
        tags.stdout.contains("2  keep") && !tags.stdout.contains("sea"),
        "{}",
        tags.stdout
    );
    let show = ok(&["history", "show", &ia]);
    assert!(show.stdout.contains("★★★★☆ (4/5)"), "{}", show.stdout);
    assert!(
        show.stdout.contains("tags           keep"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("the best of the evening"),
        "{}",
        show.stdout
    );
    // Exported and imported with the rest.
    let file = sb.data.parent().unwrap().join("export.jsonl");
    ok(&["history", "export", "--out", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("\"rating\":4") && text.contains("the best of the evening"),
        "{text}"
    );
}

/// Delete moves to the trash: the record leaves history, its files stay; restore brings it
/// back whole; empty-trash deletes for good; doctor counts trashed files as owned.
#[test]
fn the_trash_keeps_deleted_records_until_emptied() {
    use easel::store::ImageFiles;
    let sb = Sandbox::new();
    let files = ImageFiles::new(&sb.data, None);
    let mut r = rec("a lantern on a pier", Status::Succeeded);
    let png = {
        let img = image::RgbImage::from_pixel(4, 4, image::Rgb([9, 9, 9]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let received = easel::api::ReceivedImage {
        info: easel::api::payload::verify_image(&png).unwrap(),
        bytes: png.into(),
        revised_prompt: None,
        source: "test",
    };
    let saved = files
        .save(&r.id, r.created, 0, &received, &serde_json::json!({}))
        .unwrap();
    r.outputs = vec![saved.clone()];
    SledStore::open(&sb.data).unwrap().put(&r).unwrap();
    let image = sb.data.join(&saved.path);
    let id = r.id.to_string();

    let rm = sb.run(&["history", "rm", &id]);
    assert_eq!(rm.code, 0, "{rm:?}");
    assert!(rm.stdout.contains("to the trash"), "{rm:?}");
    assert!(
        image.exists(),
        "the file goes only when the trash is emptied"
    );
    assert!(!sb.run(&["history", "list"]).stdout.contains("lantern"));
    let trash = sb.run(&["history", "trash"]);
    assert!(trash.stdout.contains("a lantern on a pier"), "{trash:?}");
    let doctor = sb.run(&["history", "doctor"]);
    assert_eq!(doctor.code, 0, "trashed files are owned: {doctor:?}");

    let back = sb.run(&["history", "restore", &id[..8]]);
    assert_eq!(back.code, 0, "{back:?}");
    assert!(sb.run(&["history", "list"]).stdout.contains("lantern"));
    let unknown = sb.run(&["history", "restore", "ffffffff"]);
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("not in the trash"), "{unknown:?}");

    assert_eq!(sb.run(&["history", "rm", "--yes", &id]).code, 0);
    let keep = sb.run(&["history", "empty-trash", "--older-than", "30d"]);
    assert!(keep.stdout.contains("deleted 0"), "{keep:?}");
    assert!(image.exists());
    let empty = sb.run(&["history", "empty-trash"]);
    assert!(empty.stdout.contains("deleted 1"), "{empty:?}");
    assert!(!image.exists() && !image.with_extension("json").exists());
    assert!(sb.run(&["history", "trash"]).stderr.contains("empty"));
}

// ---------------------------------------------------------------------------------------------
// Lineage (issue 12)
// ---------------------------------------------------------------------------------------------

/// Parents and their roles survive export and import, a deleted parent leaves its children as
/// they were, and a record written before lineage reads with none.
#[test]
fn lineage_survives_export_import_and_a_deleted_parent() {
    use easel::api::InputImage;
    use easel::store::record::{Parent, ParentRole};
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let parent = rec("a harbour", Status::Succeeded);
    let reference = rec("a style", Status::Succeeded);
    let params = GenerationParams {
        prompt: "the harbour in fog".into(),
        images: vec![
            InputImage {
                path: "/x/harbour.png".into(),
                record: Some(parent.id.to_string()),
                index: Some(1),
            },
            InputImage {
                path: "/x/style.png".into(),
                record: Some(reference.id.to_string()),
                index: Some(1),
            },
        ],
        mask: Some(InputImage {
            path: "/x/mask.png".into(),
            record: Some(parent.id.to_string()),
            index: Some(1),
        }),
        ..Default::default()
    };
    let mut child = GenerationRecord::queued(Id::new(), params, "demo", true, Utc::now());
    child.status = Status::Succeeded;
    let want = vec![
        Parent {
            id: parent.id,
            role: ParentRole::Edited,
        },
        Parent {
            id: reference.id,
            role: ParentRole::Reference,
        },
        Parent {
            id: parent.id,
            role: ParentRole::MaskSource,
        },
    ];
    assert_eq!(child.parents, want);
    let mut rerun = rec("a harbour", Status::Succeeded);
    rerun.parent_id = Some(parent.id);
    assert_eq!(
        rerun.lineage(),
        vec![Parent {
            id: parent.id,
            role: ParentRole::RerunOf
        }]
    );

    let source = SledStore::open(a.path()).unwrap();
    for r in [&parent, &reference, &child, &rerun] {
        source.put(r).unwrap();
    }
    let mut buf = Vec::new();
    transfer::export(&source, &mut buf).unwrap();
    let dest = SledStore::open(b.path()).unwrap();
    let report = transfer::import(&dest, b.path(), &mut buf.as_slice()).unwrap();
    assert_eq!(report.imported, 4, "{report:?}");
    let back = dest.get(child.id).unwrap().unwrap();
    assert_eq!(back.parents, want);
    assert_eq!(back.params.images, child.params.images);
    assert_eq!(
        dest.get(rerun.id).unwrap().unwrap().lineage(),
        rerun.lineage()
    );

    // Deleting the parent keeps the children and what they were made from.
    dest.delete(parent.id).unwrap();
    let back = dest.get(child.id).unwrap().unwrap();
    assert_eq!(back.parents, want);
    assert!(back.has_parent(parent.id));

    // A record written before lineage (no "parents" key) reads with none.
    let mut old = serde_json::to_value(&parent).unwrap();
    old.as_object_mut().unwrap().remove("parents");
    let line = serde_json::to_vec(&serde_json::json!({ "v": 1, "record": old })).unwrap();
    let read = easel::store::record::decode(&line).unwrap();
    assert!(read.parents.is_empty());
    assert_eq!(read, parent);
}
