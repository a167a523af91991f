//! History queries: filters, fuzzy text search over prompts, and newest-first pages with a
//! cursor. The in-memory [`Index`] holds one small entry per record so that filtering and fuzzy
//! matching 100,000 prompts never touches the database.

use super::{Id, Status};
use chrono::{DateTime, Utc};
use nucleo_matcher::pattern::{AtomKind, CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};

/// What to show.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Query {
    /// Fuzzy text matched against prompts (results ordered by match quality, then newest).
    pub text: Option<String>,
    pub model: Option<String>,
    pub status: Option<Status>,
    pub starred: bool,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only records rated at least this (1–5).
    pub min_rating: Option<u8>,
    /// Only records with this tag.
    pub tag: Option<String>,
    /// Best rated first (then newest) instead of newest first.
    pub by_rating: bool,
}

impl Query {
    pub fn has_text(&self) -> bool {
        self.text.as_deref().is_some_and(|t| !t.trim().is_empty())
    }

    pub fn is_everything(&self) -> bool {
        !self.has_text()
            && self.model.is_none()
            && self.status.is_none()
            && !self.starred
            && self.since.is_none()
            && self.until.is_none()
            && self.min_rating.is_none()
            && self.tag.is_none()
            && !self.by_rating
    }
}

/// Take the filter terms out of a search line and put them in `q`; the rest is the fuzzy
/// text. Terms: `tag:NAME` (or `#NAME`), `rating:N` (or `rating:>=N`, `r:N`: at least N, 1–5),
/// `sort:rating` (best rated first) and `sort:date`. A term that does not parse (`rating:9`)
/// stays in the text, so nothing typed is silently dropped.
pub fn take_search_terms(line: &str, q: &mut Query) -> String {
    let mut rest = Vec::new();
    for word in line.split_whitespace() {
        let lower = word.to_lowercase();
        let rating = lower
            .strip_prefix("rating:")
            .or_else(|| lower.strip_prefix("r:"))
            .map(|r| r.trim_start_matches(">=").trim_start_matches('>'))
            .and_then(|r| r.parse::<u8>().ok())
            .filter(|n| (1..=5).contains(n));
        let tag = word
            .strip_prefix("tag:")
            .or_else(|| word.strip_prefix('#'))
            .filter(|t| !t.is_empty());
        if let Some(n) = rating {
            q.min_rating = Some(n);
        } else if let Some(t) = tag {
            q.tag = Some(t.to_string());
        } else if lower == "sort:rating" {
            q.by_rating = true;
        } else if lower == "sort:date" {
            q.by_rating = false;
        } else {
            rest.push(word);
        }
    }
    rest.join(" ")
}

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Cursor {
    /// Newest-first listing: records older than this id.
    Before(Id),
    /// Text search: skip this many matches.
    Offset(usize),
}

impl Cursor {
    pub fn encode(&self) -> String {
        match self {
            Cursor::Before(id) => format!("b{id}"),
            Cursor::Offset(n) => format!("o{n}"),
        }
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (tag, rest) = s.split_at_checked(1)?;
        match tag {
            "b" => Id::parse(rest).map(Cursor::Before),
            "o" => rest.parse().ok().map(Cursor::Offset),
            _ => None,
        }
    }
}

/// Histories at least this long are searched on several threads.
const PARALLEL_FROM: usize = 20_000;

/// A character as the prefilter compares it: diacritics removed and lower-cased, which is at
/// least as loose as any matching mode of the matcher.
fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    // CJK, kana and hangul have no case and no diacritics to remove: the common non-Latin case.
    if ('\u{3000}'..'\u{ff00}').contains(&c) {
        return c;
    }
    let n = nucleo_matcher::chars::normalize(c);
    n.to_lowercase().next().unwrap_or(n)
}

/// For each positive atom, its characters folded. Every kind of atom (fuzzy, substring, prefix,
/// postfix, exact) only matches a haystack that holds its characters in order, so a haystack
/// without them can be skipped before the (much dearer) scoring.
fn prefilter_needles(pattern: &Pattern) -> Vec<Vec<char>> {
    pattern
        .atoms
        .iter()
        .filter(|a| !a.negative)
        .map(|a| a.needle_text().chars().map(fold).collect())
        .collect()
}

/// Whether `haystack` holds the characters of `needle` in order (a cheap superset of a match).
fn may_contain(haystack: &str, needle: &[char]) -> bool {
    let mut want = needle.iter();
    let Some(mut next) = want.next() else {
        return true;
    };
    for c in haystack.chars() {
        if fold(c) == *next {
            match want.next() {
                Some(n) => next = n,
                None => return true,
            }
        }
    }
    false
}

