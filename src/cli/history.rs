//! `easel history`: list, show, export, import, rm, star, stats, doctor.

use crate::config::Settings;
use crate::sanitize;
use crate::store::transfer;
use crate::store::{
    Cursor, GenerationRecord, HistoryStore, Id, Query, SledStore, SpendLine, Status, StoreError,
    UserEdit,
};
use chrono::{DateTime, Local, NaiveDate, TimeZone, Utc};
use clap::Subcommand;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// How `easel history list` orders records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    Date,
    Rating,
}

/// `easel history list`: which records, how many, in which form.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// How many to show (at least 1).
    #[arg(long, short = 'l', default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
    /// Text to look for in prompts: words all must match; 'exact, ^start, end$, !not.
    #[arg(long, short = 'q')]
    pub query: Option<String>,
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    #[arg(long, short = 's', value_enum)]
    pub status: Option<Status>,
    #[arg(long)]
    pub starred: bool,
    /// Only generations rated at least N (1–5).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub min_rating: Option<u8>,
    /// Only generations with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Order: date (newest first) or rating (best first, then newest).
    #[arg(long, value_enum, default_value_t = SortBy::Date)]
    pub sort: SortBy,
    /// Only since this date: 2026-11-01, an RFC 3339 time, or a span such as 7d or 12h.
    #[arg(long)]
    pub since: Option<String>,
    /// Continue from where a previous listing stopped (the cursor it printed on stderr as
    /// "more: --after CURSOR").
    #[arg(long)]
    pub after: Option<String>,
    /// Only the jobs of this run (its id, or any unique start of one, as `easel generate` and
    /// `history show` print it), in run order; the other filters apply, --sort, --query and
    /// --after do not.
    #[arg(long)]
    pub run: Option<String>,
    /// One JSON record per line, and nothing else on stdout; when there is more, the cursor
    /// goes to stderr as "easel: more: --after CURSOR".
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// List generations, newest first (best match first with --query).
    List(ListArgs),
    /// Everything about one generation (the image inline when stdout is a terminal).
    Show {
        /// An id, or any unique start of one.
        id: String,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        no_preview: bool,
    },
    /// Compose one PNG of many generations: thumbnails in a grid, each labelled with its
    /// prompt, model, size, rating and id (for sharing a review); or, with --run, a run's jobs
    /// as a grid labelled with its choices and axes.
    #[command(after_help = "\
Examples:
  easel history sheet --tag keep --out keep.png
  easel history sheet --min-rating 4 --cols 4 --size 384 --out best.png
  easel history sheet bf45 fd22 1ddd --out three.png
  easel history sheet --run 0195a1 --out run.png      # a run as a labelled grid")]
    Sheet(super::sheet::SheetArgs),
    /// What one generation was made from and what was made from it, as a tree.
    Tree {
        /// An id, or any unique start of one.
        id: String,
    },
    /// Write all history as JSON lines (paths relative to the data folder).
    Export {
        /// File to write (default: standard output).
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
    /// Add the records of an export; records already present are skipped.
    Import { file: PathBuf },
    /// Move generations to the trash (`restore` brings them back); --purge deletes them and
    /// their image files for good. Asks first when run from a terminal, unless --yes.
    Rm {
        #[arg(required = true)]
        ids: Vec<String>,
        /// Delete for good, not to the trash.
        #[arg(long)]
        purge: bool,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// What is in the trash, newest first.
    Trash {
        #[arg(long)]
        json: bool,
    },
    /// Bring generations back from the trash.
    Restore {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Delete for good what is in the trash (with --older-than, only what has been there that
    /// long: 30d, 12h, or a date).
    EmptyTrash {
        #[arg(long)]
        older_than: Option<String>,
    },
    /// Star generations (or unstar them with --off).
    Star {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        off: bool,
    },
    /// Rate generations 0 (not rated) to 5: `easel history rate ID… N`.
    Rate {
        /// Ids (or unique starts of ids), then the rating.
        #[arg(required = true, num_args = 2..)]
        ids_then_rating: Vec<String>,
    },
    /// Add and remove tags: `easel history tag ID… +keep -draft`.
    Tag {
        /// Ids (or unique starts of ids), then +TAG to add and -TAG to remove.
        #[arg(required = true, num_args = 2.., allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write the notes of a generation (an empty TEXT clears them).
    Note { id: String, text: String },
    /// Every tag in use, with how many generations carry it.
    Tags,
    /// Counts by status and model, disk used, and total estimated spend.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Look for damaged records and missing files. --repair fixes the index, sets damaged
    /// records aside, records missing images as gone, makes lost records again from the image
    /// sidecars, and rebuilds a database that no longer opens from them (keeping the old one).
    Doctor {
        #[arg(long)]
        repair: bool,
        /// With --repair: also remove the records whose every image is gone.
        #[arg(long, requires = "repair")]
        prune_missing: bool,
    },
}

/// Parse `--since`: a date, a time, or a span back from now.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let midnight = d.and_hms_opt(0, 0, 0).ok_or("bad date")?;
        return Local
            .from_local_datetime(&midnight)
            .earliest()
            .map(|x| x.with_timezone(&Utc))
            .ok_or_else(|| format!("{t} is not a local time"));
    }
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num.parse().map_err(|_| {
        format!(
            "\"{t}\" is not a date: write 2026-11-01, an RFC 3339 time, or a span like 7d or 12h"
        )
    })?;
    let span = match unit {
        "m" | "min" => chrono::Duration::minutes(n),
        "h" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        "w" => chrono::Duration::weeks(n),
        _ => {
            return Err(format!(
                "\"{t}\" is not a date: write 2026-11-01, an RFC 3339 time, or a span like 7d or 12h"
            ));
        }
    };
    Ok(now - span)
}

fn status_icon(s: Status) -> &'static str {
    match s {
        Status::Queued => "·",
        Status::Running => "▶",
        Status::Succeeded => "✓",
        Status::Failed => "✗",
        Status::Cancelled => "–",
        Status::Interrupted => "!",
    }
}

/// One line of `history list`.
pub fn list_line(r: &GenerationRecord, width: usize) -> String {
    let when = r.created.with_timezone(&Local).format("%Y-%m-%d %H:%M");
    let star = if r.starred { "★" } else { " " };
    let model = sanitize::truncate(&sanitize::line(&r.model), 16).into_owned();
    let head = format!(
        "{}  {when}  {} {star} {:<16}  ",
        r.id.short(),
        status_icon(r.status),
        model
    );
    let room = width.saturating_sub(head.chars().count()).max(10);
    format!(
        "{head}{}",
        sanitize::truncate(&sanitize::line(&r.prompt), room)
    )
}

/// Pretty JSON on stdout, with anything that could drive a terminal escaped.
fn print_json(value: &impl serde::Serialize) -> Result<(), StoreError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| StoreError::Invalid(e.to_string()))?;
    println!("{}", sanitize::json(&text));
    Ok(())
}

