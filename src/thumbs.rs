//! Thumbnails made once and kept on disk (issue 13): `$XDG_CACHE_HOME/easel/thumbs` (or
//! `~/.cache/easel/thumbs`), one PNG per image and size, named by the image's SHA-256, so a
//! cache entry can only ever be the picture with those bytes. The folder is bounded: when it
//! grows past its size, the least recently used entries go. A deleted cache is made again as
//! pictures are asked for.

use image::RgbaImage;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A decoded picture may take at most this much memory (a crafted file cannot exhaust it).
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Thumbs {
    dir: PathBuf,
    max_bytes: u64,
}

/// The default folder: `$XDG_CACHE_HOME/easel/thumbs`, else `$HOME/.cache/easel/thumbs`.
pub fn default_dir() -> Option<PathBuf> {
    let abs = |v: &str| {
        std::env::var_os(v)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    abs("XDG_CACHE_HOME")
        .or_else(|| abs("HOME").map(|h| h.join(".cache")))
        .map(|c| c.join("easel").join("thumbs"))
}

/// Decode a picture (the format read from its bytes, memory bounded) and shrink it so its
/// longer side is `px` (area averaging: no aliasing, and fast).
pub fn make(path: &Path, px: u32) -> Result<RgbaImage, String> {
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| format!("not a picture: {e}"))?;
    Ok(img.thumbnail(px, px).to_rgba8())
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Thumbs {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Thumbs {
        Thumbs { dir, max_bytes }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, sha256: &str, px: u32) -> PathBuf {
        self.dir
            .join(format!("{}-{px}.png", sha256.to_ascii_lowercase()))
    }

    /// The thumbnail of the image at `source` whose bytes hash to `sha256`: from the cache, or
    /// made now and kept. Without a usable hash it is made and not kept (nothing could tell a
    /// later file apart). A cache that cannot be written only costs speed.
    pub fn get(&self, source: &Path, sha256: &str, px: u32) -> Result<RgbaImage, String> {
        if !is_hash(sha256) {
            return make(source, px);
        }
        let entry = self.entry(sha256, px);
        if let Ok(img) = image::open(&entry) {
            let img = img.to_rgba8();
            let side = img.width().max(img.height());
            // An entry that is not a thumbnail of this size (damaged by another program) is
            // made again.
            if side > 0 && side <= px {
                // Used now: eviction goes by last use.
                if let Ok(f) = std::fs::File::options().append(true).open(&entry) {
                    let _ = f.set_modified(SystemTime::now());
                }
                return Ok(img);
            }
        }
        let img = make(source, px)?;
        if self.store(&entry, &img).is_ok() {
            self.evict();
        }
        Ok(img)
    }

    fn store(&self, entry: &Path, img: &RgbaImage) -> Result<(), String> {
        crate::store::files::create_private_dir(&self.dir).map_err(|e| e.to_string())?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".thumb-")
            .suffix(".png")
            .tempfile_in(&self.dir)
            .map_err(|e| e.to_string())?;
        img.write_to(
            &mut std::io::BufWriter::new(tmp.as_file_mut()),
            image::ImageFormat::Png,
        )
        .map_err(|e| e.to_string())?;
        tmp.persist(entry).map_err(|e| e.error.to_string())?;
        Ok(())
    }

    /// Keep the folder under its size: the least recently used entries go first.
    pub fn evict(&self) {
        let Ok(list) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = list
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".png"))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                m.is_file().then(|| {
                    (
                        m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        m.len(),
                        e.path(),
                    )
                })
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(_, n, _)| n).sum();
        if total <= self.max_bytes {
            return;
        }
        entries.sort();
        for (_, n, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(n);
            }
        }
    }

    /// Bytes the cache holds now.
    pub fn size(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|l| {
                l.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;
    use sha2::Digest;

    fn picture(dir: &Path, name: &str, colour: [u8; 3]) -> (PathBuf, String) {
        let img = RgbaImage::from_pixel(400, 200, Rgba([colour[0], colour[1], colour[2], 255]));
        let path = dir.join(name);
        img.save(&path).unwrap();
        let sha = hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap()));
        (path, sha)
    }

    #[test]
    fn made_once_then_read_from_the_cache_and_made_again_when_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (src, sha) = picture(dir.path(), "a.png", [200, 10, 10]);
        let t = Thumbs::new(dir.path().join("thumbs"), 10 << 20);
        let first = t.get(&src, &sha, 100).unwrap();
        assert_eq!((first.width(), first.height()), (100, 50));
        assert!(t.entry(&sha, 100).is_file());
        // The source gone, the cache still answers: it did not decode the source again.
        std::fs::remove_file(&src).unwrap();
        assert_eq!(t.get(&src, &sha, 100).unwrap(), first);
        // The cache deleted: made again (from a source that exists again).
        std::fs::remove_dir_all(t.dir()).unwrap();
        let (src, sha2) = picture(dir.path(), "a.png", [200, 10, 10]);
        assert_eq!(sha2, sha);
        assert_eq!(t.get(&src, &sha, 100).unwrap(), first);
    }

    #[test]
    fn a_cache_entry_is_only_ever_the_picture_with_that_hash() {
        let dir = tempfile::tempdir().unwrap();
        let t = Thumbs::new(dir.path().join("thumbs"), 10 << 20);
        let (red, red_sha) = picture(dir.path(), "red.png", [220, 0, 0]);
        let (blue, blue_sha) = picture(dir.path(), "blue.png", [0, 0, 220]);
        let r = t.get(&red, &red_sha, 64).unwrap();
        let b = t.get(&blue, &blue_sha, 64).unwrap();
        assert_eq!(r.get_pixel(10, 10)[0], 220);
        assert_eq!(b.get_pixel(10, 10)[2], 220);
        // Without a hash, nothing is kept (and nothing read from the cache).
        let before = std::fs::read_dir(t.dir()).unwrap().count();
        let x = t.get(&red, "not-a-hash/../../etc", 64).unwrap();
        assert_eq!(x.get_pixel(10, 10)[0], 220);
        assert_eq!(std::fs::read_dir(t.dir()).unwrap().count(), before);
    }

    #[test]
    fn the_cache_stays_under_its_size_dropping_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let big = Thumbs::new(dir.path().join("probe"), u64::MAX);
        let (src, sha) = picture(dir.path(), "probe.png", [1, 2, 3]);
        big.get(&src, &sha, 128).unwrap();
        let one = big.size();
        assert!(one > 0);
        // Room for two entries and a half.
        let t = Thumbs::new(dir.path().join("thumbs"), one * 5 / 2);
        let mut shas = Vec::new();
        for (i, c) in [[10u8, 0, 0], [0, 10, 0], [0, 0, 10]].iter().enumerate() {
            let (src, sha) = picture(dir.path(), &format!("{i}.png"), *c);
            shas.push((src, sha));
        }
        let pause = || std::thread::sleep(std::time::Duration::from_millis(20));
        t.get(&shas[0].0, &shas[0].1, 128).unwrap();
        pause();
        t.get(&shas[1].0, &shas[1].1, 128).unwrap();
        pause();
        // The first is read again (from the cache: its source is gone), so the second is now
        // the least recently used when the third arrives.
        std::fs::remove_file(&shas[0].0).unwrap();
        t.get(&shas[0].0, &shas[0].1, 128).unwrap();
        pause();
        t.get(&shas[2].0, &shas[2].1, 128).unwrap();
        assert!(t.size() <= one * 5 / 2, "{} > {}", t.size(), one * 5 / 2);
        assert!(
            t.entry(&shas[0].1, 128).is_file(),
            "the recently used one stays"
        );
        assert!(
            !t.entry(&shas[1].1, 128).is_file(),
            "the least recently used one went"
        );
        assert!(t.entry(&shas[2].1, 128).is_file());
    }
}