/// A history search, with the syntax people know from fzf and atuin: space-separated terms
/// that must all match; a plain term matches fuzzily but within one word-like run (so `cat`
/// finds "concatenate" and "a cat", not "a crowd at the"), `'term` as written, `^term` at the
/// start, `term$` at the end, `!term` must not appear. Prompts that hold every term as typed
/// rank above fuzzy matches, and the whole prompt typed exactly ranks first.
pub struct Search {
    pattern: Pattern,
    /// For each atom of the pattern, a substring atom with its needle when it is a fuzzy one:
    /// most matches hold the term as typed, which a substring search finds far faster than
    /// fuzzy indices.
    typed: Vec<Option<nucleo_matcher::pattern::Atom>>,
    needles: Vec<Vec<char>>,
    /// The typed text, folded, for the exact-prompt bonus.
    folded: String,
}

/// Bonus for a prompt that holds every term as typed.
const AS_TYPED: u32 = 1 << 20;
/// Bonus for a prompt that holds every term as a whole word.
const WORDS: u32 = 1 << 21;
/// Bonus for the whole prompt typed exactly.
const WHOLE: u32 = 1 << 24;

impl Search {
    pub fn new(text: &str) -> Search {
        let pattern = Pattern::parse(text, CaseMatching::Smart, Normalization::Smart);
        let needles = prefilter_needles(&pattern);
        let typed = pattern
            .atoms
            .iter()
            .map(|a| {
                (a.kind == AtomKind::Fuzzy && !a.negative).then(|| {
                    let needle: String = a.needle_text().chars().collect();
                    nucleo_matcher::pattern::Atom::new(
                        &needle,
                        CaseMatching::Smart,
                        Normalization::Smart,
                        AtomKind::Substring,
                        false,
                    )
                })
            })
            .collect();
        Search {
            pattern,
            typed,
            needles,
            folded: text.trim().chars().map(fold).collect(),
        }
    }

    /// The score of `prompt`, or `None` when it does not match.
    pub fn score(&self, prompt: &str, matcher: &mut Matcher, buf: &mut Vec<char>) -> Option<u32> {
        if !self.needles.iter().all(|n| may_contain(prompt, n)) {
            return None;
        }
        let hay = Utf32Str::new(prompt, buf);
        // One pass over the atoms: a fuzzy term's positions come with its score, so the
        // matcher's dynamic programme runs once per term (not once to score, once to place).
        let mut score = 0u32;
        let mut indices = Vec::new();
        let mut as_typed = true;
        let mut words = true;
        for (atom, typed) in self.pattern.atoms.iter().zip(&self.typed) {
            let Some(typed) = typed else {
                // Exact, prefix, suffix and excluded terms: their score says all.
                score += u32::from(atom.score(hay, matcher)?);
                continue;
            };
            indices.clear();
            // As typed first (a quick substring search); only a term not found as typed needs
            // the fuzzy matcher.
            let s = match typed.indices(hay, matcher, &mut indices) {
                Some(s) => s,
                None => {
                    indices.clear();
                    atom.indices(hay, matcher, &mut indices)?
                }
            };
            score += u32::from(s);
            let (Some(&first), Some(&last)) = (indices.iter().min(), indices.iter().max()) else {
                continue;
            };
            let len = atom.needle_text().len() as u32;
            // A fuzzy term spread over several words, or far apart, is noise, not a match.
            let spread = (first..=last).any(|i| hay.get(i).is_whitespace());
            if spread || last - first + 1 > 2 * len + 1 {
                return None;
            }
            let exact = last - first + 1 == len;
            as_typed &= exact;
            let boundary = |i: Option<u32>| {
                i.filter(|i| (*i as usize) < hay.len())
                    .is_none_or(|i| !hay.get(i).is_alphanumeric())
            };
            words &= exact && boundary(first.checked_sub(1)) && boundary(Some(last + 1));
        }
        if as_typed {
            score += AS_TYPED;
        }
        if as_typed && words {
            score += WORDS;
        }
        if prompt.trim().chars().map(fold).eq(self.folded.chars()) {
            score += WHOLE;
        }
        Some(score)
    }

    /// The positions (in chars) of `prompt` that the search matched, for highlighting.
    pub fn highlight(&self, prompt: &str) -> Vec<usize> {
        let mut matcher = Matcher::new(Config::DEFAULT);
        let mut buf = Vec::new();
        let hay = Utf32Str::new(prompt, &mut buf);
        let mut indices = Vec::new();
        for atom in self.pattern.atoms.iter().filter(|a| !a.negative) {
            atom.indices(hay, &mut matcher, &mut indices);
        }
        indices.sort_unstable();
        indices.dedup();
        indices.into_iter().map(|i| i as usize).collect()
    }
}