fn out_err(e: std::io::Error) -> StoreError {
    StoreError::Io(format!("could not write the output: {e}"))
}

/// What the store wants the user to know: an open data folder, jobs whose process is gone.
fn notes(store: &dyn HistoryStore) {
    for w in store.warnings() {
        eprintln!("easel: warning: {}", sanitize::line(&w));
    }
    for id in store.orphaned() {
        eprintln!(
            "easel: job {} was running, but its process is gone: marked interrupted (retry it with r in the studio)",
            id.short()
        );
    }
}

/// Open the history. A command that only reads (`reads_only`) falls back to a read-only copy
/// when the data folder cannot be written (a read-only mount, a full disk); otherwise, or when
/// that fails too, the error says why.
fn open(data_dir: &std::path::Path, reads_only: bool) -> Result<SledStore, StoreError> {
    match SledStore::open(data_dir) {
        Ok(s) => Ok(s),
        Err(StoreError::Io(why)) if reads_only => match SledStore::open_read_only(data_dir) {
            Ok(s) => {
                eprintln!("easel: warning: {}", sanitize::line(&why));
                Ok(s)
            }
            Err(e) => Err(StoreError::Io(format!(
                "{why}; and a read-only copy could not be opened either: {e}"
            ))),
        },
        Err(e) => Err(e),
    }
}

/// Run a `history` command, through the data folder's service (started if needed) unless
/// the service is turned off.
pub fn run(settings: &Settings, action: HistoryAction) -> i32 {
    if settings.file.service.effective_mode() == crate::config::ServiceMode::InProcess
        || matches!(action, HistoryAction::Doctor { .. })
    {
        return run_in_process(settings, action);
    }
    let reads_only = is_read_only(&action);
    let name = format!("easel {} history", env!("CARGO_PKG_VERSION"));
    match crate::service::remote::RemoteStore::connect(settings, &name, true) {
        Ok(store) => run_on(settings, std::sync::Arc::new(store), action, true),
        // A read works without the service where the service cannot run (a read-only mount,
        // a full disk): straight from the store, read-only.
        Err(e) if reads_only => match open(&settings.paths.data_dir, true) {
            Ok(store) => {
                eprintln!(
                    "easel: warning: reading without the service: {}",
                    sanitize::line(&e.to_string())
                );
                run_on(settings, std::sync::Arc::new(store), action, false)
            }
            // A service that could not start said why (a damaged database names its repair);
            // otherwise both reasons count (a busy older service holds the folder, say).
            Err(local) => {
                let message = match e {
                    crate::service::ServiceError::StartFailed { .. } => e.to_string(),
                    _ => format!("{e}; reading the history directly failed too: {local}"),
                };
                super::report(&message, crate::service::hint(&e));
                1
            }
        },
        Err(e) => {
            super::report(&e.to_string(), crate::service::hint(&e));
            1
        }
    }
}

fn is_read_only(action: &HistoryAction) -> bool {
    matches!(
        action,
        HistoryAction::List(_)
            | HistoryAction::Tags
            | HistoryAction::Trash { .. }
            | HistoryAction::Show { .. }
            | HistoryAction::Tree { .. }
            | HistoryAction::Sheet(_)
            | HistoryAction::Stats { .. }
            | HistoryAction::Export { .. }
    )
}

