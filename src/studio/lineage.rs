//! The lineage view (issue 12): a record's family drawn as a tree on the whole screen — what
//! it was made from above it (growing upwards), the record, and what was made from it below
//! (indented like `easel history tree`). Pure: the tree as read from the store, turned into
//! rows; where the rows go on the screen, and which are visible (only those are drawn, and
//! only their pictures asked for, so a family of hundreds stays cheap).

use crate::store::Id;
use crate::store::record::ParentRole;
use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Deepest a branch is drawn, either way (a longer chain is cut with "…").
pub const TREE_DEPTH: usize = 32;
/// Most rows a tree has (a larger family is cut, and says so).
pub const MAX_ROWS: usize = 5_000;
/// A node's picture: columns and rows (about square: cells are twice as tall as wide).
pub const THUMB_W: u16 = 6;
pub const THUMB_H: u16 = 3;

/// A record of the family, as the view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub prompt: String,
    pub created: DateTime<Utc>,
    pub status: crate::store::Status,
    /// Its first image (the path resolved, and its hash for the thumbnail cache), if any.
    pub image: Option<(PathBuf, String)>,
}

/// A record's family as read from the store: the records in it (a deleted one is missing) and
/// who was made from whom.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tree {
    pub focus: Option<Id>,
    pub nodes: HashMap<Id, Node>,
    /// Each record's parents, with what each was to it, in the record's order.
    pub parents: HashMap<Id, Vec<(Id, ParentRole)>>,
    /// The records made from each, with what it was to them, oldest first.
    pub children: HashMap<Id, Vec<(Id, ParentRole)>>,
}

/// Where a row stands to the record the view is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Ancestor,
    Focus,
    Descendant,
}

/// One node of the drawn tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: Id,
    pub place: Place,
    /// The tree lines before the node's first line (its joint included).
    pub lead: String,
    /// The tree lines before its other lines.
    pub cont: String,
    /// What the parent was to the child on this edge (none for the record itself).
    pub role: Option<ParentRole>,
    /// The record is gone from history.
    pub deleted: bool,
    /// More of the tree goes on from here but is not drawn (too deep, or drawn already).
    pub cut: bool,
}

/// The tree as rows, top to bottom: ancestors (the oldest highest), the record, descendants.
pub fn rows(tree: &Tree) -> Vec<Row> {
    let Some(focus) = tree.focus else {
        return Vec::new();
    };
    let mut up = Vec::new();
    branch(
        tree,
        focus,
        true,
        "",
        0,
        &mut HashSet::from([focus]),
        &mut up,
    );
    let mut down = Vec::new();
    branch(
        tree,
        focus,
        false,
        "",
        0,
        &mut HashSet::from([focus]),
        &mut down,
    );
    // What the record was made from grows upwards: the same tree, read bottom to top.
    up.reverse();
    for r in &mut up {
        r.lead = r.lead.replace('└', "┌");
    }
    let focus_row = Row {
        id: focus,
        place: Place::Focus,
        lead: "●  ".into(),
        cont: if down.is_empty() { "   " } else { "│  " }.into(),
        role: None,
        deleted: !tree.nodes.contains_key(&focus),
        cut: false,
    };
    let mut out = up;
    out.push(focus_row);
    out.extend(down);
    out.truncate(MAX_ROWS);
    out
}

/// The rows of `id`'s parents (going up) or children (going down), under `prefix`.
fn branch(
    tree: &Tree,
    id: Id,
    up: bool,
    prefix: &str,
    depth: usize,
    seen: &mut HashSet<Id>,
    out: &mut Vec<Row>,
) {
    let edges = if up {
        tree.parents.get(&id)
    } else {
        tree.children.get(&id)
    };
    let Some(edges) = edges else { return };
    for (k, (next, role)) in edges.iter().enumerate() {
        if out.len() >= MAX_ROWS {
            return;
        }
        let last = k + 1 == edges.len();
        let (joint, more) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        let expand = depth + 1 < TREE_DEPTH && seen.insert(*next);
        let edges_on = if up {
            tree.parents.get(next)
        } else {
            tree.children.get(next)
        };
        let has_more = edges_on.is_some_and(|e| !e.is_empty());
        // The node's other lines: going down, its own children hang below it; going up (read
        // bottom to top), the line to the record it belongs to passes by.
        let own = if !up && has_more && expand {
            "│  "
        } else {
            "   "
        };
        let cont = if up {
            format!("{prefix}│  {own}")
        } else {
            format!("{prefix}{more}{own}")
        };
        out.push(Row {
            id: *next,
            place: if up {
                Place::Ancestor
            } else {
                Place::Descendant
            },
            lead: format!("{prefix}{joint}"),
            cont,
            role: Some(*role),
            deleted: !tree.nodes.contains_key(next),
            cut: has_more && !expand,
        });
        if expand {
            branch(
                tree,
                *next,
                up,
                &format!("{prefix}{more}"),
                depth + 1,
                seen,
                out,
            );
        }
    }
}

