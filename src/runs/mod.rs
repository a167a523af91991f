//! Runs: one prompt (or a file of them) expanded into many jobs (issue 14). Pure: no network,
//! no store; the only input besides the arguments is the wildcard folder.
//!
//! - `{a|b|c}` alternatives (nested), `__name__` wildcards, `\{ \| \} \_ \\` escapes
//!   (`parse`);
//! - parameter axes `size=1024x1024,1536x1024` (an X/Y/Z grid over parameters);
//! - `repeat`: each combination that many times;
//! - all combinations by default, or `pick` of them drawn at random, reproducibly from `seed`.
//!
//! Order: prompts in the order given; within a prompt, its combinations with the first choice
//! varying slowest; within that, the axis values, the first axis slowest; repeats innermost.
//! Combinations are numbered and decoded one by one (`nth`), so `--pick 10` from a billion
//! combinations never lists them all. Each job records the values it used (`JobValues`).
//! The syntax is documented in docs/runs.md.

pub mod layout;
pub mod parse;
pub mod wildcards;

use parse::{ErrorKind, Node, SyntaxError};
use serde::{Deserialize, Serialize};
use std::fmt;
pub use wildcards::Wildcards;

/// Above this many jobs a run is refused unless `allow_large`.
pub const LARGE_RUN: u64 = 1_000;
/// Never more jobs than this, even with `allow_large`: each is a request that costs money.
pub const MAX_JOBS: u64 = 100_000;

/// The request parameters an axis may vary.
pub const AXIS_NAMES: &[&str] = &[
    "model",
    "size",
    "quality",
    "n",
    "background",
    "format",
    "compression",
    "moderation",
    "style",
];

/// A run that cannot be expanded: where (which prompt or flag, and the column), what, and what
/// to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    /// "the prompt", "--prompts FILE line 3", "--axis size=…".
    pub origin: String,
    /// 1-based character column in that text, when the problem has one.
    pub column: Option<usize>,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "{}, column {c}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for RunError {}

impl RunError {
    fn syntax(origin: &str, e: SyntaxError) -> RunError {
        RunError {
            origin: origin.to_string(),
            column: Some(e.column),
            hint: e.hint().to_string(),
            message: e.kind.to_string(),
        }
    }

    fn plain(origin: &str, message: impl Into<String>, hint: impl Into<String>) -> RunError {
        RunError {
            origin: origin.to_string(),
            column: None,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// One `--axis NAME=V1,V2,…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    pub name: String,
    pub values: Vec<String>,
}

/// Parse `NAME=V1,V2,…`. Errors carry the column within `arg`.
pub fn parse_axis(arg: &str) -> Result<Axis, RunError> {
    let origin = format!("--axis {arg:?}");
    let at = |column: usize, message: String, hint: &str| RunError {
        origin: origin.clone(),
        column: Some(column),
        message,
        hint: hint.to_string(),
    };
    let Some((name, list)) = arg.split_once('=') else {
        return Err(at(
            1,
            "expected NAME=VALUE,VALUE,…".into(),
            "for example --axis size=1024x1024,1536x1024",
        ));
    };
    let name = name.trim();
    if !AXIS_NAMES.contains(&name) {
        return Err(at(
            1,
            format!("unknown axis {name:?}"),
            &format!("an axis is one of: {}", AXIS_NAMES.join(", ")),
        ));
    }
    // Column (1-based, in characters) where each value starts.
    let mut column = arg[..arg.len() - list.len()].chars().count() + 1;
    let mut values = Vec::new();
    for raw in list.split(',') {
        let value = raw.trim();
        let value_column = column + (raw.chars().count() - raw.trim_start().chars().count());
        if value.is_empty() {
            let message = if list.trim().is_empty() {
                format!("empty value list for axis {name}")
            } else {
                format!("empty value in the list for axis {name}")
            };
            return Err(at(
                value_column,
                message,
                "give one or more values separated by commas",
            ));
        }
        if matches!(name, "n" | "compression") && value.parse::<u8>().is_err() {
            return Err(at(
                value_column,
                format!("{name} takes a whole number, not {value:?}"),
                if name == "n" {
                    "n is 1–10"
                } else {
                    "compression is 0–100"
                },
            ));
        }
        values.push(value.to_string());
        column += raw.chars().count() + 1;
    }
    Ok(Axis {
        name: name.to_string(),
        values,
    })
}

/// What to expand.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// (origin, prompt): origin names the prompt in errors ("the prompt", "FILE line 3").
    pub prompts: Vec<(String, String)>,
    pub axes: Vec<Axis>,
    /// Each combination this many times (1 when not given).
    pub repeat: u32,
    /// Draw this many combinations at random instead of taking all.
    pub pick: Option<u64>,
    /// The seed for `pick` (a random one when None; the expansion reports the one it used).
    pub seed: Option<u64>,
    /// Allow more than `LARGE_RUN` jobs.
    pub allow_large: bool,
}

/// The alternative chosen at a `{…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AltValue {
    /// The column of the `{` in the prompt.
    pub column: usize,
    /// The text it gave (with any choices nested in it made).
    pub value: String,
}