/// Run a `history` command on the store opened here (the data folder to itself).
pub fn run_in_process(settings: &Settings, action: HistoryAction) -> i32 {
    if let HistoryAction::Doctor {
        repair,
        prune_missing,
    } = action
    {
        return doctor_command(&settings.paths.data_dir, repair, prune_missing);
    }
    let reads_only = is_read_only(&action);
    let store: std::sync::Arc<dyn HistoryStore> = match open(&settings.paths.data_dir, reads_only) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            super::report(&e.to_string(), None);
            return 1;
        }
    };
    run_on(settings, store, action, false)
}

fn run_on(
    settings: &Settings,
    store: std::sync::Arc<dyn HistoryStore>,
    action: HistoryAction,
    through_service: bool,
) -> i32 {
    // Through the service, its jobs are alive: none is an orphan to report.
    if through_service {
        for w in store.warnings() {
            eprintln!("easel: warning: {}", sanitize::line(&w));
        }
    } else {
        notes(store.as_ref());
    }
    let result = match action {
        HistoryAction::List(args) => list(store.as_ref(), args),
        HistoryAction::Show {
            id,
            json,
            no_preview,
        } => show(
            store.as_ref(),
            &settings.paths.data_dir,
            &id,
            json,
            no_preview,
        ),
        HistoryAction::Tree { id } => super::lineage::tree_command(store.as_ref(), &id),
        HistoryAction::Sheet(args) => super::sheet::run(
            store.as_ref(),
            &settings.paths.data_dir,
            &settings.thumbs(),
            args,
        ),
        HistoryAction::Export { out } => export(store.as_ref(), out),
        HistoryAction::Import { file } => import(store.as_ref(), settings, &file),
        HistoryAction::Rm { ids, purge, yes } => {
            let asked = !yes && std::io::stdin().is_terminal();
            if !yes && !confirm_rm(ids.len(), purge) {
                eprintln!("easel: nothing deleted");
                return 1;
            }
            // A running job's record goes only when the user said so (--yes, or yes asked).
            let cancel_running = yes || asked;
            if purge {
                purge_records(store.as_ref(), &settings.paths.data_dir, &ids)
            } else {
                each(store.as_ref(), &ids, |s, id| {
                    s.trash_job(id, cancel_running)?;
                    println!(
                        "moved {} to the trash (easel history restore {} brings it back)",
                        id.short(),
                        id.short()
                    );
                    Ok(())
                })
            }
        }
        HistoryAction::Trash { json } => list_trash(store.as_ref(), json),
        HistoryAction::Restore { ids } => restore(store.as_ref(), &ids),
        HistoryAction::EmptyTrash { older_than } => empty_trash(store.as_ref(), older_than),
        HistoryAction::Star { ids, off } => each(store.as_ref(), &ids, |s, id| {
            s.set_starred(id, !off)?;
            println!(
                "{} {}",
                if off { "unstarred" } else { "starred" },
                id.short()
            );
            Ok(())
        }),
        HistoryAction::Rate { ids_then_rating } => rate(store.as_ref(), ids_then_rating),
        HistoryAction::Tag { args } => tag(store.as_ref(), args),
        HistoryAction::Note { id, text } => note(store.as_ref(), &id, text),
        HistoryAction::Tags => list_tags(store.as_ref()),
        HistoryAction::Stats { json } => stats(store.as_ref(), settings, json),
        HistoryAction::Doctor { .. } => Ok(()),
    };
    for bad in store.skipped() {
        eprintln!(
            "easel: warning: skipped a damaged record ({}): {} — `easel history doctor` can repair",
            bad.key,
            sanitize::line(&bad.error)
        );
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            super::report(&e.to_string(), None);
            1
        }
    }
}

fn list(store: &dyn HistoryStore, args: ListArgs) -> Result<(), StoreError> {
    let ListArgs {
        limit,
        query: text,
        model,
        status,
        starred,
        min_rating,
        tag,
        sort,
        since,
        after,
        run,
        json,
    } = args;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let since = since
        .map(|s| parse_since(&s, Utc::now()))
        .transpose()
        .map_err(StoreError::Invalid)?;
    let cursor = match after {
        Some(c) => Some(Cursor::decode(&c).ok_or_else(|| {
            StoreError::Invalid(format!(
                "\"{}\" is not a cursor from an earlier listing",
                sanitize::line(&c)
            ))
        })?),
        None => None,
    };
    let mut q = Query {
        text: None,
        model,
        status,
        starred,
        since,
        until: None,
        min_rating,
        tag,
        by_rating: sort == SortBy::Rating,
    };
    // The studio's search terms work in --query too (`tag:keep rating:4 fox`); flags win.
    if let Some(text) = text {
        let mut terms = Query::default();
        let rest = crate::store::query::take_search_terms(&text, &mut terms);
        q.tag = q.tag.or(terms.tag);
        q.min_rating = q.min_rating.or(terms.min_rating);
        q.by_rating |= terms.by_rating;
        q.text = (!rest.trim().is_empty()).then_some(rest);
    }
    if let Some(run) = run {
        return list_run(store, &q, &run, limit, json);
    }
    let page = store.page(&q, cursor, limit)?;
    let mut out = std::io::stdout().lock();
    let width = crossterm::terminal::size()
        .map(|(w, _)| usize::from(w))
        .unwrap_or(100);
    for r in &page.records {
        if json {
            let line = serde_json::to_string(r).map_err(|e| StoreError::Invalid(e.to_string()))?;
            writeln!(out, "{}", sanitize::json(&line)).map_err(out_err)?;
        } else {
            writeln!(out, "{}", list_line(r, width)).map_err(out_err)?;
        }
    }
    if let Some(next) = page.next {
        // Never on stdout: every line there is a record.
        if json {
            eprintln!("easel: more: --after {}", next.encode());
        } else if std::io::stdout().is_terminal() {
            eprintln!("… more: --after {}", next.encode());
        }
    }
    if page.records.is_empty() && !json {
        eprintln!(
            "no generations{}",
            if q.is_everything() {
                " yet: try easel generate \"a lighthouse at dusk\""
            } else {
                " match"
            }
        );
    }
    Ok(())
}