/// The row of the record the view is about.
pub fn focus_index(rows: &[Row]) -> usize {
    rows.iter()
        .position(|r| r.place == Place::Focus)
        .unwrap_or(0)
}

/// The view's state while it is open.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineageView {
    /// The record it is about.
    pub id: Option<Id>,
    /// The family, once read.
    pub tree: Option<Tree>,
    pub rows: Vec<Row>,
    /// The row selected, and the first one shown.
    pub cursor: usize,
    pub scroll: usize,
    /// Why the family could not be read.
    pub error: Option<String>,
}

impl LineageView {
    pub fn loading(id: Id) -> LineageView {
        LineageView {
            id: Some(id),
            ..LineageView::default()
        }
    }

    /// The family arrived: its rows, the record selected.
    pub fn set_tree(&mut self, tree: Tree) {
        self.rows = rows(&tree);
        self.cursor = focus_index(&self.rows);
        self.tree = Some(tree);
        self.error = None;
    }

    pub fn selected(&self) -> Option<&Row> {
        self.rows.get(self.cursor)
    }
}

/// Where the view goes: a bordered frame (the screen but its status line), the rows inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub frame: Rect,
    pub body: Rect,
    /// Screen lines a node takes.
    pub node_h: u16,
    /// Nodes that fit.
    pub visible: usize,
    /// Columns of the picture column (0 without pictures).
    pub thumb_w: u16,
}

/// `pictures`: whether the terminal shows pictures (else the view is text only).
pub fn geometry(width: u16, height: u16, pictures: bool) -> Geometry {
    let frame = Rect::new(0, 0, width, height.saturating_sub(1));
    let body = super::layout::inner(frame);
    // Two lines a node (what and when; the prompt), or the picture's height.
    let (node_h, thumb_w) = if pictures {
        (THUMB_H, THUMB_W + 1)
    } else {
        (2, 0)
    };
    let visible = usize::from((body.height / node_h).max(1));
    Geometry {
        frame,
        body,
        node_h,
        visible,
        thumb_w,
    }
}

/// The first row shown for a cursor: the cursor stays in view, and the view moves only when
/// it must.
pub fn scroll_for(cursor: usize, scroll: usize, visible: usize, total: usize) -> usize {
    let visible = visible.max(1);
    let scroll = if cursor < scroll {
        cursor
    } else if cursor >= scroll + visible {
        cursor + 1 - visible
    } else {
        scroll
    };
    scroll.min(total.saturating_sub(visible))
}

/// The visible nodes: index of the row, and where its lines go.
pub fn visible(g: &Geometry, view: &LineageView) -> Vec<(usize, Rect)> {
    (view.scroll..view.rows.len())
        .take(g.visible)
        .enumerate()
        .map(|(k, i)| {
            let y = g.body.y + u16::try_from(k).unwrap_or(0) * g.node_h;
            (i, Rect::new(g.body.x, y, g.body.width, g.node_h))
        })
        .collect()
}

