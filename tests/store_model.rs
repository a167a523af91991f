//! A model-based property test of the history store: random sequences of store operations are
//! applied both to a real `SledStore` (reopened on the same folder now and then) and to a plain
//! in-memory model that follows the documented rules, and after every step the two must agree.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use easel::api::GenerationParams;
use easel::store::{
    Cursor, GenerationRecord, HistoryStore, Id, Query, QueueMove, SledStore, Status, StoreError,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};
use std::collections::BTreeMap;
use std::path::Path;

/// Words prompts are made of. The plain ASCII ones are also used as text queries.
const WORDS: &[&str] = &[
    "lighthouse",
    "fox",
    "storm",
    "dusk",
    "harbor",
    "Lantern",
    "moss",
    "夜晚的海边小镇",
    "海边",
    "🦊",
    "🌊✨",
    "красный",
    "café",
    "a",
];

const MODELS: &[&str] = &["gpt-image-2", "dall-e-3", "gpt-image-1-mini"];

const PAGE: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    /// Put a brand-new record.
    PutNew {
        prompt: String,
        model: usize,
        status: Status,
        starred: bool,
    },
    /// Put a changed version of an existing record (or of a deleted one: it comes back).
    PutUpdate {
        pick: usize,
        status: Option<Status>,
        starred: Option<bool>,
        prompt: Option<String>,
    },
    /// Enqueue a new queued record, or re-queue an existing one (as a retry does).
    Enqueue {
        existing: Option<usize>,
        prompt: String,
        front: bool,
    },
    Move {
        pick: usize,
        how: QueueMove,
    },
    SetStarred {
        pick: usize,
        starred: bool,
    },
    SetTags {
        pick: usize,
        tags: Vec<String>,
    },
    Delete {
        pick: usize,
    },
    Reopen,
}

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

fn prompt() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(prop::sample::select(WORDS.to_vec()), 1..5).prop_map(|w| w.join(" ")),
        1 => "\\PC{1,24}",
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let how = prop::sample::select(vec![QueueMove::Up, QueueMove::Down, QueueMove::Front]);
    prop_oneof![
        6 => (prompt(), 0..MODELS.len(), status(), any::<bool>())
            .prop_map(|(prompt, model, status, starred)| Op::PutNew { prompt, model, status, starred }),
        4 => (any::<usize>(), prop::option::of(status()), prop::option::of(any::<bool>()), prop::option::of(prompt()))
            .prop_map(|(pick, status, starred, prompt)| Op::PutUpdate { pick, status, starred, prompt }),
        4 => (prop::option::of(any::<usize>()), prompt(), any::<bool>())
            .prop_map(|(existing, prompt, front)| Op::Enqueue { existing, prompt, front }),
        4 => (any::<usize>(), how).prop_map(|(pick, how)| Op::Move { pick, how }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, starred)| Op::SetStarred { pick, starred }),
        1 => (any::<usize>(), prop::collection::vec("[a-z]{1,6}|标签", 0..3)).prop_map(|(pick, tags)| Op::SetTags { pick, tags }),
        2 => any::<usize>().prop_map(|pick| Op::Delete { pick }),
        1 => Just(Op::Reopen),
    ]
}

/// What the store should hold.
#[derive(Default)]
struct Model {
    records: BTreeMap<Id, GenerationRecord>,
    queue: Vec<Id>,
    /// Ids deleted so far: operations on them must behave as on unknown ids.
    gone: Vec<Id>,
}

impl Model {
    fn put(&mut self, r: GenerationRecord) {
        let active = matches!(r.status, Status::Queued | Status::Running);
        let in_queue = self.queue.contains(&r.id);
        if active && !in_queue {
            self.queue.push(r.id);
        } else if !active && in_queue {
            self.queue.retain(|x| *x != r.id);
        }
        self.records.insert(r.id, r);
    }

    fn enqueue(&mut self, r: GenerationRecord, front: bool) {
        self.queue.retain(|x| *x != r.id);
        if front {
            self.queue.insert(0, r.id);
        } else {
            self.queue.push(r.id);
        }
        self.records.insert(r.id, r);
    }