/// The jobs of one run, found by a unique start of its id, in run order.
pub fn run_records(
    store: &dyn HistoryStore,
    text: &str,
) -> Result<(Id, Vec<GenerationRecord>), StoreError> {
    let want = text.trim().to_ascii_lowercase();
    // Dashes are allowed (as in a printed uuid) but are no digits: "----" starts every id.
    let digits = want.chars().filter(char::is_ascii_hexdigit).count();
    if digits < 4 || !want.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(StoreError::Invalid(format!(
            "\"{}\" is not a run id (give at least 4 of its hex digits)",
            sanitize::line(text)
        )));
    }
    let want = want.replace('-', "");
    let mut runs: Vec<Id> = Vec::new();
    let mut records = Vec::new();
    store.for_each(&mut |r| {
        if let Some(info) = &r.run
            && info.id.to_string().replace('-', "").starts_with(&want)
        {
            if !runs.contains(&info.id) {
                runs.push(info.id);
            }
            records.push(r);
        }
        Ok(())
    })?;
    match runs.as_slice() {
        [] => Err(StoreError::NotFound(format!(
            "run {}",
            sanitize::line(text)
        ))),
        [one] => {
            let one = *one;
            records.sort_by_key(|r| r.run.as_ref().map_or(0, |i| i.index));
            Ok((one, records))
        }
        _ => {
            let mut named: Vec<String> = runs
                .iter()
                .take(5)
                .map(|r| r.to_string().replace('-', "").chars().take(12).collect())
                .collect();
            if runs.len() > named.len() {
                named.push("…".into());
            }
            Err(StoreError::Invalid(format!(
                "\"{}\" starts {} run ids ({}): give more of it",
                sanitize::line(text),
                runs.len(),
                named.join(", ")
            )))
        }
    }
}

/// `history list --run ID`.
fn list_run(
    store: &dyn HistoryStore,
    q: &Query,
    text: &str,
    limit: usize,
    json: bool,
) -> Result<(), StoreError> {
    let (run, records) = run_records(store, text)?;
    let keep = |r: &GenerationRecord| {
        q.status.is_none_or(|s| r.status == s)
            && q.model.as_deref().is_none_or(|m| r.model == m)
            && (!q.starred || r.starred)
            && q.min_rating.is_none_or(|m| r.rating >= m)
            && q.tag
                .as_deref()
                .is_none_or(|t| r.tags.iter().any(|x| x == t))
            && q.since.is_none_or(|s| r.created >= s)
    };
    let mut out = std::io::stdout().lock();
    let width = crossterm::terminal::size()
        .map(|(w, _)| usize::from(w))
        .unwrap_or(100);
    let of = records
        .first()
        .and_then(|r| r.run.as_ref())
        .map_or(0, |i| i.of);
    if !json {
        writeln!(out, "run {run} · {} of {of} jobs in history", records.len()).map_err(out_err)?;
    }
    for r in records.iter().filter(|r| keep(r)).take(limit) {
        if json {
            let line = serde_json::to_string(r).map_err(|e| StoreError::Invalid(e.to_string()))?;
            writeln!(out, "{}", sanitize::json(&line)).map_err(out_err)?;
        } else {
            let (index, values) = r
                .run
                .as_ref()
                .map(|i| (i.index, i.values_label()))
                .unwrap_or_default();
            writeln!(out, "{index:>4}/{of}  {}", sanitize::line(&values)).map_err(out_err)?;
            writeln!(out, "      {}", list_line(r, width.saturating_sub(6))).map_err(out_err)?;
        }
    }
    Ok(())
}