/// The picture of a row: its record's first image (path and hash, for the thumbnail cache).
pub fn image_of(view: &LineageView, index: usize) -> Option<&(PathBuf, String)> {
    let row = view.rows.get(index)?;
    view.tree.as_ref()?.nodes.get(&row.id)?.image.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn id(n: u128) -> Id {
        Id::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn node() -> Node {
        Node {
            prompt: "p".into(),
            created: Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap(),
            status: crate::store::Status::Succeeded,
            image: None,
        }
    }

    /// A tree from edges (parent, child, role); records `deleted` are not in it.
    fn tree(focus: u128, edges: &[(u128, u128, ParentRole)], deleted: &[u128]) -> Tree {
        let mut t = Tree {
            focus: Some(id(focus)),
            ..Tree::default()
        };
        for (p, c, role) in edges {
            t.parents.entry(id(*c)).or_default().push((id(*p), *role));
            t.children.entry(id(*p)).or_default().push((id(*c), *role));
            for n in [p, c] {
                if !deleted.contains(n) {
                    t.nodes.insert(id(*n), node());
                }
            }
        }
        t.nodes.entry(id(focus)).or_insert_with(node);
        t
    }

    /// Each row as "lead|number|cont", numbers by the id.
    fn shape(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| {
                let n = r.id.uuid().as_u128();
                let flags = format!(
                    "{}{}",
                    if r.deleted { " deleted" } else { "" },
                    if r.cut { " …" } else { "" }
                );
                format!("{}{n}{flags}|{}", r.lead, r.cont)
            })
            .collect()
    }

    use ParentRole::*;

    #[test]
    fn rows_of_trees() {
        let cases: Vec<(&str, Tree, Vec<&str>)> = vec![
            ("alone", tree(1, &[], &[]), vec!["●  1|   "]),
            (
                "a chain up and down",
                tree(2, &[(1, 2, Edited), (2, 3, RerunOf)], &[]),
                vec!["┌─ 1|│     ", "●  2|│  ", "└─ 3|      "],
            ),
            (
                "two parents, one with its own parent, above",
                tree(
                    3,
                    &[(1, 3, Edited), (2, 3, Reference), (9, 1, VariationOf)],
                    &[],
                ),
                // Read bottom to top, it is `easel history tree`'s "made from" branch.
                vec![
                    "┌─ 2|│     ",
                    "│  ┌─ 9|│  │     ",
                    "├─ 1|│     ",
                    "●  3|   ",
                ],
            ),
            (
                "children and grandchildren below",
                tree(
                    1,
                    &[(1, 2, Edited), (1, 3, Reference), (2, 4, RerunOf)],
                    &[],
                ),
                vec![
                    "●  1|│  ",
                    "├─ 2|│  │  ",
                    "│  └─ 4|│        ",
                    "└─ 3|      ",
                ],
            ),
            (
                "a deleted parent",
                tree(2, &[(1, 2, Edited)], &[1]),
                vec!["┌─ 1 deleted|│     ", "●  2|   "],
            ),
            (
                "a record reached twice is drawn once more, not again below it",
                tree(
                    1,
                    &[
                        (1, 2, Edited),
                        (1, 3, Edited),
                        (2, 4, Reference),
                        (3, 4, Edited),
                        (4, 5, RerunOf),
                    ],
                    &[],
                ),
                vec![
                    "●  1|│  ",
                    "├─ 2|│  │  ",
                    "│  └─ 4|│     │  ",
                    "│     └─ 5|│           ",
                    "└─ 3|   │  ",
                    "   └─ 4 …|         ",
                ],
            ),
        ];
        for (name, t, want) in cases {
            assert_eq!(shape(&rows(&t)), want, "{name}");
        }
    }

    #[test]
    fn roles_and_places() {
        let t = tree(2, &[(1, 2, MaskSource), (2, 3, VariationOf)], &[]);
        let r = rows(&t);
        let got: Vec<(Place, Option<ParentRole>)> = r.iter().map(|r| (r.place, r.role)).collect();
        assert_eq!(
            got,
            vec![
                (Place::Ancestor, Some(MaskSource)),
                (Place::Focus, None),
                (Place::Descendant, Some(VariationOf)),
            ]
        );
        assert_eq!(focus_index(&r), 1);
    }

    #[test]
    fn a_long_chain_is_cut_and_a_cycle_ends() {
        // 100 generations, each a rerun of the one before: cut at TREE_DEPTH.
        let edges: Vec<(u128, u128, ParentRole)> = (1..100).map(|n| (n, n + 1, RerunOf)).collect();
        let r = rows(&tree(1, &edges, &[]));
        assert_eq!(r.len(), 1 + TREE_DEPTH);
        assert!(r.last().unwrap().cut);
        // A cycle (bad data) ends.
        let r = rows(&tree(1, &[(1, 2, Edited), (2, 1, Edited)], &[]));
        assert_eq!(r.len(), 5, "{r:?}");
        assert!(r[0].cut && r[4].cut, "{r:?}");
    }

    #[test]
    fn a_large_family_is_bounded() {
        let edges: Vec<(u128, u128, ParentRole)> = (2..20_000).map(|n| (1, n, Reference)).collect();
        let r = rows(&tree(1, &edges, &[]));
        assert_eq!(r.len(), MAX_ROWS);
    }

    #[test]
    fn scrolling_keeps_the_cursor_in_view() {
        let cases = [
            // cursor, scroll, visible, total -> scroll
            (0, 0, 5, 100, 0),
            (4, 0, 5, 100, 0),
            (5, 0, 5, 100, 1),
            (50, 0, 5, 100, 46),
            (10, 46, 5, 100, 10),
            (99, 0, 5, 100, 95),
            (2, 0, 5, 3, 0),
        ];
        for (cursor, scroll, visible, total, want) in cases {
            assert_eq!(
                scroll_for(cursor, scroll, visible, total),
                want,
                "{cursor} {scroll} {visible} {total}"
            );
        }
    }
}