/// One record, as much as queries need.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: Id,
    pub created_ms: i64,
    pub status: Status,
    pub starred: bool,
    pub rating: u8,
    pub tags: Box<[Box<str>]>,
    pub model: u16,
    pub prompt: Box<str>,
}

impl Entry {
    /// How entries are ordered: by creation time, then id.
    fn order(&self) -> (i64, Id) {
        (self.created_ms, self.id)
    }
}

/// Everything the index knows about one record, before interning.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub id: Id,
    pub created_ms: i64,
    pub status: Status,
    pub starred: bool,
    pub rating: u8,
    pub tags: Vec<String>,
    pub model: String,
    pub prompt: String,
}

impl Summary {
    /// A compact binary form for the summaries tree: cheap to read back at startup. Format 2
    /// adds the rating and the tags; format 1 (no rating, no tags) still reads.
    pub fn encode(&self) -> Vec<u8> {
        let model = self.model.as_bytes();
        let model_len = model.len().min(usize::from(u16::MAX));
        let mut out = Vec::with_capacity(16 + model_len + self.prompt.len());
        out.push(2); // format version
        out.push(self.status.code());
        out.push(u8::from(self.starred));
        out.extend_from_slice(&self.created_ms.to_be_bytes());
        out.extend_from_slice(&(model_len as u16).to_be_bytes());
        out.extend_from_slice(&model[..model_len]);
        out.push(self.rating);
        let tags: Vec<&[u8]> = self
            .tags
            .iter()
            .map(|t| &t.as_bytes()[..t.len().min(255)])
            .take(255)
            .collect();
        out.push(tags.len() as u8);
        for t in tags {
            out.push(t.len() as u8);
            out.extend_from_slice(t);
        }
        out.extend_from_slice(self.prompt.as_bytes());
        out
    }

    pub fn decode(id: Id, bytes: &[u8]) -> Option<Summary> {
        let (&version, rest) = bytes.split_first()?;
        if version != 1 && version != 2 {
            return None;
        }
        let status = Status::from_code(*rest.first()?)?;
        let starred = *rest.get(1)? != 0;
        let created_ms = i64::from_be_bytes(rest.get(2..10)?.try_into().ok()?);
        let model_len = usize::from(u16::from_be_bytes(rest.get(10..12)?.try_into().ok()?));
        let model = std::str::from_utf8(rest.get(12..12 + model_len)?)
            .ok()?
            .to_string();
        let mut at = 12 + model_len;
        let (mut rating, mut tags) = (0, Vec::new());
        if version == 2 {
            rating = *rest.get(at)?;
            let count = usize::from(*rest.get(at + 1)?);
            at += 2;
            for _ in 0..count {
                let len = usize::from(*rest.get(at)?);
                let tag = std::str::from_utf8(rest.get(at + 1..at + 1 + len)?).ok()?;
                tags.push(tag.to_string());
                at += 1 + len;
            }
        }
        let prompt = std::str::from_utf8(rest.get(at..)?).ok()?.to_string();
        Some(Summary {
            id,
            created_ms,
            status,
            starred,
            rating,
            tags,
            model,
            prompt,
        })
    }
}

/// Where a record stands in a query's results (see [`Index::locate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Located {
    /// At this position.
    At(usize),
    /// Not among the results (deleted, filtered out); this position is where it would be.
    Near(usize),
    /// Not among the results, and nothing says where it would be (a text search).
    Unknown,
}

/// All records, oldest first (by `created`, then id), as small entries.
#[derive(Debug, Default)]
pub struct Index {
    entries: Vec<Entry>,
    models: Vec<String>,
}

impl Index {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn model_code(&mut self, model: &str) -> u16 {
        if let Some(i) = self.models.iter().position(|m| m == model) {
            return i as u16;
        }
        self.models.push(model.to_string());
        (self.models.len() - 1).min(usize::from(u16::MAX)) as u16
    }

    fn entry(&mut self, s: Summary) -> Entry {
        let model = self.model_code(&s.model);
        Entry {
            id: s.id,
            created_ms: s.created_ms,
            status: s.status,
            starred: s.starred,
            rating: s.rating,
            tags: s.tags.into_iter().map(String::into_boxed_str).collect(),
            model,
            prompt: s.prompt.into_boxed_str(),
        }
    }