/// `history rm` from a terminal asks first; from a script (stdin not a terminal) it does not.
fn confirm_rm(count: usize, purge: bool) -> bool {
    if !std::io::stdin().is_terminal() {
        return true;
    }
    let what = if purge {
        "Delete {n} generation(s) and their image files for good"
    } else {
        "Move {n} generation(s) to the trash"
    };
    eprint!("{}? [y/N] ", what.replace("{n}", &count.to_string()));
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

/// `rm --purge`: delete for good, saying which files were kept and why (only a record's own
/// files in the images folder are removed).
fn purge_records(
    store: &dyn HistoryStore,
    data_dir: &std::path::Path,
    ids: &[String],
) -> Result<(), StoreError> {
    each(store, ids, |s, id| {
        let old = s.delete(id)?;
        println!("deleted {}", id.short());
        for o in old.iter().flat_map(|r| r.outputs.iter()) {
            if let Err(why) = crate::store::files::deletable(data_dir, &id, o) {
                eprintln!("easel: {}", sanitize::line(&why));
            }
        }
        Ok(())
    })
}

fn restore(store: &dyn HistoryStore, ids: &[String]) -> Result<(), StoreError> {
    for text in ids {
        let id = store.resolve_trashed(text).map_err(|e| match e {
            StoreError::NotFound(_) => StoreError::Invalid(format!(
                "{} is not in the trash (`easel history trash` lists what is there)",
                sanitize::line(text)
            )),
            other => other,
        })?;
        let r = store.restore(id)?;
        println!("restored {}", r.id.short());
    }
    Ok(())
}

fn list_trash(store: &dyn HistoryStore, json: bool) -> Result<(), StoreError> {
    let items = store.trashed()?;
    let mut out = std::io::stdout().lock();
    for (when, r) in &items {
        if json {
            let line = serde_json::json!({ "trashed": when, "record": r }).to_string();
            writeln!(out, "{}", sanitize::json(&line)).map_err(out_err)?;
        } else {
            writeln!(
                out,
                "{}  deleted {}  {}",
                r.id.short(),
                when.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
                sanitize::truncate(&sanitize::line(&r.prompt), 60)
            )
            .map_err(out_err)?;
        }
    }
    if items.is_empty() && !json {
        eprintln!("the trash is empty");
    }
    Ok(())
}

fn empty_trash(store: &dyn HistoryStore, older_than: Option<String>) -> Result<(), StoreError> {
    let now = Utc::now();
    let age = older_than
        .map(|t| parse_since(&t, now).map(|since| now - since))
        .transpose()
        .map_err(StoreError::Invalid)?;
    let n = store.empty_trash(age)?;
    println!("deleted {n} generation(s) from the trash for good");
    Ok(())
}

/// A rating as stars: ★★★☆☆.
fn stars(n: u8) -> String {
    let n = usize::from(n.min(5));
    format!("{}{}", "★".repeat(n), "☆".repeat(5 - n))
}

fn rate(store: &dyn HistoryStore, mut args: Vec<String>) -> Result<(), StoreError> {
    let Some(last) = args.pop() else {
        return Err(StoreError::Invalid("give ids, then a rating 0–5".into()));
    };
    let rating: u8 = last.parse().ok().filter(|n| *n <= 5).ok_or_else(|| {
        StoreError::Invalid(format!(
            "\"{}\" is not a rating: give ids, then a number 0 (not rated) to 5",
            sanitize::line(&last)
        ))
    })?;
    each(store, &args, |s, id| {
        s.edit(id, &UserEdit::Rating(rating))?;
        println!("{} {}", id.short(), stars(rating));
        Ok(())
    })
}

fn note(store: &dyn HistoryStore, id: &str, text: String) -> Result<(), StoreError> {
    let id = store.resolve(id)?;
    store.edit(id, &UserEdit::Notes(text))?;
    println!("noted {}", id.short());
    Ok(())
}

fn list_tags(store: &dyn HistoryStore) -> Result<(), StoreError> {
    for (t, n) in store.tags()? {
        println!("{n:>6}  {}", sanitize::line(&t));
    }
    Ok(())
}

fn tag(store: &dyn HistoryStore, args: Vec<String>) -> Result<(), StoreError> {
    let (mut add, mut remove, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for a in args {
        if let Some(t) = a.strip_prefix('+') {
            add.push(t.to_string());
        } else if let Some(t) = a.strip_prefix('-') {
            remove.push(t.to_string());
        } else {
            ids.push(a);
        }
    }
    if ids.is_empty() || (add.is_empty() && remove.is_empty()) {
        return Err(StoreError::Invalid(
            "give ids, then +TAG to add and -TAG to remove (easel history tag ab12 +keep -draft)"
                .into(),
        ));
    }
    let edit = UserEdit::Retag { add, remove };
    each(store, &ids, |s, id| {
        let r = s.edit(id, &edit)?;
        println!(
            "{} tags: {}",
            id.short(),
            sanitize::line(&r.tags.join(", "))
        );
        Ok(())
    })
}

fn show(
    store: &dyn HistoryStore,
    data_dir: &std::path::Path,
    text: &str,
    json: bool,
    no_preview: bool,
) -> Result<(), StoreError> {
    let id = store.resolve(text)?;
    let r = store
        .get(id)?
        .ok_or_else(|| StoreError::NotFound(text.to_string()))?;
    if json {
        return print_json(&r);
    }
    let p = &r.params;
    let line = |k: &str, v: &str| println!("{k:<15}{}", sanitize::line(v));
    line("id", &r.id.to_string());
    for (k, v) in super::lineage::lines(store, &r) {
        line(k, &v);
    }
    line("status", &format!("{} {}", status_icon(r.status), r.status));
    if let Some(run) = &r.run {
        line(
            "run",
            &format!("{} · job {} of {}", run.id, run.index, run.of),
        );
        line("run values", &run.values_label());
        if run.values.template != r.prompt {
            line("run template", &run.values.template);
        }
    }
    line("model", &r.model);
    line(
        "provider",
        &format!(
            "{}{}",
            r.provider,
            if r.demo {
                " (DEMO: offline demo backend)"
            } else {
                ""
            }
        ),
    );
    line("created", &r.created.with_timezone(&Local).to_rfc3339());
    if let (Some(s), Some(f)) = (r.started, r.finished) {
        line(
            "took",
            &format!("{:.1} s", (f - s).num_milliseconds() as f64 / 1000.0),
        );
    }
    line("attempts", &r.attempts.to_string());
    let params: Vec<String> = [
        ("size", p.size.clone()),
        ("quality", p.quality.clone()),
        ("n", Some(p.n.to_string())),
        ("background", p.background.clone()),
        ("format", p.output_format.clone()),
        ("compression", p.output_compression.map(|c| c.to_string())),
        ("moderation", p.moderation.clone()),
        ("style", p.style.clone()),
        (
            "stream",
            p.stream
                .then(|| format!("partials {}", p.partial_images.unwrap_or(0))),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
    .collect();
    line("parameters", &params.join("  "));
    if let Some(c) = r.cost_usd {
        line("cost", &format!("${c:.4} (estimated)"));
    }
    if let Some(u) = &r.usage {
        line(
            "usage",
            &format!(
                "{} in, {} out tokens",
                u.input_tokens.unwrap_or(0),
                u.output_tokens.unwrap_or(0)
            ),
        );
    }
    if let Some(id) = &r.request_id {
        line("request id", id);
    }
    if r.starred {
        line("starred", "★");
    }
    if r.rating > 0 {
        line("rating", &format!("{} ({}/5)", stars(r.rating), r.rating));
    }
    if !r.tags.is_empty() {
        line("tags", &r.tags.join(", "));
    }
    if !r.notes.is_empty() {
        println!("notes");
        for l in sanitize::text(&r.notes).lines() {
            println!("  {l}");
        }
    }
    println!("prompt");
    for l in sanitize::text(&r.prompt).lines() {
        println!("  {l}");
    }
    if let Some(rp) = &r.revised_prompt {
        println!("revised prompt");
        for l in sanitize::text(rp).lines() {
            println!("  {l}");
        }
    }
    if let Some(e) = &r.error {
        line("error", &e.message);
        if let Some(h) = &e.hint {
            line("hint", h);
        }
    }
    for (i, o) in r.outputs.iter().enumerate() {
        let abs = if o.path.is_relative() {
            data_dir.join(&o.path)
        } else {
            o.path.clone()
        };
        let missing = if abs.is_file() {
            ""
        } else if r.missing.contains(&o.path) {
            "  (deleted from disk; noted in history)"
        } else {
            "  (missing: `easel history doctor`)"
        };
        line(
            &format!("image {}", i + 1),
            &format!(
                "{}  {}x{} {} {} KB{missing}",
                abs.display(),
                o.width,
                o.height,
                o.format,
                o.bytes / 1024
            ),
        );
        if !no_preview && std::io::stdout().is_terminal() && missing.is_empty() {
            let rows = crossterm::terminal::size()
                .map(|(_, r)| u32::from(r))
                .unwrap_or(24);
            if let Err(e) =
                super::picture::print_file(&abs, 60, rows.saturating_sub(4).clamp(5, 30))
            {
                super::report(&e, None);
            }
        }
    }
    Ok(())
}

fn export(store: &dyn HistoryStore, out: Option<PathBuf>) -> Result<(), StoreError> {
    let n = match &out {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| {
                StoreError::Io(crate::store::files::describe_io_error("create", &tmp, &e))
            })?);
            let n = transfer::export(store, &mut file)?;
            drop(file);
            std::fs::rename(&tmp, path).map_err(|e| {
                StoreError::Io(crate::store::files::describe_io_error("write", path, &e))
            })?;
            n
        }
        None => transfer::export(store, &mut std::io::stdout().lock())?,
    };
    eprintln!("exported {n} record(s)");
    Ok(())
}

fn import(store: &dyn HistoryStore, settings: &Settings, file: &PathBuf) -> Result<(), StoreError> {
    let f = std::fs::File::open(file)
        .map_err(|e| StoreError::Io(crate::store::files::describe_io_error("open", file, &e)))?;
    let report = transfer::import(
        store,
        &settings.paths.data_dir,
        &mut std::io::BufReader::new(f),
    )?;
    let shown = sanitize::line(&file.display().to_string()).into_owned();
    for (line, why) in &report.refused {
        eprintln!("easel: {shown}:{line}: refused: {}", sanitize::line(why));
    }
    println!(
        "imported {}, already present {}, refused {}",
        report.imported,
        report.present,
        report.refused.len()
    );
    if report.copied > 0 {
        println!(
            "copied {} image(s) from outside the data folder into its images folder",
            report.copied
        );
    }
    if report.refused.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{} record(s) were refused",
            report.refused.len()
        )))
    }
}

