//! WebDataset shards: tar files whose members are samples, the files of one sample sharing
//! a key (`KEY.jpg` with an optional `KEY.txt` or `KEY.json` caption). Each image member
//! is an image of the dataset, named `SHARD.tar/MEMBER` (the tar's path relative to the
//! dataset, `/`, the member's name), and read from its place in the tar; nothing is
//! unpacked. A shard cut off mid-member keeps its whole members; the cut one is listed with
//! its reason.
//!
//! The `tar` crate reads the headers (ustar, GNU long names, PAX); curate keeps each
//! member's data offset and length so that one member is read without the others.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Why a member a shard cuts off is not read (the scan's `unreadable` reason for it).
pub const CUT_OFF: &str = "the shard ends inside this member (cut off)";

/// The extension of a shard (lower case).
pub const EXTENSION: &str = "tar";

/// One regular file in a shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name in the tar (`/`-separated, a leading `./` dropped); lossy when not UTF-8.
    pub name: String,
    /// Whether the name is valid UTF-8.
    pub utf8_name: bool,
    /// Where its data starts in the tar.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// What a shard holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Its whole regular files, in tar order.
    pub members: Vec<Member>,
    /// Members whose data the file does not hold (a shard cut off mid-member), by name.
    pub cut: Vec<Member>,
    /// Why the listing stopped early (a damaged header), if it did.
    pub damaged: Option<String>,
}

/// Lists the members of the tar at `path`.
///
/// # Errors
/// When the file cannot be opened.
pub fn list(path: &Path) -> io::Result<Listing> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut archive = tar::Archive::new(file);
    let mut listing = Listing::default();
    let entries = match archive.entries_with_seek() {
        Ok(entries) => entries,
        Err(err) => {
            listing.damaged = Some(err.to_string());
            return Ok(listing);
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                listing.damaged = Some(err.to_string());
                break;
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = entry.path_bytes();
        let (name, utf8_name) = match std::str::from_utf8(&raw) {
            Ok(name) => (name.to_owned(), true),
            Err(_) => (String::from_utf8_lossy(&raw).into_owned(), false),
        };
        let name = name.trim_start_matches("./").to_owned();
        let member = Member {
            name,
            utf8_name,
            offset: entry.raw_file_position(),
            len: entry.size(),
        };
        if member.offset.saturating_add(member.len) > file_len {
            listing.cut.push(member);
            break;
        }
        listing.members.push(member);
    }
    Ok(listing)
}

/// Reads `len` bytes at `offset` of the file at `path` (one member's data).
///
/// # Errors
/// When the file cannot be read there.
pub fn read_at(path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let len = usize::try_from(len).map_err(io::Error::other)?;
    let mut bytes = vec![0; len];
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Splits a dataset-relative path into a shard's path and a member name, where `root`
/// holds a shard by that name (`a/b.tar/c/d.jpg` → `a/b.tar`, `c/d.jpg`).
#[must_use]
pub fn split<'p>(root: &Path, rel_path: &'p str) -> Option<(&'p str, &'p str)> {
    let marker = format!(".{EXTENSION}/");
    let lower = rel_path.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(&marker) {
        let end = from + at + marker.len() - 1;
        let (shard, member) = (&rel_path[..end], &rel_path[end + 1..]);
        if root.join(shard).is_file() {
            return Some((shard, member));
        }
        from = end;
    }
    None
}

/// The members of shards read so far, by the shard's path, with the length and
/// modification time they were listed at.
type Listings = HashMap<
    PathBuf,
    (
        u64,
        Option<std::time::SystemTime>,
        Arc<HashMap<String, Member>>,
    ),
>;

fn listings() -> &'static Mutex<Listings> {
    static LISTINGS: OnceLock<Mutex<Listings>> = OnceLock::new();
    LISTINGS.get_or_init(Mutex::default)
}

