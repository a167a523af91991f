//! A run laid out as a grid (issue 14): which of its varying values become the rows, the
//! columns and the pages, the labels of each, and which records go in each cell. Pure: the
//! studio's run grid and `easel history sheet --run` draw the same layout.
//!
//! - The dimensions are what the jobs of a run vary: the prompt (of a `--prompts` file), each
//!   `{…}` (named "choice 1", "choice 2"… by position), each `__wildcard__` (by its name), each
//!   `--axis` (by its name). A dimension whose value is the same in every record is left out.
//! - A dimension that another one determines (a nested `{…}` inside its outer one, the prompt
//!   of a file whose lines have choices of their own, or two that always change together in a
//!   `--pick`) is folded into it: its value joins the other's label instead of making empty
//!   cells.
//! - In run order (the first dimension varies slowest): one dimension is a row of columns; two
//!   are rows × columns; with three or more, the last two are rows × columns and the others
//!   make pages, each labelled with its values.
//! - Repeats are extra columns (`#1`, `#2`…) next to each other under their column's value.
//! - Labels are in the order the run used the values, not sorted.
//! - A cell may be empty (a job not in history, deleted, or a combination a `--pick` did not
//!   draw): the caller marks it missing. A cell whose records all failed is marked failed.

use super::JobValues;
use std::collections::HashMap;

/// One record of the run, as the layout sees it.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The job's place in the run (1-based), for run order.
    pub index: u32,
    pub values: &'a JobValues,
}

/// The rows or the columns: a name ("size", "choice 1", "__animal__") and one label a line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Side {
    pub name: String,
    pub labels: Vec<String>,
}

/// One page of the grid: `rows × cols` cells, row by row, each the positions (in the entries
/// given) of its records, in repeat order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// "size=1024x1024 · quality=low": the values that make this page (empty with one page).
    pub label: String,
    pub cells: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub rows: Side,
    pub cols: Side,
    pub pages: Vec<Page>,
}

impl Layout {
    /// The records in a cell (positions in the entries given); empty when missing.
    pub fn cell(&self, page: usize, row: usize, col: usize) -> &[usize] {
        if row >= self.rows.labels.len() || col >= self.cols.labels.len() {
            return &[];
        }
        self.pages
            .get(page)
            .and_then(|p| p.cells.get(row * self.cols.labels.len() + col))
            .map_or(&[], Vec::as_slice)
    }

    pub fn row_count(&self) -> usize {
        self.rows.labels.len()
    }

    pub fn col_count(&self) -> usize {
        self.cols.labels.len()
    }
}

/// What a cell shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// No record: the job is not in history (deleted, not drawn, not run yet).
    Missing,
    /// Every record of the cell failed (or was cancelled): the first of them.
    Failed(usize),
    /// The first record of the cell that made an image.
    Done(usize),
}