fn each(
    store: &dyn HistoryStore,
    ids: &[String],
    mut f: impl FnMut(&dyn HistoryStore, crate::store::Id) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut failed = None;
    for text in ids {
        let r = store.resolve(text).and_then(|id| f(store, id));
        if let Err(e) = r {
            super::report(&e.to_string(), None);
            failed = Some(e);
        }
    }
    match failed {
        Some(_) => Err(StoreError::Invalid(format!(
            "{} of {} id(s) failed",
            ids.len(),
            ids.len()
        ))),
        None => Ok(()),
    }
}

/// "$1.23 (0.80 from usage, 0.43 estimated; 5 jobs)".
fn spend_text(l: &SpendLine) -> String {
    if l.jobs == 0 {
        return "$0.00".into();
    }
    format!(
        "${:.2}  ({:.2} from usage, {:.2} estimated; {} job{})",
        l.usd,
        l.from_usage_usd,
        l.estimated_usd,
        l.jobs,
        if l.jobs == 1 { "" } else { "s" }
    )
}

fn stats(store: &dyn HistoryStore, settings: &Settings, json: bool) -> Result<(), StoreError> {
    let s = store.stats()?;
    if json {
        // The totals, the spend by day, month and model, and today's and this month's against
        // the budgets.
        let mut v = serde_json::to_value(&s).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let now = Utc::now();
        let b = &settings.file.budget;
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "budget".into(),
                serde_json::json!({
                    "daily_usd": b.daily_usd,
                    "monthly_usd": b.monthly_usd,
                    "confirm_above_usd": b.confirm_above_usd,
                    "today": crate::store::spend::day_key(now),
                    "spent_today": s.spend.day(now),
                    "month": crate::store::spend::month_key(now),
                    "spent_this_month": s.spend.month(now),
                }),
            );
        }
        return print_json(&v);
    }
    println!("generations  {}", s.total);
    for (status, n) in &s.by_status {
        println!("  {status:<12}{n}");
    }
    println!("models");
    for (model, n) in &s.by_model {
        println!("  {:<24}{n}", sanitize::line(model));
    }
    println!(
        "images       {} ({:.1} MB)",
        s.images,
        s.image_bytes as f64 / 1e6
    );
    println!("database     {:.1} MB", s.database_bytes as f64 / 1e6);
    let total = s
        .spend
        .by_month
        .values()
        .fold(SpendLine::default(), |mut a, l| {
            a.usd += l.usd;
            a.from_usage_usd += l.from_usage_usd;
            a.estimated_usd += l.estimated_usd;
            a.jobs += l.jobs;
            a
        });
    println!("spend        {}", spend_text(&total));
    let budget = &settings.file.budget;
    let now = Utc::now();
    let (today, month) = (s.spend.day(now), s.spend.month(now));
    let of = |limit: Option<f64>| limit.map(|l| format!(" of ${l:.2}")).unwrap_or_default();
    println!(
        "  today      {}{}",
        spend_text(&today),
        of(budget.daily_usd)
    );
    println!(
        "  this month {}{}",
        spend_text(&month),
        of(budget.monthly_usd)
    );
    let section = |name: &str,
                   lines: &std::collections::BTreeMap<String, SpendLine>,
                   newest_first: bool,
                   max: usize| {
        if lines.is_empty() {
            return;
        }
        println!("spend by {name}");
        let mut rows: Vec<_> = lines.iter().collect();
        if newest_first {
            rows.reverse();
        }
        for (k, l) in rows.into_iter().take(max) {
            println!("  {:<24}{}", sanitize::line(k), spend_text(l));
        }
    };
    section("day (latest 14)", &s.spend.by_day, true, 14);
    section("month", &s.spend.by_month, true, usize::MAX);
    section("model", &s.spend.by_model, false, usize::MAX);
    Ok(())
}

