//! Prompt analysis: the keyword flags and colour words that nudge the scene.

pub(super) const NIGHT: u16 = 1;
pub(super) const DUSK: u16 = 1 << 1;
pub(super) const SUN: u16 = 1 << 2;
pub(super) const SEA: u16 = 1 << 3;
pub(super) const SNOW: u16 = 1 << 4;
pub(super) const TOWN: u16 = 1 << 5;
pub(super) const FOREST: u16 = 1 << 6;
pub(super) const TOWER: u16 = 1 << 7;
pub(super) const MOUNTAIN: u16 = 1 << 8;

/// Words that nudge the scene. ASCII words match the start of a prompt word ("sunset" hits
/// "sun"), other scripts match anywhere in the prompt.
pub(super) const KEYWORDS: &[(&str, u16)] = &[
    ("night", NIGHT),
    ("midnight", NIGHT),
    ("moon", NIGHT),
    ("star", NIGHT),
    ("夜", NIGHT),
    ("月", NIGHT),
    ("星", NIGHT),
    ("dusk", DUSK),
    ("sunset", DUSK),
    ("sunrise", DUSK),
    ("dawn", DUSK),
    ("twilight", DUSK),
    ("evening", DUSK),
    ("黄昏", DUSK),
    ("夕", DUSK),
    ("傍晚", DUSK),
    ("sun", SUN),
    ("summer", SUN),
    ("日", SUN),
    ("阳", SUN),
    ("sea", SEA),
    ("ocean", SEA),
    ("beach", SEA),
    ("wave", SEA),
    ("coast", SEA),
    ("harbo", SEA),
    ("lake", SEA),
    ("海", SEA),
    ("洋", SEA),
    ("湖", SEA),
    ("浪", SEA),
    ("港", SEA),
    ("lighthouse", SEA | TOWER),
    ("灯塔", SEA | TOWER),
    ("tower", TOWER),
    ("castle", TOWER),
    ("塔", TOWER),
    ("snow", SNOW),
    ("winter", SNOW),
    ("ice", SNOW),
    ("frost", SNOW),
    ("雪", SNOW),
    ("冬", SNOW),
    ("冰", SNOW),
    ("town", TOWN),
    ("city", TOWN),
    ("village", TOWN),
    ("house", TOWN),
    ("street", TOWN),
    ("镇", TOWN),
    ("城", TOWN),
    ("村", TOWN),
    ("街", TOWN),
    ("forest", FOREST),
    ("tree", FOREST),
    ("wood", FOREST),
    ("pine", FOREST),
    ("林", FOREST),
    ("森", FOREST),
    ("树", FOREST),
    ("mountain", MOUNTAIN),
    ("peak", MOUNTAIN),
    ("alp", MOUNTAIN),
    ("山", MOUNTAIN),
];

/// Colour words and the hue (degrees) they pull the palette towards.
pub(super) const HUES: &[(&str, f32)] = &[
    ("red", 2.0),
    ("crimson", 350.0),
    ("orange", 28.0),
    ("amber", 40.0),
    ("gold", 46.0),
    ("yellow", 54.0),
    ("green", 125.0),
    ("emerald", 145.0),
    ("teal", 175.0),
    ("cyan", 186.0),
    ("azure", 205.0),
    ("blue", 215.0),
    ("violet", 265.0),
    ("purple", 275.0),
    ("pink", 330.0),
    ("rose", 340.0),
    ("红", 2.0),
    ("橙", 28.0),
    ("金", 46.0),
    ("黄", 54.0),
    ("绿", 125.0),
    ("青", 180.0),
    ("蓝", 215.0),
    ("紫", 275.0),
    ("粉", 330.0),
];

/// Keyword flags and the first colour word found in `prompt`.
pub(super) fn scan(prompt: &str) -> (u16, Option<f32>) {
    let lower = prompt.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let hit = |kw: &str| {
        if kw.is_ascii() {
            words.iter().any(|w| w.starts_with(kw))
        } else {
            lower.contains(kw)
        }
    };
    let flags = KEYWORDS
        .iter()
        .filter(|(kw, _)| hit(kw))
        .fold(0, |acc, (_, f)| acc | f);
    let hue = HUES.iter().find(|(kw, _)| hit(kw)).map(|&(_, h)| h);
    (flags, hue)
}