/// What a cell shows, given which records made an image.
pub fn mark(cell: &[usize], made_image: impl Fn(usize) -> bool) -> Mark {
    match (cell.iter().find(|&&i| made_image(i)), cell.first()) {
        (Some(&i), _) => Mark::Done(i),
        (None, Some(&i)) => Mark::Failed(i),
        (None, None) => Mark::Missing,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Prompt,
    /// A `{…}` or a `__wildcard__`, by the column it starts at (template order).
    Choice(usize, Option<String>),
    /// An axis, by its place among the axes.
    Axis(usize, String),
}

/// One varying dimension: its name, and each entry's value (an index into `values`).
struct Dim {
    name: String,
    values: Vec<String>,
    of: Vec<usize>,
}

/// The value of a choice a job does not have (a nested `{…}` in another option).
const NONE: &str = "—";

fn show(value: &str) -> String {
    let v = crate::sanitize::line(value.trim()).into_owned();
    if v.is_empty() { "(none)".into() } else { v }
}

/// Lay the run out. `entries` may be in any order and any subset of the run.
pub fn layout(entries: &[Entry<'_>]) -> Layout {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].index, i));

    // Each entry's value per dimension key (None where the job has no such choice).
    let mut keys: Vec<Key> = Vec::new();
    let mut per_entry: Vec<HashMap<Key, String>> = Vec::with_capacity(entries.len());
    for e in entries {
        let v = e.values;
        let mut m = HashMap::new();
        m.insert(
            Key::Prompt,
            format!("{}\u{0}{}", v.prompt_index, show(&v.template)),
        );
        for a in &v.alternatives {
            m.insert(Key::Choice(a.column, None), show(&a.value));
        }
        for w in &v.wildcards {
            m.insert(Key::Choice(w.column, Some(w.name.clone())), show(&w.value));
        }
        for (k, a) in v.axes.iter().enumerate() {
            m.insert(Key::Axis(k, a.name.clone()), show(&a.value));
        }
        for k in m.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        per_entry.push(m);
    }
    keys.sort();
    let mut choice_no = 0;
    let mut dims: Vec<Dim> = Vec::new();
    for key in &keys {
        let name = match key {
            Key::Prompt => "prompt".to_string(),
            Key::Choice(_, Some(w)) => format!("__{}__", crate::sanitize::line(w)),
            Key::Choice(_, None) => {
                choice_no += 1;
                format!("choice {choice_no}")
            }
            Key::Axis(_, n) => crate::sanitize::line(n).into_owned(),
        };
        let mut values: Vec<String> = Vec::new();
        let mut of = vec![0; entries.len()];
        for &i in &order {
            // The prompt's value is "1\0a {red|blue} kite": told apart by its number.
            let value = per_entry[i]
                .get(key)
                .cloned()
                .unwrap_or_else(|| NONE.into());
            of[i] = match values.iter().position(|v| *v == value) {
                Some(p) => p,
                None => {
                    values.push(value);
                    values.len() - 1
                }
            };
        }
        if values.len() > 1 {
            if *key == Key::Prompt {
                for v in &mut values {
                    *v = v
                        .split_once('\u{0}')
                        .map_or(v.clone(), |(_, t)| t.to_string());
                }
            }
            dims.push(Dim { name, values, of });
        }
    }

    let dims = fold(dims, entries.len());
    let repeats = entries
        .iter()
        .map(|e| e.values.repeat.max(1))
        .max()
        .unwrap_or(1);
    // Repeats in first-seen order are 1..=max; a column per (value, repeat).
    let n = dims.len();
    let (page_dims, row_dim, col_dim) = match n {
        0 => (&dims[..0], None, None),
        1 => (&dims[..0], None, dims.first()),
        _ => (&dims[..n - 2], dims.get(n - 2), dims.get(n - 1)),
    };
    let rows = match row_dim {
        Some(d) => Side {
            name: d.name.clone(),
            labels: d.values.clone(),
        },
        None => Side {
            name: String::new(),
            labels: vec![String::new()],
        },
    };
    let col_values: Vec<String> = col_dim.map_or_else(|| vec![String::new()], |d| d.values.clone());
    let mut col_labels = Vec::new();
    for v in &col_values {
        for r in 1..=repeats {
            col_labels.push(match (v.is_empty(), repeats > 1) {
                (_, false) => v.clone(),
                (true, true) => format!("#{r}"),
                (false, true) => format!("{v} #{r}"),
            });
        }
    }
    let col_name = match (col_dim, repeats > 1) {
        (Some(d), true) => format!("{} · repeat", d.name),
        (Some(d), false) => d.name.clone(),
        (None, true) => "repeat".into(),
        (None, false) => String::new(),
    };
    let cols = Side {
        name: col_name,
        labels: col_labels,
    };
    let (nr, nc) = (rows.labels.len(), cols.labels.len());

    let mut pages: Vec<Page> = Vec::new();
    let mut page_of: HashMap<Vec<usize>, usize> = HashMap::new();
    for &i in &order {
        let pkey: Vec<usize> = page_dims.iter().map(|d| d.of[i]).collect();
        let p = match page_of.get(&pkey) {
            Some(p) => *p,
            None => {
                let label = page_dims
                    .iter()
                    .zip(&pkey)
                    .map(|(d, &v)| format!("{}={}", d.name, d.values[v]))
                    .collect::<Vec<_>>()
                    .join(" · ");
                pages.push(Page {
                    label,
                    cells: vec![Vec::new(); nr * nc],
                });
                page_of.insert(pkey, pages.len() - 1);
                pages.len() - 1
            }
        };
        let row = row_dim.map_or(0, |d| d.of[i]);
        let col_value = col_dim.map_or(0, |d| d.of[i]);
        let repeat = entries[i].values.repeat.clamp(1, repeats);
        let col = col_value * repeats as usize + (repeat as usize - 1);
        if let Some(cell) = pages[p].cells.get_mut(row * nc + col) {
            cell.push(i);
        }
    }
    if pages.is_empty() {
        pages.push(Page {
            label: String::new(),
            cells: vec![Vec::new(); nr * nc],
        });
    }
    Layout { rows, cols, pages }
}

/// `a` is determined by `b`: every value of `b` goes with one value of `a`.
fn determined(a: &Dim, b: &Dim) -> bool {
    let mut seen: HashMap<usize, usize> = HashMap::new();
    a.of.iter()
        .zip(&b.of)
        .all(|(&av, &bv)| *seen.entry(bv).or_insert(av) == av)
}

/// Fold each dimension that another one determines into that one (the finer, or among equals
/// the first), so no row or column is made of a value that follows from another.
fn fold(dims: Vec<Dim>, len: usize) -> Vec<Dim> {
    let n = dims.len();
    let det: Vec<Vec<bool>> = (0..n)
        .map(|a| {
            (0..n)
                .map(|b| a != b && determined(&dims[a], &dims[b]))
                .collect()
        })
        .collect();
    let folded: Vec<bool> = (0..n)
        .map(|a| (0..n).any(|b| det[a][b] && (!det[b][a] || b < a)))
        .collect();
    // Where each folded one goes: the first survivor that determines it.
    let mut into: Vec<Option<usize>> = vec![None; n];
    for a in 0..n {
        if folded[a] {
            into[a] = (0..n).find(|&b| !folded[b] && det[a][b]);
        }
    }
    let mut out: Vec<Dim> = Vec::new();
    let mut slot: Vec<Option<usize>> = vec![None; n];
    for (k, d) in dims.iter().enumerate() {
        if !folded[k] || into[k].is_none() {
            slot[k] = Some(out.len());
            out.push(Dim {
                name: d.name.clone(),
                values: d.values.clone(),
                of: d.of.clone(),
            });
        }
    }
    for a in 0..n {
        let Some(b) = into[a] else { continue };
        let Some(s) = slot[b] else { continue };
        let (from, target) = (&dims[a], &mut out[s]);
        target.name = format!("{} · {}", target.name, from.name);
        // Each value of the target, with the value of `a` that goes with it.
        let mut extra: Vec<Option<String>> = vec![None; target.values.len()];
        for i in 0..len {
            extra[target.of[i]] = Some(from.values[from.of[i]].clone());
        }
        for (v, x) in target.values.iter_mut().zip(extra) {
            if let Some(x) = x
                && x != NONE
                && !v.contains(x.as_str())
            {
                *v = format!("{v} · {x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::{AltValue, AxisValue, WildcardValue};
    use proptest::prelude::*;

    fn job(alts: &[&str], axes: &[(&str, &str)], repeat: u32) -> JobValues {
        JobValues {
            prompt_index: 1,
            template: "t".into(),
            combination: 0,
            alternatives: alts
                .iter()
                .enumerate()
                .map(|(k, v)| AltValue {
                    column: 1 + 10 * k,
                    value: v.to_string(),
                })
                .collect(),
            wildcards: Vec::new(),
            axes: axes
                .iter()
                .map(|(n, v)| AxisValue {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            repeat,
        }
    }

    fn lay(jobs: &[JobValues]) -> Layout {
        let entries: Vec<Entry<'_>> = jobs
            .iter()
            .enumerate()
            .map(|(k, v)| Entry {
                index: k as u32 + 1,
                values: v,
            })
            .collect();
        layout(&entries)
    }

    /// Each page as text: one line a row, each cell the entries in it ("-" when empty).
    fn grid(l: &Layout) -> Vec<String> {
        l.pages
            .iter()
            .map(|p| {
                let mut s = format!("[{}] ", p.label);
                for r in 0..l.row_count() {
                    let row: Vec<String> = (0..l.col_count())
                        .map(|c| {
                            let cell = &p.cells[r * l.col_count() + c];
                            if cell.is_empty() {
                                "-".into()
                            } else {
                                cell.iter()
                                    .map(|i| i.to_string())
                                    .collect::<Vec<_>>()
                                    .join("+")
                            }
                        })
                        .collect();
                    s.push_str(&row.join(" "));
                    s.push_str(" / ");
                }
                s
            })
            .collect()
    }

    #[test]
    fn table_of_runs_and_their_grids() {
        struct Case {
            what: &'static str,
            jobs: Vec<JobValues>,
            rows: (&'static str, Vec<&'static str>),
            cols: (&'static str, Vec<&'static str>),
            pages: Vec<&'static str>,
        }
        let cases = vec![
            Case {
                what: "one choice: a row",
                jobs: vec![job(&["red"], &[], 1), job(&["blue"], &[], 1)],
                rows: ("", vec![""]),
                cols: ("choice 1", vec!["red", "blue"]),
                pages: vec!["[] 0 1 / "],
            },
            Case {
                what: "2 x 2: first choice the rows, in run order (not sorted)",
                jobs: vec![
                    job(&["red", "fox"], &[], 1),
                    job(&["red", "owl"], &[], 1),
                    job(&["blue", "fox"], &[], 1),
                    job(&["blue", "owl"], &[], 1),
                ],
                rows: ("choice 1", vec!["red", "blue"]),
                cols: ("choice 2", vec!["fox", "owl"]),
                pages: vec!["[] 0 1 / 2 3 / "],
            },
            Case {
                what: "a choice and an axis; a job missing",
                jobs: vec![
                    job(&["cat"], &[("size", "1024x1024")], 1),
                    job(&["cat"], &[("size", "1536x1024")], 1),
                    job(&["dog"], &[("size", "1536x1024")], 1),
                ],
                rows: ("choice 1", vec!["cat", "dog"]),
                cols: ("size", vec!["1024x1024", "1536x1024"]),
                pages: vec!["[] 0 1 / - 2 / "],
            },
            Case {
                what: "three dimensions: the first makes pages",
                jobs: vec![
                    job(&["cat"], &[("size", "s1"), ("quality", "low")], 1),
                    job(&["cat"], &[("size", "s1"), ("quality", "high")], 1),
                    job(&["cat"], &[("size", "s2"), ("quality", "low")], 1),
                    job(&["cat"], &[("size", "s2"), ("quality", "high")], 1),
                    job(&["dog"], &[("size", "s1"), ("quality", "low")], 1),
                    job(&["dog"], &[("size", "s1"), ("quality", "high")], 1),
                    job(&["dog"], &[("size", "s2"), ("quality", "low")], 1),
                    job(&["dog"], &[("size", "s2"), ("quality", "high")], 1),
                ],
                rows: ("size", vec!["s1", "s2"]),
                cols: ("quality", vec!["low", "high"]),
                pages: vec!["[choice 1=cat] 0 1 / 2 3 / ", "[choice 1=dog] 4 5 / 6 7 / "],
            },
            Case {
                what: "repeats are extra columns",
                jobs: vec![
                    job(&["cat"], &[], 1),
                    job(&["cat"], &[], 2),
                    job(&["dog"], &[], 1),
                    job(&["dog"], &[], 2),
                ],
                rows: ("", vec![""]),
                cols: (
                    "choice 1 · repeat",
                    vec!["cat #1", "cat #2", "dog #1", "dog #2"],
                ),
                pages: vec!["[] 0 1 2 3 / "],
            },
            Case {
                what: "only repeats",
                jobs: vec![job(&[], &[], 1), job(&[], &[], 2), job(&[], &[], 3)],
                rows: ("", vec![""]),
                cols: ("repeat", vec!["#1", "#2", "#3"]),
                pages: vec!["[] 0 1 2 / "],
            },
            Case {
                what: "nested choice folds into its outer one; an empty option is (none)",
                jobs: vec![
                    job(&["red"], &[], 1),
                    job(&["dark blue", "dark"], &[], 1),
                    job(&["light blue", "light"], &[], 1),
                    job(&[""], &[], 1),
                ],
                rows: ("", vec![""]),
                cols: (
                    "choice 1 · choice 2",
                    vec!["red", "dark blue", "light blue", "(none)"],
                ),
                pages: vec!["[] 0 1 2 3 / "],
            },
            Case {
                what: "a single job",
                jobs: vec![job(&["red"], &[], 1)],
                rows: ("", vec![""]),
                cols: ("", vec![""]),
                pages: vec!["[] 0 / "],
            },
        ];
        for c in cases {
            let l = lay(&c.jobs);
            assert_eq!(
                (l.rows.name.as_str(), l.rows.labels.clone()),
                (c.rows.0, c.rows.1.iter().map(|s| s.to_string()).collect()),
                "{}: rows",
                c.what
            );
            assert_eq!(
                (l.cols.name.as_str(), l.cols.labels.clone()),
                (c.cols.0, c.cols.1.iter().map(|s| s.to_string()).collect()),
                "{}: cols",
                c.what
            );
            assert_eq!(grid(&l), c.pages, "{}", c.what);
        }
    }

    #[test]
    fn labels_never_carry_control_characters() {
        let l = lay(&[
            job(&["red\u{1b}[2J"], &[("size", "a\u{202e}b")], 1),
            job(&["blue\n"], &[("size", "c")], 1),
        ]);
        for label in l.rows.labels.iter().chain(&l.cols.labels) {
            assert!(!label.chars().any(crate::sanitize::is_unsafe), "{label:?}");
        }
        // Two values that change together are one dimension (the axis folded into the choice).
        assert_eq!(l.cols.labels, ["red[2J · ab", "blue · c"]);
    }

    #[test]
    fn prompts_of_a_file_and_wildcards_are_dimensions() {
        let mut a = job(&[], &[("size", "s1")], 1);
        a.template = "a kite".into();
        let mut b = a.clone();
        b.axes[0].value = "s2".into();
        let mut c = a.clone();
        c.prompt_index = 2;
        c.template = "an owl".into();
        c.wildcards.push(WildcardValue {
            name: "mood".into(),
            column: 4,
            value: "calm".into(),
        });
        let mut d = c.clone();
        d.axes[0].value = "s2".into();
        let l = lay(&[a, b, c, d]);
        // The wildcard follows the prompt (only the second has it): folded into it.
        assert_eq!(l.rows.name, "prompt · __mood__");
        assert_eq!(l.rows.labels, ["a kite", "an owl · calm"]);
        assert_eq!(l.cols.labels, ["s1", "s2"]);
        assert_eq!(grid(&l), ["[] 0 1 / 2 3 / "]);
    }

    #[test]
    fn failed_and_out_of_order_records_keep_run_order() {
        // Records given newest first (as history lists them): labels still in run order.
        let jobs = [
            job(&["blue"], &[], 1),
            job(&["red"], &[], 1),
            job(&["green"], &[], 1),
        ];
        let entries: Vec<Entry<'_>> = [(2, 0), (1, 1), (3, 2)]
            .iter()
            .map(|&(index, k)| Entry {
                index,
                values: &jobs[k],
            })
            .collect();
        let l = layout(&entries);
        assert_eq!(l.cols.labels, ["red", "blue", "green"]);
        assert_eq!(l.cell(0, 0, 0), [1]);
        assert_eq!(l.cell(0, 0, 1), [0]);
        assert!(l.cell(0, 5, 5).is_empty());
        assert!(layout(&[]).pages.len() == 1);
        // Marks: missing, failed (nothing made an image), done (the first that did).
        assert_eq!(mark(&[], |_| true), Mark::Missing);
        assert_eq!(mark(&[4, 7], |_| false), Mark::Failed(4));
        assert_eq!(mark(&[4, 7], |i| i == 7), Mark::Done(7));
    }

    fn arb_run() -> impl Strategy<Value = Vec<JobValues>> {
        // Up to 3 choices of up to 3 values, up to 2 axes, repeats up to 2, then a random
        // subset of the combinations (a --pick, or deleted records).
        (
            prop::collection::vec(1usize..4, 0..4),
            prop::collection::vec(1usize..4, 0..3),
            1u32..3,
            prop::collection::vec(any::<bool>(), 64..65),
        )
            .prop_map(|(choices, axes, repeat, keep)| {
                let mut jobs = Vec::new();
                let total: usize = choices.iter().chain(&axes).product::<usize>().max(1);
                for combo in 0..total {
                    for r in 1..=repeat {
                        let mut rest = combo;
                        let mut digits = Vec::new();
                        for n in choices.iter().chain(&axes).rev() {
                            digits.push(rest % n);
                            rest /= n;
                        }
                        digits.reverse();
                        let alts: Vec<String> = digits[..choices.len()]
                            .iter()
                            .map(|d| format!("v{d}"))
                            .collect();
                        let axs: Vec<(String, String)> = digits[choices.len()..]
                            .iter()
                            .enumerate()
                            .map(|(k, d)| (format!("axis{k}"), format!("a{d}")))
                            .collect();
                        let alt_refs: Vec<&str> = alts.iter().map(String::as_str).collect();
                        let ax_refs: Vec<(&str, &str)> =
                            axs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                        jobs.push(job(&alt_refs, &ax_refs, r));
                    }
                }
                let kept: Vec<JobValues> = jobs
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| keep[i % keep.len()] || *i == 0)
                    .map(|(_, j)| j)
                    .collect();
                kept
            })
    }

    proptest! {
        #[test]
        fn every_record_lands_in_exactly_one_cell(jobs in arb_run()) {
            let l = lay(&jobs);
            let mut count = vec![0usize; jobs.len()];
            for p in &l.pages {
                prop_assert_eq!(p.cells.len(), l.row_count() * l.col_count());
                for cell in &p.cells {
                    for &i in cell {
                        count[i] += 1;
                    }
                }
            }
            prop_assert!(count.iter().all(|&c| c == 1), "{:?}", count);
            // A cell holds one record: the values are all told apart.
            for p in &l.pages {
                prop_assert!(p.cells.iter().all(|c| c.len() <= 1));
            }
            prop_assert!(!l.pages.is_empty());
        }
    }
}
