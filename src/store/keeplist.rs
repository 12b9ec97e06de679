//! Keep-lists: UTF-8 text, one relative path per line (`/`-separated), in scan order.
//!
//! A path that one line cannot hold as it is — one with a control character (a newline, a
//! carriage return, a tab...), one that starts with a double quote or ends with a space —
//! is written as a JSON string on its line: `"new\nline.png"`. A line that starts with
//! `"` is read back as one (the way git quotes such paths); every other line is the path
//! itself. (Names that are not UTF-8 never reach a keep-list: they are reported as
//! `non_utf8_name` files.)

use std::io::{self, Write as _};
use std::path::Path;

use super::atomic;

/// Whether `rel` is written quoted (see the module documentation).
#[must_use]
pub fn needs_quoting(rel: &str) -> bool {
    rel.starts_with('"')
        || rel.ends_with(|c: char| c.is_whitespace())
        || rel.starts_with(|c: char| c.is_whitespace())
        || rel.chars().any(char::is_control)
}

/// One keep-list line for `rel` (without its newline).
#[must_use]
pub fn line(rel: &str) -> String {
    if needs_quoting(rel) {
        serde_json::to_string(rel).unwrap_or_else(|_| rel.escape_default().to_string())
    } else {
        rel.to_owned()
    }
}

/// Writes the paths to `path`, atomically.
pub fn write<'a>(path: &Path, kept: impl IntoIterator<Item = &'a str>) -> io::Result<usize> {
    atomic::write_with(path, |out| {
        let mut count = 0;
        for rel in kept {
            out.write_all(line(rel).as_bytes())?;
            out.write_all(b"\n")?;
            count += 1;
        }
        Ok(count)
    })
}

/// Reads a keep-list back (blank lines skipped, quoted lines unquoted).
///
/// # Errors
/// The file cannot be read, is not UTF-8, or holds a quoted line that is not a whole JSON
/// string (the error names the line).
pub fn read(path: &Path) -> io::Result<Vec<String>> {
    parse(&std::fs::read_to_string(path)?)
}

/// The paths of a keep-list's text.
///
/// # Errors
/// A quoted line that is not a whole JSON string (the error names the line).
pub fn parse(text: &str) -> io::Result<Vec<String>> {
    text.split('\n')
        .enumerate()
        .map(|(number, line)| (number, line.strip_suffix('\r').unwrap_or(line)))
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            if line.starts_with('"') {
                serde_json::from_str::<String>(line).map_err(|err| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "line {}: a quoted path that is not a JSON string ({err})",
                            number + 1
                        ),
                    )
                })
            } else {
                Ok(line.to_owned())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_survives_a_round_trip_as_one_line() {
        let names = [
            "plain/photo 1.jpg",
            "new\nline.png",
            "carriage\rreturn.png",
            "tab\there.png",
            "\"quoted\".png",
            "trailing space.png ",
            " leading.png",
            "back\\slash.png",
            "bell\u{7}.png",
            "élément_1.png",
            "emoji 😀.png",
        ];
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keep.txt");
        assert_eq!(
            write(&path, names.iter().copied()).expect("write"),
            names.len()
        );
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text.lines().count(),
            names.len(),
            "one line per path:\n{text}"
        );
        assert_eq!(read(&path).expect("read back"), names);
        assert!(text.contains("\"new\\nline.png\"\n"));
        assert!(
            text.starts_with("plain/photo 1.jpg\n"),
            "plain paths stay plain"
        );
    }

    #[test]
    fn a_broken_quoted_line_is_an_error_that_names_it() {
        let err = parse("a.png\n\"unterminated.png\n").expect_err("broken");
        assert!(err.to_string().contains("line 2"), "{err}");
        assert_eq!(
            parse("a.png\r\nb.png\r\n\n").expect("crlf"),
            ["a.png", "b.png"]
        );
    }
}
