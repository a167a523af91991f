//! The single-writer rule as a property (issue 11): random interleavings of star, rating, tags,
//! notes, delete, restore, cancel and job transitions (jobs start, stream and end while the
//! changes arrive) against a model of what the user did. Whatever the order, the store ends
//! with exactly the user's last change of every field, nothing deleted comes back by itself,
//! and every job ends.
//!
//! Jobs run on the demo backend on tokio's paused clock, so their latencies interleave with the
//! changes without costing real time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use easel::api::{GenerationParams, ProviderRules};
use easel::backend::demo::DemoBackend;
use easel::catalog::Catalog;
use easel::queue::{ProviderSlot, Scheduler, SchedulerConfig, Submission};
use easel::store::{HistoryStore, Id, ImageFiles, SledStore, Status, UserEdit};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    Submit {
        latency_ms: u64,
    },
    Star(usize, bool),
    Rate(usize, u8),
    Tag(usize, u8),
    Untag(usize, u8),
    Note(usize, u8),
    Delete(usize),
    Restore(usize),
    Cancel(usize),
    /// Let time pass: jobs start, stream, end.
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (50u64..400).prop_map(|latency_ms| Op::Submit { latency_ms }),
        2 => (0usize..6, any::<bool>()).prop_map(|(i, b)| Op::Star(i, b)),
        2 => (0usize..6, 0u8..=5).prop_map(|(i, r)| Op::Rate(i, r)),
        2 => (0usize..6, 0u8..3).prop_map(|(i, t)| Op::Tag(i, t)),
        1 => (0usize..6, 0u8..3).prop_map(|(i, t)| Op::Untag(i, t)),
        1 => (0usize..6, 0u8..3).prop_map(|(i, n)| Op::Note(i, n)),
        1 => (0usize..6).prop_map(Op::Delete),
        1 => (0usize..6).prop_map(Op::Restore),
        1 => (0usize..6).prop_map(Op::Cancel),
        3 => (0u64..300).prop_map(Op::Wait),
    ]
}

/// What the user did to one record.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    starred: bool,
    rating: u8,
    tags: Vec<String>,
    notes: String,
    deleted: bool,
}