/// `easel history doctor`: opened here rather than in `run`, because a repair must work on a
/// database that no longer opens.
fn doctor_command(data_dir: &std::path::Path, repair: bool, prune_missing: bool) -> i32 {
    match open(data_dir, !repair) {
        Ok(store) => {
            notes(&store);
            match store.doctor(repair) {
                Ok(report) => {
                    let code = doctor(&store, &report, repair);
                    if prune_missing {
                        match store.prune_missing() {
                            Ok(gone) => println!(
                                "removed {} record(s) whose every image is gone",
                                gone.len()
                            ),
                            Err(e) => {
                                super::report(&e.to_string(), None);
                                return 1;
                            }
                        }
                    }
                    code
                }
                Err(StoreError::Corrupt(why)) if repair => {
                    drop(store);
                    rebuild(data_dir, &why)
                }
                Err(e) => {
                    super::report(&e.to_string(), None);
                    1
                }
            }
        }
        Err(StoreError::Corrupt(why)) if repair => rebuild(data_dir, &why),
        Err(e) => {
            super::report(&e.to_string(), None);
            1
        }
    }
}

/// Make history again from the image sidecars, keeping the damaged database.
fn rebuild(data_dir: &std::path::Path, why: &str) -> i32 {
    println!("{}", sanitize::line(why));
    match crate::store::SledStore::rebuild(data_dir) {
        Ok((store, recovered, moved)) => {
            if let Some(moved) = moved {
                println!(
                    "moved the damaged database to {} (kept: nothing was deleted)",
                    sanitize::line(&moved.display().to_string())
                );
            }
            println!(
                "rebuilt the history from the image sidecars: recovered {recovered} record(s) ({} in history now)",
                store.len()
            );
            println!(
                "generations that made no image (failed, cancelled), stars and tags are not in sidecars and could not be recovered"
            );
            0
        }
        Err(e) => {
            super::report(&e.to_string(), None);
            1
        }
    }
}

