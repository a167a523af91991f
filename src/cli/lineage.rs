//! A record's lineage as `easel history show` prints it: its parents with their roles (and
//! whether each is still in history), and the records made from it.

use crate::sanitize;
use crate::store::query::Query;
use crate::store::record::{GenerationRecord, ParentRole};
use crate::store::{HistoryStore, Id};

/// How many of the newest records are searched for children.
const CHILDREN_SCAN: usize = 20_000;

/// One line about a related record: short id, role, and the start of its prompt.
fn describe(store: &dyn HistoryStore, id: Id, role: &str) -> String {
    match store.get(id) {
        Ok(Some(r)) => format!("{}  {role}  {}", id.short(), prompt_of(&r)),
        _ => format!("{}  {role}  (parent deleted)", id.short()),
    }
}

/// The lines to print: ("parent", text) and ("child", text) pairs.
pub fn lines(store: &dyn HistoryStore, r: &GenerationRecord) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for p in r.lineage() {
        out.push(("parent", describe(store, p.id, p.role.as_str())));
    }
    if let Ok(page) = store.page(&Query::default(), None, CHILDREN_SCAN) {
        for child in page.records.iter().filter(|c| c.has_parent(r.id)) {
            let role = child
                .lineage()
                .into_iter()
                .find(|p| p.id == r.id)
                .map_or(ParentRole::RerunOf, |p| p.role);
            let what = match role {
                ParentRole::Edited => "edit of this",
                ParentRole::Reference => "uses this as a reference",
                ParentRole::MaskSource => "uses this as its mask",
                ParentRole::VariationOf => "variation of this",
                ParentRole::RerunOf => "rerun of this",
                ParentRole::ReusedFrom => "reuses this",
            };
            out.push((
                "child",
                format!("{}  {what}  {}", child.id.short(), prompt_of(child)),
            ));
        }
    }
    out
}

/// Deepest a tree is drawn, either way (a longer chain is cut with "…").
const TREE_DEPTH: usize = 32;

/// The start of a record's prompt, for one line (a variation has none).
fn prompt_of(r: &GenerationRecord) -> String {
    if r.prompt.trim().is_empty() {
        "(no prompt)".to_string()
    } else {
        sanitize::truncate(&sanitize::line(&r.prompt), 60).into_owned()
    }
}

/// One node of `easel history tree`: short id, role, date, start of the prompt.
fn node_line(r: Option<&GenerationRecord>, id: Id, role: Option<&str>) -> String {
    let role = role.map(|r| format!("({r})  ")).unwrap_or_default();
    match r {
        Some(r) => format!(
            "{}  {role}{}  {}",
            id.short(),
            r.created
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M"),
            prompt_of(r)
        ),
        None => format!("{}  {role}(deleted)", id.short()),
    }
}

/// The records related to one, and how: a record's parents, and who was made from whom.
struct Family {
    records: std::collections::HashMap<Id, GenerationRecord>,
    children: std::collections::HashMap<Id, Vec<(Id, ParentRole)>>,
}

impl Family {
    fn load(store: &dyn HistoryStore) -> Family {
        let records: std::collections::HashMap<Id, GenerationRecord> = store
            .page(&Query::default(), None, CHILDREN_SCAN)
            .map(|p| p.records)
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let mut children: std::collections::HashMap<Id, Vec<(Id, ParentRole)>> = Default::default();
        for r in records.values() {
            for p in r.lineage() {
                children.entry(p.id).or_default().push((r.id, p.role));
            }
        }
        for list in children.values_mut() {
            list.sort_by_key(|(id, _)| records.get(id).map(|r| r.created));
        }
        Family { records, children }
    }

    fn parents(&self, id: Id, store: &dyn HistoryStore) -> Vec<(Id, ParentRole)> {
        let record = self
            .records
            .get(&id)
            .cloned()
            .or_else(|| store.get(id).ok().flatten());
        record
            .map(|r| r.lineage().into_iter().map(|p| (p.id, p.role)).collect())
            .unwrap_or_default()
    }
}

/// Draw `edges` of `id` (its parents going up, or its children going down) under `prefix`.
#[allow(clippy::too_many_arguments)]
fn branch(
    out: &mut Vec<String>,
    family: &Family,
    store: &dyn HistoryStore,
    id: Id,
    up: bool,
    prefix: &str,
    depth: usize,
    seen: &mut std::collections::HashSet<Id>,
) {
    let edges = if up {
        family.parents(id, store)
    } else {
        family.children.get(&id).cloned().unwrap_or_default()
    };
    for (k, (next, role)) in edges.iter().enumerate() {
        let last = k + 1 == edges.len();
        let (joint, more) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        let record = family
            .records
            .get(next)
            .cloned()
            .or_else(|| store.get(*next).ok().flatten());
        out.push(format!(
            "{prefix}{joint}{}",
            node_line(record.as_ref(), *next, Some(role.as_str()))
        ));
        if depth + 1 >= TREE_DEPTH {
            out.push(format!("{prefix}{more}…"));
        } else if seen.insert(*next) {
            branch(
                out,
                family,
                store,
                *next,
                up,
                &format!("{prefix}{more}"),
                depth + 1,
                seen,
            );
        }
    }
}

/// `easel history tree ID`: the record, what it was made from (up to its roots) and what was
/// made from it (down to the leaves), one line a record.
pub fn tree(store: &dyn HistoryStore, r: &GenerationRecord) -> Vec<String> {
    let family = Family::load(store);
    let mut descendants = Vec::new();
    let mut seen = [r.id].into();
    branch(
        &mut descendants,
        &family,
        store,
        r.id,
        false,
        "",
        0,
        &mut seen,
    );
    // The "made from" branch is the last one when nothing was made from the record.
    let (joint, more) = if descendants.is_empty() {
        ("└─ ", "   ")
    } else {
        ("├─ ", "│  ")
    };
    let mut ancestors = Vec::new();
    let mut seen = [r.id].into();
    branch(
        &mut ancestors,
        &family,
        store,
        r.id,
        true,
        more,
        0,
        &mut seen,
    );
    let mut out = vec![node_line(Some(r), r.id, None)];
    if !ancestors.is_empty() {
        out.push(format!("{joint}made from"));
        out.extend(ancestors);
    }
    if !descendants.is_empty() {
        out.push("└─ made into".to_string());
        out.extend(descendants.into_iter().map(|l| format!("   {l}")));
    }
    if out.len() == 1 {
        out.push("(no parents and no children)".to_string());
    }
    out
}

/// Print the tree of the record `text` names.
pub fn tree_command(store: &dyn HistoryStore, text: &str) -> Result<(), crate::store::StoreError> {
    let id = store.resolve(text)?;
    let r = store
        .get(id)?
        .ok_or_else(|| crate::store::StoreError::NotFound(text.to_string()))?;
    for line in tree(store, &r) {
        println!("{line}");
    }
    Ok(())
}