/// The line a `__name__` gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WildcardValue {
    pub name: String,
    pub column: usize,
    pub value: String,
}

/// One axis and the value this job used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AxisValue {
    pub name: String,
    pub value: String,
}

/// What one job of a run used: enough to label it in a grid and to store it with the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobValues {
    /// Which prompt of the run (1-based: the line number's order among the prompts given).
    pub prompt_index: usize,
    /// The prompt as written, before expansion.
    pub template: String,
    /// The number of this combination among all of the run's (0-based).
    pub combination: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<AltValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wildcards: Vec<WildcardValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub axes: Vec<AxisValue>,
    /// 1-based; 1 when the run has no --repeat.
    pub repeat: u32,
}

/// One request of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub prompt: String,
    pub values: JobValues,
}

/// The jobs of a run and how they were chosen.
#[derive(Debug, Clone)]
pub struct Expansion {
    pub jobs: Vec<Job>,
    /// All combinations (before --pick and --repeat), saturated at u64::MAX.
    pub combinations: u64,
    /// The seed --pick used, to repeat the draw.
    pub seed: Option<u64>,
}

struct Template {
    text: String,
    nodes: Vec<Node>,
    count: u128,
}

/// How many texts `nodes` gives; None past u128.
fn count_seq(nodes: &[Node]) -> Option<u128> {
    nodes
        .iter()
        .try_fold(1u128, |acc, n| acc.checked_mul(count_node(n)?))
}

fn count_node(node: &Node) -> Option<u128> {
    match node {
        Node::Text(_) => Some(1),
        Node::Alt { options, .. } => options
            .iter()
            .try_fold(0u128, |acc, o| acc.checked_add(count_seq(o)?)),
        Node::Wildcard { values, .. } => Some(values.len() as u128),
    }
}

/// The `index`th text of `nodes` (first node slowest), appending to `out` and recording the
/// choices made. `index` < count_seq(nodes), which the caller ensures has not overflowed.
fn nth_seq(nodes: &[Node], mut index: u128, out: &mut String, values: &mut JobValues) {
    let counts: Vec<u128> = nodes.iter().map(|n| count_node(n).unwrap_or(1)).collect();
    let mut digits = vec![0u128; nodes.len()];
    for (k, c) in counts.iter().enumerate().rev() {
        let c = (*c).max(1);
        digits[k] = index % c;
        index /= c;
    }
    for (node, digit) in nodes.iter().zip(digits) {
        nth_node(node, digit, out, values);
    }
}

fn nth_node(node: &Node, mut index: u128, out: &mut String, values: &mut JobValues) {
    match node {
        Node::Text(t) => out.push_str(t),
        Node::Alt { column, options } => {
            // Recorded before the nested choices it contains, so outer comes first.
            let slot = values.alternatives.len();
            values.alternatives.push(AltValue {
                column: *column,
                value: String::new(),
            });
            let start = out.len();
            for option in options {
                let c = count_seq(option).unwrap_or(1);
                if index < c {
                    nth_seq(option, index, out, values);
                    break;
                }
                index -= c;
            }
            values.alternatives[slot].value = out[start..].to_string();
        }
        Node::Wildcard {
            name,
            column,
            values: lines,
        } => {
            let value = usize::try_from(index)
                .ok()
                .and_then(|i| lines.get(i))
                .cloned()
                .unwrap_or_default();
            out.push_str(&value);
            values.wildcards.push(WildcardValue {
                name: name.clone(),
                column: *column,
                value,
            });
        }
    }
}

/// Parse every prompt, read its wildcards, and expand the run.
pub fn expand(spec: &RunSpec, wildcards: &mut Wildcards) -> Result<Expansion, RunError> {
    expand_with(spec, &mut |name| {
        wildcards.load(name).map(std::sync::Arc::new)
    })
}