fn doctor(store: &dyn HistoryStore, report: &crate::store::DoctorReport, repair: bool) -> i32 {
    for id in &report.orphaned {
        println!(
            "job {} was running, but its process is gone: marked interrupted",
            id.short()
        );
    }
    for b in &report.bad_records {
        println!("damaged record {}: {}", b.key, sanitize::line(&b.error));
    }
    for (id, path) in &report.missing_files {
        println!(
            "missing file for {}: {}{}",
            id.short(),
            sanitize::line(&path.display().to_string()),
            if repair {
                " (now recorded as gone)"
            } else {
                ""
            }
        );
    }
    for path in &report.temporary_files {
        let what = if repair {
            "removed an unfinished write"
        } else {
            "unfinished write (removed by --repair)"
        };
        println!("{what}: {}", sanitize::line(&path.display().to_string()));
    }
    for path in &report.unreferenced_files {
        println!(
            "file with no record: {}",
            sanitize::line(&path.display().to_string())
        );
    }
    if report.stale_summaries > 0 {
        println!("index entries out of date: {}", report.stale_summaries);
    }
    if report.count_mismatch {
        println!("the stored record count is out of date");
    }
    if report.orphan_entries > 0 {
        println!("index entries without a record: {}", report.orphan_entries);
    }
    if report.recovered > 0 {
        println!(
            "recovered {} record(s) from the sidecars of images that had none",
            report.recovered
        );
    } else if report.recoverable > 0 {
        println!(
            "{} record(s) lost from history can be made again from their images' sidecars",
            report.recoverable
        );
    }
    if report.is_clean() {
        println!("history is healthy ({} generations)", store.len());
        0
    } else if repair {
        println!(
            "repaired: damaged records moved aside, index rebuilt, missing images recorded as gone"
        );
        0
    } else {
        println!(
            "run `easel history doctor --repair` to fix the index, set damaged records aside and record missing images as gone (add --prune-missing to remove records left with no image)"
        );
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_need_four_hex_digits_and_an_ambiguous_start_names_the_runs() {
        #![allow(clippy::unwrap_used)]
        use crate::store::{GenerationRecord, RunInfo};
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let runs = [
            Id::parse("aaaa1111000000000000000000000000").unwrap(),
            Id::parse("aaaa2222000000000000000000000000").unwrap(),
        ];
        for (n, run) in runs.iter().enumerate() {
            let mut r = GenerationRecord::queued(
                Id::from_uuid(uuid::Uuid::from_u128(n as u128 + 1)),
                crate::api::GenerationParams::default(),
                "demo",
                true,
                Utc::now(),
            );
            r.status = crate::store::Status::Succeeded;
            r.run = Some(RunInfo {
                id: *run,
                index: 1,
                of: 1,
                values: crate::runs::JobValues {
                    prompt_index: 1,
                    template: "a fox".into(),
                    combination: 0,
                    alternatives: vec![],
                    wildcards: vec![],
                    axes: vec![],
                    repeat: 1,
                },
            });
            store.put(&r).unwrap();
        }
        // Dashes are no digits: "----" is no start of a run id (it used to match every run).
        for text in ["----", "a-a-a", "-aaa"] {
            let e = run_records(&store, text).unwrap_err().to_string();
            assert!(e.contains("is not a run id"), "{text}: {e}");
        }
        let e = run_records(&store, "aaaa").unwrap_err().to_string();
        assert!(
            e.contains("starts 2 run ids") && e.contains("aaaa1111") && e.contains("aaaa2222"),
            "{e}"
        );
        let (one, records) = run_records(&store, "aaaa-2").unwrap();
        assert_eq!((one, records.len()), (runs[1], 1));
    }

    #[test]
    fn since_forms() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("7d", now).unwrap(),
            now - chrono::Duration::days(7)
        );
        assert_eq!(
            parse_since("12h", now).unwrap(),
            now - chrono::Duration::hours(12)
        );
        assert_eq!(
            parse_since("2026-11-01T00:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert!(parse_since("2026-11-01", now).is_ok());
        assert!(
            parse_since("yesterday", now)
                .unwrap_err()
                .contains("not a date")
        );
        assert!(parse_since("5x", now).is_err());
    }
}