    fn move_in_queue(&mut self, id: Id, how: QueueMove) -> bool {
        let Some(at) = self.queue.iter().position(|x| *x == id) else {
            return false;
        };
        match how {
            QueueMove::Up if at > 0 => self.queue.swap(at, at - 1),
            QueueMove::Down if at + 1 < self.queue.len() => self.queue.swap(at, at + 1),
            QueueMove::Front if at > 0 => {
                let id = self.queue.remove(at);
                self.queue.insert(0, id);
            }
            _ => return false,
        }
        true
    }

    /// An id to act on: mostly a live one, now and then a deleted one.
    fn pick(&self, n: usize) -> Option<Id> {
        let live: Vec<Id> = self.records.keys().copied().collect();
        let total = live.len() + self.gone.len();
        if total == 0 {
            return None;
        }
        let i = n % total;
        Some(if i < live.len() {
            live[i]
        } else {
            self.gone[i - live.len()]
        })
    }

    /// The rule on opening: jobs found running belong to a process that is gone (it held the
    /// lock), so they become interrupted and leave the queue. The store stamps the time.
    fn reopened(&mut self, store: &SledStore) -> Result<(), TestCaseError> {
        let running: Vec<Id> = self
            .records
            .values()
            .filter(|r| r.status == Status::Running)
            .map(|r| r.id)
            .collect();
        let mut orphaned = store.orphaned();
        orphaned.sort();
        prop_assert_eq!(&orphaned, &running, "jobs marked interrupted at open");
        for id in running {
            let got = store.get(id).map_err(store_err)?;
            let got = got.ok_or_else(|| TestCaseError::fail(format!("{id} lost at reopen")))?;
            prop_assert_eq!(got.status, Status::Interrupted);
            prop_assert!(got.finished.is_some() && got.error.is_some());
            self.queue.retain(|x| *x != id);
            self.records.insert(id, got);
        }
        Ok(())
    }

    /// Records as history lists them: newest `created` first (ids break ties). A deleted
    /// record written again keeps its id but not its time, so this is not key order.
    fn newest_first(&self) -> Vec<&GenerationRecord> {
        let mut all: Vec<&GenerationRecord> = self.records.values().collect();
        all.sort_by_key(|r| std::cmp::Reverse((r.created.timestamp_millis(), r.id)));
        all
    }

    fn pick_live(&self, n: usize) -> Option<Id> {
        let live: Vec<Id> = self.records.keys().copied().collect();
        (!live.is_empty()).then(|| live[n % live.len()])
    }
}

fn new_record(prompt: &str, model: &str, status: Status, starred: bool) -> GenerationRecord {
    let params = GenerationParams {
        prompt: prompt.into(),
        model: model.into(),
        ..Default::default()
    };
    let mut r = GenerationRecord::queued(Id::new(), params, "demo", true, Utc::now());
    r.status = status;
    r.starred = starred;
    r
}

fn store_err(e: StoreError) -> TestCaseError {
    TestCaseError::fail(format!("store error: {e}"))
}

/// Walk every page of `q` from the start; returns the ids in the order shown.
fn walk(store: &SledStore, q: &Query) -> Result<Vec<Id>, TestCaseError> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..1000 {
        let page = store.page(q, cursor, PAGE).map_err(store_err)?;
        prop_assert!(
            page.records.len() <= PAGE,
            "a page of {} records for a limit of {PAGE}",
            page.records.len()
        );
        out.extend(page.records.iter().map(|r| r.id));
        match page.next {
            Some(next) => {
                prop_assert!(
                    !page.records.is_empty(),
                    "an empty page that says there is more"
                );
                cursor = Some(next);
            }
            None => return Ok(out),
        }
    }
    Err(TestCaseError::fail("paging never ended"))
}

fn check_everything_paged(
    store: &SledStore,
    model: &Model,
    when: &str,
) -> Result<(), TestCaseError> {
    let paged = walk(store, &Query::default())?;
    let expected: Vec<Id> = model.newest_first().iter().map(|r| r.id).collect();
    prop_assert_eq!(paged, expected, "newest-first paging ({})", when);
    Ok(())
}