/// The bytes of the file a dataset-relative path names: a member of a shard
/// (`SHARD.tar/MEMBER`, see [`split`]) or a plain file under `root`.
///
/// # Errors
/// When the file or member cannot be read (a member the shard does not hold whole is
/// `NotFound`).
pub fn read_path(root: &Path, rel_path: &str) -> io::Result<Vec<u8>> {
    let Some((shard, member)) = split(root, rel_path) else {
        return std::fs::read(root.join(rel_path));
    };
    let path = root.join(shard);
    let meta = std::fs::metadata(&path)?;
    let stamp = (meta.len(), meta.modified().ok());
    let cached = listings().lock().ok().and_then(|l| {
        l.get(&path)
            .filter(|c| (c.0, c.1) == stamp)
            .map(|c| c.2.clone())
    });
    let members = if let Some(members) = cached {
        members
    } else {
        let listing = list(&path)?;
        let members: Arc<HashMap<String, Member>> = Arc::new(
            listing
                .members
                .into_iter()
                .map(|m| (m.name.clone(), m))
                .collect(),
        );
        if let Ok(mut l) = listings().lock() {
            l.insert(path.clone(), (stamp.0, stamp.1, members.clone()));
        }
        members
    };
    let found = members.get(member).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{shard} holds no whole member {member}"),
        )
    })?;
    read_at(&path, found.offset, found.len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of `(name, bytes)` members.
    fn shard(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, *bytes)
                .expect("append");
        }
        builder.into_inner().expect("tar")
    }

    #[test]
    fn members_are_listed_and_read_in_place() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("shards")).expect("mkdir");
        let long = format!("{}/deep.png", "x".repeat(120));
        let bytes = shard(&[
            ("000.jpg", b"jpeg bytes"),
            ("000.txt", b"a caption"),
            ("./001.png", b"png!"),
            (&long, b"long name"),
            ("002.jpg", &[7_u8; 2000]),
        ]);
        std::fs::write(dir.path().join("shards/a.tar"), &bytes).expect("write");
        let listing = list(&dir.path().join("shards/a.tar")).expect("list");
        let names: Vec<&str> = listing.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["000.jpg", "000.txt", "001.png", long.as_str(), "002.jpg"]
        );
        assert!(listing.cut.is_empty() && listing.damaged.is_none());
        assert_eq!(
            read_path(dir.path(), "shards/a.tar/000.txt").expect("member"),
            b"a caption"
        );
        assert_eq!(
            read_path(dir.path(), &format!("shards/a.tar/{long}")).expect("member"),
            b"long name"
        );
        assert_eq!(
            split(dir.path(), "shards/a.tar/001.png"),
            Some(("shards/a.tar", "001.png"))
        );
        assert_eq!(split(dir.path(), "shards/b.tar/001.png"), None);
        assert!(read_path(dir.path(), "shards/a.tar/missing.png").is_err());
        // A shard cut off inside its last member: the whole ones stay.
        let cut = bytes.len() - 1024 - 1000;
        std::fs::write(dir.path().join("shards/cut.tar"), &bytes[..cut]).expect("write");
        let listing = list(&dir.path().join("shards/cut.tar")).expect("list");
        assert_eq!(listing.members.len(), 4);
        assert_eq!(listing.cut.len(), 1, "{listing:?}");
        assert_eq!(listing.cut[0].name, "002.jpg");
        // Cut inside a header: the members before it stay, the reason is kept.
        let cut = bytes.len() - 1024 - 2048 - 100;
        std::fs::write(dir.path().join("shards/cut.tar"), &bytes[..cut]).expect("write");
        let listing = list(&dir.path().join("shards/cut.tar")).expect("list");
        assert_eq!(listing.members.len(), 4, "{listing:?}");
        assert!(listing.damaged.is_some(), "{listing:?}");
        // Not a tar at all: nothing listed, the reason kept.
        std::fs::write(dir.path().join("shards/text.tar"), vec![b'x'; 1500]).expect("write");
        let listing = list(&dir.path().join("shards/text.tar")).expect("list");
        assert!(listing.members.is_empty());
        assert!(listing.damaged.is_some(), "{listing:?}");
    }
}
