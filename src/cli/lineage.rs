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
        Ok(Some(r)) => format!(
            "{}  {role}  {}",
            id.short(),
            sanitize::truncate(&sanitize::line(&r.prompt), 60)
        ),
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
                format!(
                    "{}  {what}  {}",
                    child.id.short(),
                    sanitize::truncate(&sanitize::line(&child.prompt), 60)
                ),
            ));
        }
    }
    out
}