    /// Build from summaries (in key order from the store: usually `created` order too, but
    /// imported records may have ids whose time is not their `created`).
    pub fn from_sorted(summaries: impl IntoIterator<Item = Summary>) -> Index {
        let mut index = Index::default();
        for s in summaries {
            let e = index.entry(s);
            index.entries.push(e);
        }
        if !index.entries.is_sorted_by_key(Entry::order) {
            index.entries.sort_by_key(Entry::order);
        }
        index
    }

    /// Where the entry for `id` is (entries are sorted by time, not id: a walk).
    fn position(&self, id: Id) -> Option<usize> {
        self.entries.iter().rposition(|e| e.id == id)
    }

    pub fn upsert(&mut self, s: Summary) {
        let e = self.entry(s);
        match self.entries.binary_search_by_key(&e.order(), Entry::order) {
            Ok(i) => self.entries[i] = e,
            Err(i) => {
                // The same record with another `created` (rewritten by hand or an import).
                let i = match self.position(e.id) {
                    Some(old) => {
                        self.entries.remove(old);
                        if old < i { i - 1 } else { i }
                    }
                    None => i,
                };
                self.entries.insert(i, e);
            }
        }
    }

    pub fn remove(&mut self, id: Id) {
        if let Some(i) = self.position(id) {
            self.entries.remove(i);
        }
    }

    pub fn contains(&self, id: Id) -> bool {
        self.position(id).is_some()
    }