fn check(store: &SledStore, model: &Model, step: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(store.len(), model.records.len(), "len after {}", step);
    for (id, want) in &model.records {
        let got = store.get(*id).map_err(store_err)?;
        prop_assert_eq!(got.as_ref(), Some(want), "get({}) after {}", id, step);
    }
    for id in &model.gone {
        prop_assert_eq!(
            store.get(*id).map_err(store_err)?,
            None,
            "deleted {} is back after {}",
            id,
            step
        );
    }
    // Paging before anything loads the index (right after a reopen: the raw scan) ...
    check_everything_paged(store, model, step)?;

    // ... counts by filter (these load the index) ...
    prop_assert_eq!(
        store.count(&Query::default()).map_err(store_err)?,
        model.records.len()
    );
    for s in [Status::Queued, Status::Succeeded, Status::Failed] {
        let q = Query {
            status: Some(s),
            ..Default::default()
        };
        let want = model.records.values().filter(|r| r.status == s).count();
        prop_assert_eq!(
            store.count(&q).map_err(store_err)?,
            want,
            "count of {} after {}",
            s,
            step
        );
    }
    let starred = Query {
        starred: true,
        ..Default::default()
    };
    let want = model.records.values().filter(|r| r.starred).count();
    prop_assert_eq!(
        store.count(&starred).map_err(store_err)?,
        want,
        "count of starred after {}",
        step
    );
    let q = Query {
        model: Some(MODELS[1].into()),
        status: Some(Status::Succeeded),
        ..Default::default()
    };
    let want = model
        .records
        .values()
        .filter(|r| r.model == MODELS[1] && r.status == Status::Succeeded)
        .count();
    prop_assert_eq!(
        store.count(&q).map_err(store_err)?,
        want,
        "count of a model and status after {}",
        step
    );

    // ... and paging again, now through the index, filtered too.
    check_everything_paged(store, model, step)?;
    let q = Query {
        model: Some(MODELS[0].into()),
        ..Default::default()
    };
    let want: Vec<Id> = model
        .newest_first()
        .into_iter()
        .filter(|r| r.model == MODELS[0])
        .map(|r| r.id)
        .collect();
    prop_assert_eq!(walk(store, &q)?, want, "paging one model after {}", step);

    let queue: Vec<Id> = store
        .queue()
        .map_err(store_err)?
        .iter()
        .map(|r| r.id)
        .collect();
    prop_assert_eq!(&queue, &model.queue, "queue order after {}", step);

    // Fuzzy text: every record containing a plain word verbatim must be found; nothing else
    // than live records may be.
    for word in WORDS
        .iter()
        .filter(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_alphabetic()))
    {
        let containing: Vec<Id> = model
            .records
            .values()
            .filter(|r| r.prompt.contains(word))
            .map(|r| r.id)
            .collect();
        if containing.is_empty() {
            continue;
        }
        let q = Query {
            text: Some((*word).to_string()),
            ..Default::default()
        };
        let found = walk(store, &q)?;
        let mut dedup = found.clone();
        dedup.sort();
        dedup.dedup();
        prop_assert_eq!(
            dedup.len(),
            found.len(),
            "a text search for {:?} showed a record twice",
            word
        );
        for id in &containing {
            prop_assert!(
                found.contains(id),
                "a text search for {:?} missed {} after {}",
                word,
                id,
                step
            );
        }
        for id in &found {
            prop_assert!(
                model.records.contains_key(id),
                "a text search for {:?} showed {}, which is not in history",
                word,
                id
            );
        }
        prop_assert_eq!(
            store.count(&q).map_err(store_err)?,
            found.len(),
            "count of {:?} after {}",
            word,
            step
        );
    }
    Ok(())
}