/// The values of a wildcard, or why there are none: where `expand_with` and `count_with` get
/// them (the CLI reads the files; the studio answers from what it has read already).
pub type WildcardSource<'a> = dyn FnMut(&str) -> Result<parse::WildcardValues, ErrorKind> + 'a;

/// How many jobs a run has, counted without listing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCount {
    /// Every combination (before `pick` and `repeat`).
    pub combinations: u128,
    /// The jobs the run would have: the combinations (or the `pick` of them) times `repeat`.
    pub jobs: u128,
}

impl RunCount {
    /// Whether this many jobs may be queued, and if not, why (the same limits as `expand`).
    pub fn check(&self, allow_large: bool) -> Result<(), RunError> {
        check_size(self.jobs, 1, allow_large)
    }
}

/// Count the jobs of a run without building them: cheap for any size (a product of a million
/// combinations is a few multiplications), for the studio's count as the prompt is typed.
pub fn count_with(spec: &RunSpec, load: &mut WildcardSource<'_>) -> Result<RunCount, RunError> {
    let (_, _, total) = prepare(spec, load)?;
    let picked = match spec.pick {
        Some(n) => total.min(u128::from(n)),
        None => total,
    };
    Ok(RunCount {
        combinations: total,
        jobs: picked.saturating_mul(u128::from(spec.repeat)),
    })
}

/// Expand a run whose wildcards come from `load`.
pub fn expand_with(spec: &RunSpec, load: &mut WildcardSource<'_>) -> Result<Expansion, RunError> {
    let (templates, axis_count, total) = prepare(spec, load)?;
    let (indices, seed) = match spec.pick {
        Some(n) if u128::from(n) < total => {
            let seed = spec.seed.unwrap_or_else(|| fastrand::u64(..));
            (draw(total, n, seed, spec.allow_large)?, Some(seed))
        }
        _ => {
            check_size(total, spec.repeat, spec.allow_large)?;
            // check_size bounds total by MAX_JOBS.
            ((0..total).collect(), None)
        }
    };
    check_size(indices.len() as u128, spec.repeat, spec.allow_large)?;

    let mut jobs = Vec::with_capacity(indices.len() * spec.repeat as usize);
    for index in indices {
        let (prompt, values) = combination(&templates, &spec.axes, axis_count, index);
        for r in 1..=spec.repeat {
            let mut values = values.clone();
            values.repeat = r;
            jobs.push(Job {
                prompt: prompt.clone(),
                values,
            });
        }
    }
    Ok(Expansion {
        jobs,
        combinations: u64::try_from(total).unwrap_or(u64::MAX),
        seed,
    })
}

/// Check the spec, parse every prompt and fill in its wildcards: the templates, the number of
/// axis combinations and the number of all combinations.
fn prepare(
    spec: &RunSpec,
    load: &mut WildcardSource<'_>,
) -> Result<(Vec<Template>, u128, u128), RunError> {
    if spec.prompts.is_empty() {
        return Err(RunError::plain(
            "the run",
            "no prompt to expand",
            "give a prompt, or a --prompts file with at least one line",
        ));
    }
    if spec.repeat == 0 {
        return Err(RunError::plain(
            "--repeat",
            "must be at least 1",
            "--repeat N makes each combination N times",
        ));
    }
    if spec.pick == Some(0) {
        return Err(RunError::plain(
            "--pick",
            "must be at least 1",
            "--pick N draws N of the combinations",
        ));
    }
    let mut seen = Vec::new();
    for axis in &spec.axes {
        if seen.contains(&axis.name.as_str()) {
            return Err(RunError::plain(
                &format!("--axis {}", axis.name),
                format!("the axis {} is given twice", axis.name),
                "give each axis once, with all its values: --axis size=A,B",
            ));
        }
        seen.push(axis.name.as_str());
    }
    let mut templates = Vec::new();
    for (origin, text) in &spec.prompts {
        let mut nodes = parse::parse(text).map_err(|e| RunError::syntax(origin, e))?;
        parse::resolve(&mut nodes, load).map_err(|e| RunError::syntax(origin, e))?;
        let count = count_seq(&nodes).ok_or_else(|| too_many(origin))?;
        templates.push(Template {
            text: text.clone(),
            nodes,
            count,
        });
    }
    let axis_count = spec
        .axes
        .iter()
        .try_fold(1u128, |acc, a| acc.checked_mul(a.values.len() as u128))
        .ok_or_else(|| too_many("the axes"))?;
    let total = templates
        .iter()
        .try_fold(0u128, |acc, t| {
            acc.checked_add(t.count.checked_mul(axis_count)?)
        })
        .ok_or_else(|| too_many("the run"))?;
    Ok((templates, axis_count, total))
}