    pub fn ids(&self) -> impl DoubleEndedIterator<Item = Id> + '_ {
        self.entries.iter().map(|e| e.id)
    }

    fn passes(&self, e: &Entry, q: &Query) -> bool {
        if q.starred && !e.starred {
            return false;
        }
        if q.status.is_some_and(|s| s != e.status) {
            return false;
        }
        if let Some(m) = &q.model
            && self.models.get(usize::from(e.model)) != Some(m)
        {
            return false;
        }
        if q.since.is_some_and(|t| e.created_ms < t.timestamp_millis()) {
            return false;
        }
        if q.until
            .is_some_and(|t| e.created_ms >= t.timestamp_millis())
        {
            return false;
        }
        if q.min_rating.is_some_and(|n| e.rating < n) {
            return false;
        }
        if let Some(tag) = &q.tag
            && !e.tags.iter().any(|t| t.as_ref() == tag.as_str())
        {
            return false;
        }
        true
    }

    /// Positions of the entries matching `q`, best rated first, then newest.
    fn by_rating(&self, q: &Query) -> Vec<usize> {
        let mut hits: Vec<usize> = (0..self.entries.len())
            .rev()
            .filter(|i| self.passes(&self.entries[*i], q))
            .collect();
        // Stable: newest first among equals.
        hits.sort_by_key(|i| std::cmp::Reverse(self.entries[*i].rating));
        hits
    }

    /// Every tag in use, with how many records carry it (for completion).
    pub fn tags(&self) -> Vec<(String, usize)> {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for e in &self.entries {
            for t in e.tags.iter() {
                *counts.entry(t.as_ref()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|(t, n)| (t.to_string(), n))
            .collect()
    }

    /// The ids matching `q`, in display order (best match first for text, else newest first),
    /// from `cursor`, at most `limit` of them; and the cursor for the next page.
    pub fn search(
        &self,
        q: &Query,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> (Vec<Id>, Option<Cursor>) {
        if q.by_rating && !q.has_text() {
            let offset = match cursor {
                Some(Cursor::Offset(n)) => n,
                _ => 0,
            };
            let hits = self.by_rating(q);
            let page: Vec<Id> = hits
                .iter()
                .skip(offset)
                .take(limit)
                .map(|i| self.entries[*i].id)
                .collect();
            let next =
                (offset + page.len() < hits.len()).then_some(Cursor::Offset(offset + page.len()));
            return (page, next);
        }
        if let Some(text) = q.text.as_deref().filter(|t| !t.trim().is_empty()) {
            let offset = match cursor {
                Some(Cursor::Offset(n)) => n,
                _ => 0,
            };
            let mut hits = self.fuzzy(q, text);
            // Best first, newest first among equals; only the part up to this page is sorted.
            let order = |a: &(u32, usize), b: &(u32, usize)| b.0.cmp(&a.0).then(b.1.cmp(&a.1));
            let wanted = offset.saturating_add(limit).min(hits.len());
            if wanted > 0 && wanted < hits.len() {
                hits.select_nth_unstable_by(wanted - 1, order);
            }
            hits[..wanted].sort_unstable_by(order);
            let page: Vec<Id> = hits
                .iter()
                .skip(offset)
                .take(limit)
                .map(|(_, i)| self.entries[*i].id)
                .collect();
            let next =
                (offset + page.len() < hits.len()).then_some(Cursor::Offset(offset + page.len()));
            return (page, next);
        }
        let end = match cursor {
            Some(Cursor::Before(id)) => match self.position(id) {
                Some(i) => i,
                // The record is gone: by the time inside the id.
                None => self.entries.partition_point(|e| e.id < id),
            },
            _ => self.entries.len(),
        };
        let mut skip = match cursor {
            Some(Cursor::Offset(n)) => n,
            _ => 0,
        };
        let mut page = Vec::with_capacity(limit.min(1024));
        let mut last = None;
        let mut more = false;
        for e in self.entries[..end].iter().rev() {
            if !self.passes(e, q) {
                continue;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if page.len() == limit {
                more = true;
                break;
            }
            page.push(e.id);
            last = Some(e.id);
        }
        (page, if more { last.map(Cursor::Before) } else { None })
    }

    /// Every entry matching the filters and the text, as (score, position), in no particular
    /// order. Large histories are scored on every core.
    fn fuzzy(&self, q: &Query, text: &str) -> Vec<(u32, usize)> {
        let search = Search::new(text);
        let score_range = |start: usize, entries: &[Entry]| {
            let mut matcher = Matcher::new(Config::DEFAULT);
            let mut buf = Vec::new();
            let mut hits = Vec::new();
            for (i, e) in entries.iter().enumerate() {
                if !self.passes(e, q) {
                    continue;
                }
                if let Some(score) = search.score(&e.prompt, &mut matcher, &mut buf) {
                    hits.push((score, start + i));
                }
            }
            hits
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        if threads > 1 && self.entries.len() >= PARALLEL_FROM {
            let chunk = self.entries.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let workers: Vec<_> = self
                    .entries
                    .chunks(chunk)
                    .enumerate()
                    .map(|(k, part)| {
                        let score_range = &score_range;
                        (k, scope.spawn(move || score_range(k * chunk, part)))
                    })
                    .collect();
                // A part whose thread died is scored again here rather than dropped: its hits
                // are never lost silently (and a panic that happens again surfaces).
                workers
                    .into_iter()
                    .flat_map(|(k, w)| {
                        w.join().unwrap_or_else(|_| {
                            let end = ((k + 1) * chunk).min(self.entries.len());
                            score_range(k * chunk, &self.entries[k * chunk..end])
                        })
                    })
                    .collect()
            })
        } else {
            score_range(0, &self.entries)
        }
    }

    /// The ids at positions `offset..offset + limit` of the results, and how many results there
    /// are in all, in one pass (a scrolling list needs both).
    pub fn window(&self, q: &Query, offset: usize, limit: usize) -> (Vec<Id>, usize) {
        if q.by_rating && !q.has_text() {
            let hits = self.by_rating(q);
            let ids = hits
                .iter()
                .skip(offset)
                .take(limit)
                .map(|i| self.entries[*i].id)
                .collect();
            return (ids, hits.len());
        }
        if let Some(text) = q.text.as_deref().filter(|t| !t.trim().is_empty()) {
            let mut hits = self.fuzzy(q, text);
            let total = hits.len();
            let order = |a: &(u32, usize), b: &(u32, usize)| b.0.cmp(&a.0).then(b.1.cmp(&a.1));
            let wanted = offset.saturating_add(limit).min(total);
            if wanted > 0 && wanted < total {
                hits.select_nth_unstable_by(wanted - 1, order);
            }
            hits[..wanted].sort_unstable_by(order);
            let ids = hits
                .iter()
                .skip(offset)
                .take(limit)
                .map(|(_, i)| self.entries[*i].id)
                .collect();
            return (ids, total);
        }
        let mut total = 0;
        let mut ids = Vec::with_capacity(limit.min(1024));
        for e in self.entries.iter().rev() {
            if !self.passes(e, q) {
                continue;
            }
            if total >= offset && ids.len() < limit {
                ids.push(e.id);
            }
            total += 1;
        }
        (ids, total)
    }

    /// Where record `id` stands in the results of `q`: at a position, or (gone or filtered
    /// out) the position of the record that now stands where it would be, so a list can keep
    /// its selection on a record, or on its nearest neighbour.
    pub fn locate(&self, q: &Query, id: Id) -> Located {
        if let Some(text) = q.text.as_deref().filter(|t| !t.trim().is_empty()) {
            let mut hits = self.fuzzy(q, text);
            hits.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
            return hits
                .iter()
                .position(|(_, i)| self.entries[*i].id == id)
                .map_or(Located::Unknown, Located::At);
        }
        if let Some(i) = self.position(id) {
            let e = &self.entries[i];
            let pos = self.entries[i + 1..]
                .iter()
                .filter(|x| self.passes(x, q))
                .count();
            return if self.passes(e, q) {
                Located::At(pos)
            } else {
                Located::Near(pos)
            };
        }
        // Gone: where it would stand, by the time in its id (its `created`, but for imports).
        let created_ms = id.uuid().get_timestamp().map_or(i64::MAX, |t| {
            let (secs, nanos) = t.to_unix();
            (secs as i64).saturating_mul(1000) + i64::from(nanos / 1_000_000)
        });
        let at = self
            .entries
            .partition_point(|e| e.order() < (created_ms, id));
        Located::Near(
            self.entries[at..]
                .iter()
                .filter(|x| self.passes(x, q))
                .count(),
        )
    }

    /// How many records match.
    pub fn count(&self, q: &Query) -> usize {
        match q.text.as_deref().filter(|t| !t.trim().is_empty()) {
            Some(text) => self.fuzzy(q, text).len(),
            None => self.entries.iter().filter(|e| self.passes(e, q)).count(),
        }
    }

    /// Ids whose shown form starts with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> Vec<Id> {
        let prefix = prefix.to_ascii_lowercase();
        self.entries
            .iter()
            .map(|e| e.id)
            .filter(|id| id.to_string().starts_with(&prefix))
            .take(10)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn search_terms_become_filters_and_the_rest_stays_text() {
        /// (line, text left, tag, min rating, by rating)
        type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<u8>, bool);
        let cases: &[Case] = &[
            ("fox", "fox", None, None, false),
            ("fox tag:keep", "fox", Some("keep"), None, false),
            ("#keep fox", "fox", Some("keep"), None, false),
            ("rating:4 fox", "fox", None, Some(4), false),
            ("r:>=3", "", None, Some(3), false),
            ("RATING:5 sort:rating", "", None, Some(5), true),
            ("sort:rating sort:date", "", None, None, false),
            // Not terms: kept as text rather than dropped.
            ("rating:9 fox", "rating:9 fox", None, None, false),
            ("rating:0", "rating:0", None, None, false),
            ("# tag:", "# tag:", None, None, false),
            ("夜晚 #海边", "夜晚", Some("海边"), None, false),
        ];
        for (line, text, tag, rating, by_rating) in cases {
            let mut q = super::Query::default();
            let rest = super::take_search_terms(line, &mut q);
            assert_eq!(rest, *text, "{line}");
            assert_eq!(q.tag.as_deref(), *tag, "{line}");
            assert_eq!(q.min_rating, *rating, "{line}");
            assert_eq!(q.by_rating, *by_rating, "{line}");
        }
    }

    use super::*;

    fn summary(prompt: &str, model: &str, status: Status, starred: bool, ms: i64) -> Summary {
        Summary {
            id: Id::new(),
            created_ms: ms,
            status,
            starred,
            rating: 0,
            tags: Vec::new(),
            model: model.into(),
            prompt: prompt.into(),
        }
    }

    #[test]
    fn ratings_and_tags_filter_and_sort() {
        let mut rows: Vec<Summary> = (1..=5)
            .map(|i| summary(&format!("p{i}"), "m", Status::Succeeded, false, i))
            .collect();
        rows[0].rating = 3;
        rows[1].rating = 5;
        rows[2].rating = 3;
        rows[3].tags = vec!["keep".into(), "sea".into()];
        rows[1].tags = vec!["keep".into()];
        // Format 2 round-trips rating and tags; format 1 still reads (unrated, untagged).
        let back = Summary::decode(rows[3].id, &rows[3].encode()).unwrap();
        assert_eq!(back, rows[3]);
        let mut v1 = vec![1u8, Status::Succeeded.code(), 0];
        v1.extend_from_slice(&7i64.to_be_bytes());
        v1.extend_from_slice(&1u16.to_be_bytes());
        v1.extend_from_slice(b"mold prompt");
        let old = Summary::decode(rows[0].id, &v1).unwrap();
        assert_eq!(
            (old.rating, old.tags.len(), old.prompt.as_str()),
            (0, 0, "old prompt")
        );
        let ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
        let index = Index::from_sorted(rows);
        let q = |min_rating, tag: Option<&str>, by_rating| Query {
            min_rating,
            tag: tag.map(str::to_string),
            by_rating,
            ..Default::default()
        };
        assert_eq!(
            index.search(&q(Some(3), None, false), None, 10).0,
            vec![ids[2], ids[1], ids[0]]
        );
        assert_eq!(
            index.search(&q(None, Some("keep"), false), None, 10).0,
            vec![ids[3], ids[1]]
        );
        // Best rated first, newest first among equals, unrated last.
        let (page, next) = index.search(&q(None, None, true), None, 3);
        assert_eq!(page, vec![ids[1], ids[2], ids[0]]);
        let (rest, _) = index.search(&q(None, None, true), next, 3);
        assert_eq!(rest, vec![ids[4], ids[3]]);
        assert_eq!(
            index.window(&q(None, None, true), 1, 2),
            (vec![ids[2], ids[0]], 5)
        );
        assert_eq!(
            index.tags(),
            vec![("keep".to_string(), 2), ("sea".to_string(), 1)]
        );
    }

    #[test]
    fn summary_round_trip_and_garbage() {
        let s = summary(
            "夜晚的海边小镇",
            "gpt-image-2",
            Status::Failed,
            true,
            1_700_000_000_000,
        );
        assert_eq!(Summary::decode(s.id, &s.encode()), Some(s.clone()));
        let bytes = s.encode();
        for cut in 0..13 {
            assert_eq!(Summary::decode(s.id, &bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(Summary::decode(s.id, &[9, 9, 9]), None);
    }

    #[test]
    fn locate_finds_a_record_or_where_it_would_be() {
        // Ids made as the store makes them, their time their `created` (a second apart).
        let rows: Vec<Summary> = (1..=5)
            .map(|i| {
                let ms = 1_764_000_000_000 + i * 1000;
                let ts = uuid::Timestamp::from_unix(
                    uuid::NoContext,
                    (ms / 1000) as u64,
                    ((ms % 1000) * 1_000_000) as u32,
                );
                let mut s = summary(
                    &format!("picture {i}"),
                    "gpt-image-2",
                    Status::Succeeded,
                    i % 2 == 0,
                    ms,
                );
                s.id = Id::from_uuid(uuid::Uuid::new_v7(ts));
                s
            })
            .collect();
        let ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
        let mut index = Index::from_sorted(rows);
        let all = Query::default();
        // Newest first: ids[4] is at 0, ids[0] at 4.
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(index.locate(&all, *id), Located::At(4 - i));
        }
        // A starred-only view: ids[3] and ids[1] pass; ids[2] would stand between them.
        let starred = Query {
            starred: true,
            ..Default::default()
        };
        assert_eq!(index.locate(&starred, ids[3]), Located::At(0));
        assert_eq!(index.locate(&starred, ids[2]), Located::Near(1));
        assert_eq!(index.locate(&starred, ids[1]), Located::At(1));
        // Deleted: its place is taken by the next older record.
        index.remove(ids[2]);
        assert_eq!(index.locate(&all, ids[2]), Located::Near(2));
        assert_eq!(index.locate(&all, ids[1]), Located::At(2));
        // A text search: found, or unknown.
        let text = Query {
            text: Some("picture 4".into()),
            ..Default::default()
        };
        assert_eq!(index.locate(&text, ids[3]), Located::At(0));
        assert_eq!(index.locate(&text, ids[2]), Located::Unknown);
    }

    #[test]
    fn pages_filters_and_fuzzy() {
        let rows = vec![
            summary(
                "a lighthouse at dusk",
                "gpt-image-2",
                Status::Succeeded,
                false,
                1,
            ),
            summary("a red fox in snow", "dall-e-3", Status::Failed, true, 2),
            summary(
                "lighthouse in a storm",
                "gpt-image-2",
                Status::Succeeded,
                true,
                3,
            ),
            summary("夜晚的海边小镇", "gpt-image-2", Status::Succeeded, false, 4),
        ];
        let ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
        let index = Index::from_sorted(rows);
        let all = Query::default();
        let (p1, next) = index.search(&all, None, 3);
        assert_eq!(p1, vec![ids[3], ids[2], ids[1]]);
        let (p2, next2) = index.search(&all, next, 3);
        assert_eq!(p2, vec![ids[0]]);
        assert_eq!(next2, None);
        let starred = Query {
            starred: true,
            ..Default::default()
        };
        assert_eq!(index.search(&starred, None, 10).0, vec![ids[2], ids[1]]);
        let failed = Query {
            status: Some(Status::Failed),
            ..Default::default()
        };
        assert_eq!(index.count(&failed), 1);
        let model = Query {
            model: Some("dall-e-3".into()),
            ..Default::default()
        };
        assert_eq!(index.search(&model, None, 10).0, vec![ids[1]]);
        let text = Query {
            text: Some("lghthse".into()),
            ..Default::default()
        };
        let (hits, _) = index.search(&text, None, 10);
        assert_eq!(hits.len(), 2);
        assert!(hits.contains(&ids[0]) && hits.contains(&ids[2]));
        let chinese = Query {
            text: Some("海边".into()),
            ..Default::default()
        };
        assert_eq!(index.search(&chinese, None, 10).0, vec![ids[3]]);
        let (first, next) = index.search(&text, None, 1);
        let (second, end) = index.search(&text, next, 1);
        assert_ne!(first, second);
        assert_eq!(end, None);
        assert_eq!(index.with_prefix(&ids[1].to_string()[..6]), vec![ids[1]]);
    }

    /// The search syntax as a table: (query, prompt, matches).
    #[test]
    fn search_terms_as_fzf_and_atuin_have_them() {
        let cases: &[(&str, &str, bool)] = &[
            // Every term must match, and a plain term within one word.
            ("cat hat rain", "a cat in a hat in the rain", true),
            (
                "cat hat rain",
                "a crowd at the harbour after the train ride",
                false,
            ),
            ("cat hat rain", "a cat in a hat", false),
            ("harbr", "a quiet harbour town", true),
            ("lghthse", "a lighthouse at dusk", true),
            ("cat", "concatenated shapes", true),
            ("cat", "a crowd at sea", false),
            // 'exact, ^prefix, suffix$, !exclude.
            ("'hat", "a hat", true),
            ("'hat", "a heat wave", false),
            ("^a cat", "a cat on a mat", true),
            ("^cat", "a cat on a mat", false),
            ("mat$", "a cat on a mat", true),
            ("cat !dog", "a cat and a dog", false),
            ("cat !dog", "a cat alone", true),
            // CJK: terms are runs of characters.
            ("海边", "夜晚的海边小镇", true),
            ("海镇", "夜晚的海边小镇", true),
            ("海镇", "海上的船只，远处有一个城镇", false),
        ];
        let mut matcher = Matcher::new(Config::DEFAULT);
        let mut buf = Vec::new();
        for (query, prompt, want) in cases {
            let got = Search::new(query)
                .score(prompt, &mut matcher, &mut buf)
                .is_some();
            assert_eq!(got, *want, "{query:?} on {prompt:?}");
        }
    }

    #[test]
    fn a_prompt_typed_exactly_ranks_first_and_as_typed_beats_fuzzy() {
        let rows = vec![
            summary("red fox", "m", Status::Succeeded, false, 1),
            summary(
                "a red fox in the snow at dawn",
                "m",
                Status::Succeeded,
                false,
                2,
            ),
            summary("reddish foxglove flowers", "m", Status::Succeeded, false, 3),
            summary("red fx", "m", Status::Succeeded, false, 4),
        ];
        let ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
        let index = Index::from_sorted(rows);
        let q = Query {
            text: Some("red fox".into()),
            ..Default::default()
        };
        let (hits, _) = index.search(&q, None, 10);
        assert_eq!(hits[0], ids[0], "the exact prompt first");
        assert_eq!(hits[1], ids[1], "then the one holding the words as typed");
        assert!(!hits.contains(&ids[3]), "{hits:?}");
        let search = Search::new("red fox");
        assert_eq!(search.highlight("a red fox"), vec![2, 3, 4, 6, 7, 8]);
    }

    proptest::proptest! {
        /// The prefilter never drops a haystack the matcher would match.
        #[test]
        fn prefilter_is_a_superset(
            hay in "[a-zA-Zàéîõüß海边小镇 ]{0,40}",
            needle in "[a-zA-Zàéîõüß海边 ^$'!]{1,8}",
        ) {
            let pattern = Pattern::parse(&needle, CaseMatching::Smart, Normalization::Smart);
            let mut matcher = Matcher::new(Config::DEFAULT);
            let mut buf = Vec::new();
            if pattern.score(Utf32Str::new(&hay, &mut buf), &mut matcher).is_some() {
                let needles = prefilter_needles(&pattern);
                proptest::prop_assert!(needles.iter().all(|n| may_contain(&hay, n)), "{hay:?} {needle:?}");
            }
        }
    }

    #[test]
    fn cursor_encoding() {
        let id = Id::new();
        for c in [Cursor::Before(id), Cursor::Offset(42)] {
            assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        assert_eq!(Cursor::decode("x1"), None);
        assert_eq!(Cursor::decode(""), None);
    }
}