fn run(ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Arc::new(SledStore::open(&data).unwrap());
        let dyn_store: Arc<dyn HistoryStore> = store.clone();
        let mut providers = HashMap::new();
        // One slot per latency is not needed: the demo's latency is per backend, so jobs of
        // different lengths use two providers.
        for (name, ms) in [("fast", 60u64), ("slow", 350)] {
            providers.insert(
                name.to_string(),
                ProviderSlot {
                    backend: Arc::new(DemoBackend::new(Duration::from_millis(ms), 2)),
                    rules: ProviderRules::default(),
                    limit: 2,
                },
            );
        }
        let (handle, mut events) = Scheduler::start(
            dyn_store,
            Arc::new(Catalog::builtin()),
            ImageFiles::new(&data, None),
            providers,
            SchedulerConfig {
                concurrency: 3,
                resume_queue: false,
            },
        )
        .await
        .unwrap();
        // Events are drained as they come (the studio would show them).
        let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });

        let mut ids: Vec<Id> = Vec::new();
        let mut model: HashMap<Id, Model> = HashMap::new();
        let pick = |ids: &[Id], i: usize| (!ids.is_empty()).then(|| ids[i % ids.len()]);
        for op in ops {
            match op {
                Op::Submit { latency_ms } => {
                    let s = Submission {
                        params: GenerationParams {
                            prompt: format!("job {}", ids.len()),
                            size: Some("64x64".into()),
                            ..Default::default()
                        },
                        provider: if latency_ms < 200 { "fast" } else { "slow" }.into(),
                        front: false,
                        parent: None,
                        run: None,
                    };
                    let id = handle.submit(s).await.unwrap();
                    ids.push(id);
                    model.insert(id, Model::default());
                }
                Op::Star(i, on) => {
                    let Some(id) = pick(&ids, i) else { continue };
                    let m = model.get_mut(&id).unwrap();
                    let r = handle.star(id, on).await;
                    if m.deleted {
                        assert!(r.is_err(), "starring a deleted record succeeded: {r:?}");
                    } else {
                        m.starred = r.unwrap().starred;
                        assert_eq!(m.starred, on);
                    }
                }
                Op::Rate(i, n) => {
                    let Some(id) = pick(&ids, i) else { continue };
                    let m = model.get_mut(&id).unwrap();
                    let r = handle.edit(id, UserEdit::Rating(n)).await;
                    if !m.deleted {
                        assert_eq!(r.unwrap().rating, n);
                        m.rating = n;
                    }
                }
                Op::Tag(i, t) | Op::Untag(i, t) => {
                    let Some(id) = pick(&ids, i) else { continue };
                    let add = matches!(op, Op::Tag(..));
                    let tag = format!("t{t}");
                    let edit = if add {
                        UserEdit::Retag {
                            add: vec![tag.clone()],
                            remove: vec![],
                        }
                    } else {
                        UserEdit::Retag {
                            add: vec![],
                            remove: vec![tag.clone()],
                        }
                    };
                    let m = model.get_mut(&id).unwrap();
                    let r = handle.edit(id, edit).await;
                    if !m.deleted {
                        r.unwrap();
                        if add {
                            if !m.tags.contains(&tag) {
                                m.tags.push(tag);
                                m.tags.sort();
                            }
                        } else {
                            m.tags.retain(|x| *x != tag);
                        }
                    }
                }
                Op::Note(i, n) => {
                    let Some(id) = pick(&ids, i) else { continue };
                    let m = model.get_mut(&id).unwrap();
                    let text = format!("note {n}");
                    let r = handle.edit(id, UserEdit::Notes(text.clone())).await;
                    if !m.deleted {
                        r.unwrap();
                        m.notes = text;
                    }
                }
                Op::Delete(i) => {
                    let Some(id) = pick(&ids, i) else { continue };
                    let m = model.get_mut(&id).unwrap();
                    let r = handle.delete(id).await;
                    if !m.deleted {
                        r.unwrap();
                        m.deleted = true;
                    }
                }
                Op::Restore(i) => {
                    let Some(id) = pick(&ids, i) else { continue };
                    let m = model.get_mut(&id).unwrap();
                    let r = handle.restore(id).await;
                    if m.deleted {
                        let back = r.unwrap();
                        m.deleted = false;
                        // What the user had set comes back with it.
                        assert_eq!(back.starred, m.starred, "{id}");
                        assert_eq!(back.rating, m.rating, "{id}");
                    } else {
                        assert!(r.is_err(), "restored a record that was not deleted");
                    }
                }
                Op::Cancel(i) => {
                    let Some(id) = pick(&ids, i) else { continue };
                    handle.cancel(id);
                }
                Op::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            }
        }
        // Let every job end (the slow ones take 350 ms each, at most 3 at once).
        for _ in 0..200 {
            let c = handle.counts().await;
            if c.running == 0 && c.queued == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let c = handle.counts().await;
        assert_eq!((c.running, c.queued), (0, 0), "jobs never ended");
        handle.shutdown().await;
        drain.abort();

        for (id, m) in &model {
            let stored = store.get(*id).unwrap();
            if m.deleted {
                assert!(
                    stored.is_none(),
                    "{id} was deleted but came back: {stored:?}"
                );
                continue;
            }
            let r = stored.unwrap_or_else(|| panic!("{id} is gone but was never deleted"));
            assert!(
                matches!(
                    r.status,
                    Status::Succeeded | Status::Cancelled | Status::Failed
                ),
                "{id} did not end: {:?}",
                r.status
            );
            assert_eq!(r.starred, m.starred, "star of {id} lost");
            assert_eq!(r.rating, m.rating, "rating of {id} lost");
            assert_eq!(r.tags, m.tags, "tags of {id} lost");
            assert_eq!(r.notes, m.notes, "notes of {id} lost");
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn the_users_last_change_wins_and_nothing_deleted_comes_back(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        run(ops);
    }
}

/// The case that lost stars before the scheduler became the one writer: a star while the job
/// runs, then the job ends.
#[test]
fn a_star_on_a_running_job_survives_its_end() {
    run(vec![
        Op::Submit { latency_ms: 300 },
        Op::Wait(10),
        Op::Star(0, true),
        Op::Rate(0, 4),
        Op::Tag(0, 1),
        Op::Wait(1000),
    ]);
}

/// Deleting a running job cancels it; its end never brings it back.
#[test]
fn a_running_job_deleted_stays_deleted() {
    run(vec![
        Op::Submit { latency_ms: 300 },
        Op::Wait(20),
        Op::Delete(0),
        Op::Wait(1000),
    ]);
}