fn too_many(origin: &str) -> RunError {
    RunError::plain(
        origin,
        "expands to more combinations than can be counted",
        "use fewer choices, or --pick N to draw some of them",
    )
}

/// Refuse a run of `combinations` × `repeat` jobs above the limits.
fn check_size(combinations: u128, repeat: u32, allow_large: bool) -> Result<(), RunError> {
    let jobs = combinations.saturating_mul(u128::from(repeat));
    if jobs > u128::from(MAX_JOBS) {
        return Err(RunError::plain(
            "the run",
            format!("expands to {jobs} jobs, more than easel sends in one run ({MAX_JOBS})"),
            "use --pick N to draw some of the combinations, or split the run",
        ));
    }
    if jobs > u128::from(LARGE_RUN) && !allow_large {
        return Err(RunError::plain(
            "the run",
            format!("expands to {jobs} jobs, over {LARGE_RUN}"),
            "check it with --dry-run, then add --allow-large; or use --pick N to draw fewer",
        ));
    }
    Ok(())
}

/// `n` distinct numbers below `total` (n < total), drawn with `seed`, in increasing order.
fn draw(total: u128, n: u64, seed: u64, allow_large: bool) -> Result<Vec<u128>, RunError> {
    // Refused before drawing: a huge --pick must not allocate first.
    check_size(u128::from(n), 1, allow_large)?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut picked: Vec<u128> = if total <= 4 * u128::from(n) {
        // Dense: a partial shuffle of all of them (total ≤ 4 × MAX_JOBS here).
        let mut all: Vec<u128> = (0..total).collect();
        let n = n as usize;
        for i in 0..n {
            let j = rng.usize(i..all.len());
            all.swap(i, j);
        }
        all.truncate(n);
        all
    } else {
        // Sparse: draw until n distinct (each draw succeeds with probability > 3/4).
        let mut set = std::collections::BTreeSet::new();
        while (set.len() as u64) < n {
            set.insert(rng.u128(..total));
        }
        set.into_iter().collect()
    };
    picked.sort_unstable();
    Ok(picked)
}

/// The prompt and values of combination `index` of the run.
fn combination(
    templates: &[Template],
    axes: &[Axis],
    axis_count: u128,
    mut index: u128,
) -> (String, JobValues) {
    let combination = u64::try_from(index).unwrap_or(u64::MAX);
    let mut chosen = 0;
    for (i, t) in templates.iter().enumerate() {
        let here = t.count * axis_count;
        if index < here {
            chosen = i;
            break;
        }
        index -= here;
    }
    let Some(template) = templates.get(chosen) else {
        return (String::new(), empty_values(0, String::new(), combination));
    };
    let axis_count = axis_count.max(1);
    let (prompt_index, mut axis_index) = (index / axis_count, index % axis_count);
    let mut values = empty_values(chosen + 1, template.text.clone(), combination);
    let mut prompt = String::new();
    nth_seq(&template.nodes, prompt_index, &mut prompt, &mut values);
    let mut axis_values = vec![None; axes.len()];
    for (k, axis) in axes.iter().enumerate().rev() {
        let len = (axis.values.len() as u128).max(1);
        let i = usize::try_from(axis_index % len).unwrap_or(0);
        axis_index /= len;
        axis_values[k] = Some(AxisValue {
            name: axis.name.clone(),
            value: axis.values.get(i).cloned().unwrap_or_default(),
        });
    }
    values.axes = axis_values.into_iter().flatten().collect();
    (prompt, values)
}

fn empty_values(prompt_index: usize, template: String, combination: u64) -> JobValues {
    JobValues {
        prompt_index,
        template,
        combination,
        alternatives: Vec::new(),
        wildcards: Vec::new(),
        axes: Vec::new(),
        repeat: 1,
    }
}

/// The prompts of a `--prompts` file: one per line, blank lines skipped. Each comes with its
/// origin for error messages ("NAME line 3").
pub fn prompts_from_text(name: &str, text: &str) -> Vec<(String, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (format!("{name} line {}", i + 1), l.trim_end().to_string()))
        .collect()
}

#[cfg(test)]
mod tests;