fn apply(store: &SledStore, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match op.clone() {
        Op::PutNew {
            prompt,
            model: m,
            status,
            starred,
        } => {
            let r = new_record(&prompt, MODELS[m], status, starred);
            store.put(&r).map_err(store_err)?;
            model.put(r);
        }
        Op::PutUpdate {
            pick,
            status,
            starred,
            prompt,
        } => {
            let Some(id) = model.pick(pick) else {
                return Ok(());
            };
            let mut r = match model.records.get(&id) {
                Some(r) => r.clone(),
                // A deleted record written again (an import would do this).
                None => {
                    model.gone.retain(|x| *x != id);
                    let mut r = new_record("back again", MODELS[0], Status::Succeeded, false);
                    r.id = id;
                    r
                }
            };
            if let Some(s) = status {
                r.status = s;
            }
            if let Some(s) = starred {
                r.starred = s;
            }
            if let Some(p) = prompt {
                r.prompt = p.clone();
                r.params.prompt = p;
            }
            r.attempts += 1;
            store.put(&r).map_err(store_err)?;
            model.put(r);
        }
        Op::Enqueue {
            existing,
            prompt,
            front,
        } => {
            let mut r = match existing.and_then(|n| model.pick_live(n)) {
                Some(id) => model.records[&id].clone(),
                None => new_record(&prompt, MODELS[1], Status::Queued, false),
            };
            r.status = Status::Queued;
            r.error = None;
            store.enqueue(&r, front).map_err(store_err)?;
            model.enqueue(r, front);
        }
        Op::Move { pick, how } => {
            // Mostly something in the queue, so that moves do something.
            let id = if model.queue.is_empty() || pick % 5 == 0 {
                model.pick(pick)
            } else {
                Some(model.queue[pick % model.queue.len()])
            };
            let Some(id) = id else { return Ok(()) };
            let moved = store.move_in_queue(id, how).map_err(store_err)?;
            let want = model.move_in_queue(id, how);
            prop_assert_eq!(
                moved,
                want,
                "move_in_queue({}, {:?}) said {}",
                id,
                how,
                moved
            );
        }
        Op::SetStarred { pick, starred } => {
            let Some(id) = model.pick(pick) else {
                return Ok(());
            };
            match model.records.get_mut(&id) {
                Some(want) => {
                    want.starred = starred;
                    let got = store.set_starred(id, starred).map_err(store_err)?;
                    prop_assert_eq!(&got, &*want);
                }
                None => {
                    let e = store.set_starred(id, starred);
                    prop_assert!(
                        matches!(e, Err(StoreError::NotFound(_))),
                        "set_starred of a deleted id: {:?}",
                        e
                    );
                }
            }
        }
        Op::SetTags { pick, tags } => {
            let Some(id) = model.pick(pick) else {
                return Ok(());
            };
            match model.records.get_mut(&id) {
                Some(want) => {
                    want.tags = tags.clone();
                    let got = store.set_tags(id, tags).map_err(store_err)?;
                    prop_assert_eq!(&got, &*want);
                }
                None => {
                    let e = store.set_tags(id, tags);
                    prop_assert!(
                        matches!(e, Err(StoreError::NotFound(_))),
                        "set_tags of a deleted id: {:?}",
                        e
                    );
                }
            }
        }
        Op::Delete { pick } => {
            let Some(id) = model.pick(pick) else {
                return Ok(());
            };
            let old = store.delete(id).map_err(store_err)?;
            let want = model.records.remove(&id);
            model.queue.retain(|x| *x != id);
            if want.is_some() {
                model.gone.push(id);
            }
            prop_assert_eq!(old, want, "delete({}) returned", id);
        }
        // Done by the caller, which owns the store.
        Op::Reopen => {}
    }
    Ok(())
}

/// Close the store (lock released, database dropped) and open it again on the same folder.
fn reopen(store: SledStore, dir: &Path) -> Result<SledStore, TestCaseError> {
    drop(store);
    let store = SledStore::open(dir).map_err(store_err)?;
    prop_assert!(
        store.skipped().is_empty(),
        "records skipped after a reopen: {:?}",
        store.skipped()
    );
    Ok(store)
}

proptest! {
    #![proptest_config(Config { cases: 64, max_shrink_iters: 400, ..Config::default() })]

    #[test]
    fn store_agrees_with_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        let mut model = Model::default();
        check(&store, &model, "opening")?;
        for (i, op) in ops.iter().enumerate() {
            if let Op::Reopen = op {
                store = reopen(store, dir.path())?;
                model.reopened(&store)?;
            } else {
                apply(&store, &mut model, op)?;
            }
            check(&store, &model, &format!("step {i}: {op:?}"))?;
        }
        // A last reopen: everything must have been on disk.
        store = reopen(store, dir.path())?;
        model.reopened(&store)?;
        check(&store, &model, "the final reopen")?;
        prop_assert!(store.doctor(false).map_err(store_err)?.is_clean(), "doctor found problems at the end");
    }
}
