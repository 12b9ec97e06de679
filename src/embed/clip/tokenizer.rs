//! CLIP's byte-level BPE tokenizer, matching `open_clip`'s `SimpleTokenizer` (the tokenizer
//! CLIP was trained with): clean the text the way `open_clip` does (`ftfy.fix_text`, HTML
//! unescaping, whitespace collapse, lower-case), split it with CLIP's regex, map each piece's
//! UTF-8 bytes to printable characters, merge them by BPE rank with `</w>` on the last
//! symbol, and wrap the ids in `<|startoftext|>` … `<|endoftext|>`, at most 77 of them.
//!
//! `ftfy` is reproduced for everything but its mojibake repair (`fix_encoding`): HTML
//! entities, C1 controls, ligatures, full-width forms, curly quotes, line breaks, terminal
//! escapes, control characters and NFC. The HTML entity table holds the HTML 4 names plus
//! `apos` and the upper-case aliases, not all 2,231 HTML5 names. `scripts/ref/clip_tokens.py`
//! writes the reference ids the tests compare against.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, PoisonError};

use icu_normalizer::ComposingNormalizerBorrowed;
use regex::{Captures, Regex};

use crate::embed::weights::ModelError;

/// The number of token positions CLIP's text tower has; longer texts are cut to this.
pub const CONTEXT_LENGTH: usize = 77;

/// The vocabulary's start-of-text token.
const START_TOKEN: &str = "<|startoftext|>";
/// The vocabulary's end-of-text token, also the padding token.
const END_TOKEN: &str = "<|endoftext|>";
/// Marks the last symbol of a word.
const END_OF_WORD: &str = "</w>";
/// What `open_clip` 3.x calls its special tokens; in the text they become the start and end
/// ids (its regex matches them, case-insensitively, before anything else).
const TEXT_START: &str = "<start_of_text>";
const TEXT_END: &str = "<end_of_text>";
/// Cached words before the cache is emptied; bounds its memory on endless distinct input.
const CACHE_CAPACITY: usize = 65_536;
/// `ftfy.fix_text` fixes text in segments of at most this many characters.
const FTFY_SEGMENT_CHARS: usize = 1_000_000;

/// A CLIP byte-level BPE tokenizer. Cheap to share between threads (`Send + Sync`); it
/// caches the BPE of the words it has seen.
#[derive(Debug)]
pub struct ClipTokenizer {
    /// The id of each byte's symbol, inside a word and as its last symbol (with `</w>`).
    byte_ids: [u32; 256],
    byte_end_ids: [u32; 256],
    /// (left id, right id) → (merge rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
    start: u32,
    end: u32,
    vocab_size: usize,
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

/// Which input a construction problem is in, so `from_folder` can name the file.
enum Part {
    Vocab,
    Merges,
}

impl ClipTokenizer {
    /// Loads the tokenizer of a Hugging Face CLIP folder: `vocab.json` + `merges.txt` when
    /// both are there, else the BPE model inside `tokenizer.json`.
    pub fn from_folder(dir: &Path) -> Result<Self, ModelError> {
        let vocab_path = dir.join("vocab.json");
        let merges_path = dir.join("merges.txt");
        let json_path = dir.join("tokenizer.json");
        if vocab_path.is_file() && merges_path.is_file() {
            let vocab = parse_vocab(&read(&vocab_path)?).map_err(|m| bad(&vocab_path, m))?;
            let merges =
                parse_merges_txt(&read(&merges_path)?).map_err(|m| bad(&merges_path, m))?;
            return Self::build(&vocab, &merges).map_err(|(part, message)| match part {
                Part::Vocab => bad(&vocab_path, message),
                Part::Merges => bad(&merges_path, message),
            });
        }
        if json_path.is_file() {
            let (vocab, merges) =
                parse_tokenizer_json(&read(&json_path)?).map_err(|m| bad(&json_path, m))?;
            return Self::build(&vocab, &merges).map_err(|(_, message)| bad(&json_path, message));
        }
        let file = if vocab_path.is_file() {
            "merges.txt"
        } else if merges_path.is_file() {
            "vocab.json"
        } else {
            "tokenizer.json"
        };
        Err(ModelError::MissingFile {
            dir: dir.to_owned(),
            file: file.to_owned(),
            needs: "vocab.json and merges.txt, or tokenizer.json, for the CLIP tokenizer".into(),
        })
    }

    /// Builds the tokenizer from a token → id map and the merges in rank order. Fails
    /// (`ModelError::BadFile`) when the vocabulary lacks a byte symbol, a merge's tokens or
    /// the start / end tokens.
    pub fn from_vocab_and_merges(
        vocab: &HashMap<String, u32>,
        merges: &[(String, String)],
    ) -> Result<Self, ModelError> {
        Self::build(vocab, merges)
            .map_err(|(_, message)| bad(Path::new("<vocabulary and merges>"), message))
    }

    fn build(
        vocab: &HashMap<String, u32>,
        merges: &[(String, String)],
    ) -> Result<Self, (Part, String)> {
        let id = |token: &str| vocab.get(token).copied();
        let special = |token: &str| {
            id(token).ok_or_else(|| (Part::Vocab, format!("the vocabulary has no {token} token")))
        };
        let start = special(START_TOKEN)?;
        let end = special(END_TOKEN)?;
        let mut byte_ids = [0; 256];
        let mut byte_end_ids = [0; 256];
        for (byte, symbol) in byte_symbols().iter().enumerate() {
            let missing = |token: String| {
                let message = format!(
                    "the vocabulary has no byte symbol {token:?}; not a CLIP byte-level BPE \
                     vocabulary"
                );
                (Part::Vocab, message)
            };
            let symbol = symbol.to_string();
            byte_ids[byte] = id(&symbol).ok_or_else(|| missing(symbol.clone()))?;
            let last = symbol + END_OF_WORD;
            byte_end_ids[byte] = id(&last).ok_or_else(|| missing(last.clone()))?;
        }
        let mut merge_map = HashMap::with_capacity(merges.len());
        for (rank, (left, right)) in merges.iter().enumerate() {
            let merged = format!("{left}{right}");
            let ids = (id(left), id(right), id(&merged));
            let (Some(left_id), Some(right_id), Some(merged_id)) = ids else {
                let message = format!(
                    "merge {} ({left} {right}): {} is not in the vocabulary",
                    rank + 1,
                    [left, right, &merged]
                        .into_iter()
                        .find(|token| id(token).is_none())
                        .map_or_else(String::new, |token| format!("{token:?}"))
                );
                return Err((Part::Merges, message));
            };
            let rank = u32::try_from(rank)
                .map_err(|_| (Part::Merges, "more than 2^32 merges".to_owned()))?;
            // A repeated merge keeps its last rank, like `open_clip`'s dict.
            merge_map.insert((left_id, right_id), (rank, merged_id));
        }
        let vocab_size = vocab.values().max().map_or(0, |&max| max as usize + 1);
        Ok(Self {
            byte_ids,
            byte_end_ids,
            merges: merge_map,
            start,
            end,
            vocab_size,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The id of `<|startoftext|>`, which begins every tokenized text.
    #[must_use]
    pub fn start_token(&self) -> u32 {
        self.start
    }

    /// The id of `<|endoftext|>`, which ends every tokenized text and pads batches.
    #[must_use]
    pub fn end_token(&self) -> u32 {
        self.end
    }

    /// One more than the largest id in the vocabulary (49408 for CLIP).
    #[must_use]
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The BPE ids of `text` after `open_clip`'s cleaning, without start / end tokens and
    /// without truncation.
    #[must_use]
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_up_to(text, usize::MAX)
    }

    /// [`Self::encode`], stopping once at least `limit` ids are there.
    fn encode_up_to(&self, text: &str, limit: usize) -> Vec<u32> {
        let text = clean(text);
        let mut ids = Vec::new();
        for piece in TOKEN_RE.find_iter(&text) {
            if ids.len() >= limit {
                break;
            }
            match piece.as_str() {
                TEXT_START => ids.push(self.start),
                TEXT_END => ids.push(self.end),
                word => self.encode_word(word, &mut ids),
            }
        }
        ids
    }

    /// `text` as CLIP's text tower reads it: `<|startoftext|>`, the BPE ids,
    /// `<|endoftext|>`, cut to [`CONTEXT_LENGTH`] ids with the last one set back to the end
    /// token when it is longer (as `open_clip.tokenize` does). Not padded.
    #[must_use]
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(CONTEXT_LENGTH);
        ids.push(self.start);
        // 76 text ids are enough to know whether the text is cut, and where.
        ids.extend(self.encode_up_to(text, CONTEXT_LENGTH - 1));
        ids.push(self.end);
        if ids.len() > CONTEXT_LENGTH {
            ids.truncate(CONTEXT_LENGTH);
            ids[CONTEXT_LENGTH - 1] = self.end;
        }
        ids
    }

    /// Tokenizes every text and pads each row with the end token to the longest row: the ids
    /// row-major (`texts.len()` rows) and the row length.
    #[must_use]
    pub fn tokenize_batch(&self, texts: &[&str]) -> (Vec<u32>, usize) {
        let rows: Vec<Vec<u32>> = texts.iter().map(|text| self.tokenize(text)).collect();
        let len = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * len);
        for row in rows {
            let pad = len - row.len();
            ids.extend(row);
            ids.extend(std::iter::repeat_n(self.end, pad));
        }
        (ids, len)
    }

    /// Appends the BPE ids of one regex piece, through the cache.
    fn encode_word(&self, word: &str, ids: &mut Vec<u32>) {
        let cache = || self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache().get(word) {
            ids.extend_from_slice(cached);
            return;
        }
        let merged = self.bpe(word.as_bytes());
        ids.extend_from_slice(&merged);
        let mut cache = cache();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(word.to_owned(), merged);
    }

    /// Byte-pair encodes one word: its bytes' symbols (the last with `</w>`), merged lowest
    /// rank first, leftmost first among equal ranks. A heap over a linked list keeps this
    /// O(n log n); it gives `open_clip`'s rank-by-rank loop whenever each merge's parts are
    /// made by earlier merges, which holds for every trained merge list (and CLIP's).
    fn bpe(&self, bytes: &[u8]) -> Vec<u32> {
        const NONE: usize = usize::MAX;
        let n = bytes.len();
        let mut ids: Vec<u32> = bytes
            .iter()
            .enumerate()
            .map(|(i, &byte)| {
                let table = if i + 1 == n {
                    &self.byte_end_ids
                } else {
                    &self.byte_ids
                };
                table[usize::from(byte)]
            })
            .collect();
        if n < 2 {
            return ids;
        }
        let mut next: Vec<usize> = (1..=n).collect();
        next[n - 1] = NONE;
        let mut prev: Vec<usize> = (0..n).map(|i| i.checked_sub(1).unwrap_or(NONE)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let rank = |ids: &[u32], left: usize, right: usize| {
            self.merges
                .get(&(ids[left], ids[right]))
                .map(|&(rank, _)| rank)
        };
        for i in 0..n - 1 {
            if let Some(r) = rank(&ids, i, i + 1) {
                heap.push(Reverse((r, i)));
            }
        }
        while let Some(Reverse((r, i))) = heap.pop() {
            let j = next[i];
            // Skip entries whose pair has since changed.
            if !alive[i] || j == NONE {
                continue;
            }
            let Some(&(current, merged)) = self.merges.get(&(ids[i], ids[j])) else {
                continue;
            };
            if current != r {
                continue;
            }
            ids[i] = merged;
            alive[j] = false;
            let k = next[j];
            next[i] = k;
            if k != NONE {
                prev[k] = i;
                if let Some(r) = rank(&ids, i, k) {
                    heap.push(Reverse((r, i)));
                }
            }
            let p = prev[i];
            if p != NONE
                && let Some(r) = rank(&ids, p, i)
            {
                heap.push(Reverse((r, p)));
            }
        }
        ids.into_iter()
            .zip(alive)
            .filter_map(|(id, alive)| alive.then_some(id))
            .collect()
    }
}

fn bad(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::BadFile {
        path: PathBuf::from(path),
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|err| bad(path, format!("cannot read: {err}")))
}

/// `vocab.json`: a JSON object of token → id.
fn parse_vocab(text: &str) -> Result<HashMap<String, u32>, String> {
    serde_json::from_str(text).map_err(|err| format!("not a JSON map of token to id: {err}"))
}

/// `merges.txt`: an optional `#version` line, then one `left right` pair per line.
fn parse_merges_txt(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut merges = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || (number == 0 && line.starts_with("#version")) {
            continue;
        }
        merges.push(split_merge(line).ok_or_else(|| {
            format!(
                "line {}: expected two tokens separated by a space, found {:?}",
                number + 1,
                shorten(line)
            )
        })?);
    }
    Ok(merges)
}

/// `"left right"` → `(left, right)`; `None` unless exactly two non-empty parts.
fn split_merge(line: &str) -> Option<(String, String)> {
    let (left, right) = line.split_once(' ')?;
    (!left.is_empty() && !right.is_empty() && !right.contains(' '))
        .then(|| (left.to_owned(), right.to_owned()))
}

fn shorten(text: &str) -> String {
    const SHOWN: usize = 60;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A token → id map and the merges in rank order.
type VocabAndMerges = (HashMap<String, u32>, Vec<(String, String)>);

/// The BPE model of a Hugging Face `tokenizer.json`: `model.vocab` and `model.merges`, the
/// merges as `"left right"` strings or as `[left, right]` pairs.
fn parse_tokenizer_json(text: &str) -> Result<VocabAndMerges, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|err| format!("not valid JSON: {err}"))?;
    let model = json.get("model").ok_or("no \"model\" section")?;
    if let Some(kind) = model.get("type").and_then(serde_json::Value::as_str)
        && kind != "BPE"
    {
        return Err(format!("model type {kind:?}, but CLIP's tokenizer is BPE"));
    }
    if let Some(suffix) = model
        .get("end_of_word_suffix")
        .and_then(serde_json::Value::as_str)
        && suffix != END_OF_WORD
    {
        return Err(format!(
            "end-of-word suffix {suffix:?}, but CLIP uses {END_OF_WORD:?}"
        ));
    }
    let vocab = model
        .get("vocab")
        .ok_or_else(|| "no \"model.vocab\"".to_owned())
        .and_then(|vocab| {
            serde_json::from_value::<HashMap<String, u32>>(vocab.clone())
                .map_err(|err| format!("\"model.vocab\" is not a map of token to id: {err}"))
        })?;
    let merges = model
        .get("merges")
        .and_then(serde_json::Value::as_array)
        .ok_or("no \"model.merges\" list")?;
    let merges = merges
        .iter()
        .enumerate()
        .map(|(i, merge)| {
            let pair = match merge {
                serde_json::Value::String(line) => split_merge(line),
                serde_json::Value::Array(parts) => match parts.as_slice() {
                    [
                        serde_json::Value::String(left),
                        serde_json::Value::String(right),
                    ] => Some((left.clone(), right.clone())),
                    _ => None,
                },
                _ => None,
            };
            pair.ok_or_else(|| {
                format!(
                    "model.merges[{i}] is {}, not \"left right\" or [left, right]",
                    shorten(&merge.to_string())
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((vocab, merges))
}

/// The printable character GPT-2 / CLIP stand each byte for (`bytes_to_unicode`): printable
/// Latin-1 bytes stand for themselves, the rest for U+0100 onwards in byte order.
fn byte_symbols() -> [char; 256] {
    let mut symbols = ['\0'; 256];
    let mut shifted = 0;
    for byte in 0..=255u8 {
        let printable = matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            u32::from(byte)
        } else {
            shifted += 1;
            255 + shifted
        };
        symbols[usize::from(byte)] =
            char::from_u32(code).expect("bytes map to U+0021..U+0143, all valid chars");
    }
    symbols
}

/// CLIP's pre-tokenizer, as `open_clip` compiles it (`regex` module, `IGNORECASE`): only the
/// literals fold case (so `'ſ` is a contraction); U+0345 folds to a letter, so the
/// punctuation class leaves it out while the letter class does not take it either.
static TOKEN_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i:<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d)|\p{L}+|\p{N}|[^\s\p{L}\p{N}\x{345}]+",
    )
    .expect("valid token regex")
});

/// `open_clip`'s `_clean_lower`: `ftfy.fix_text`, `html.unescape` twice, whitespace runs to
/// one space, stripped, lower-cased.
fn clean(text: &str) -> String {
    let text = ftfy_fix_text(text);
    let text = html_unescape(&html_unescape(&text));
    let words: Vec<&str> = text
        .split(is_python_space)
        .filter(|w| !w.is_empty())
        .collect();
    words.join(" ").to_lowercase()
}

/// Python's `str.isspace`: Unicode `White_Space` plus the separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `ftfy.fix_text` with its default configuration, without mojibake repair: per line, the
/// fixes below until nothing changes. As in ftfy, once a line contains `<` HTML entities are
/// left alone in it and in every later line.
fn ftfy_fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape = true;
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        while !rest.is_empty() {
            let cut = rest
                .char_indices()
                .nth(FTFY_SEGMENT_CHARS)
                .map_or(rest.len(), |(i, _)| i);
            let (segment, tail) = rest.split_at(cut);
            rest = tail;
            unescape &= !segment.contains('<');
            out.push_str(&ftfy_fix_segment(segment, unescape));
        }
    }
    out
}

fn ftfy_fix_segment(segment: &str, unescape: bool) -> String {
    // Printable ASCII, tabs and newlines without `&`: no fix applies (the common case).
    if segment
        .bytes()
        .all(|b| matches!(b, b'\t' | b'\n' | b' '..=b'~') && b != b'&')
    {
        return segment.to_owned();
    }
    let mut text = segment.to_owned();
    loop {
        let before = text.clone();
        if unescape {
            text = ftfy_unescape_html(&text);
        }
        text = text.chars().map(fix_c1_control).collect();
        text = fix_ligatures(&text);
        text = fix_character_width(&text);
        text = text.chars().map(uncurl_quote).collect();
        text = text
            .replace("\r\n", "\n")
            .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n");
        text = ANSI_RE.replace_all(&text, "").into_owned();
        text.retain(|c| !is_ftfy_control(c));
        text = ComposingNormalizerBorrowed::new_nfc()
            .normalize(&text)
            .into_owned();
        if text == before {
            return text;
        }
    }
}

/// Windows-1252 for the bytes 0x80..0x9F (the five it leaves undefined stay as they are):
/// `ftfy.fix_c1_controls` and `html.unescape`'s numeric references in that range.
const CP1252_C1: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

fn fix_c1_control(c: char) -> char {
    match c {
        '\u{80}'..='\u{9f}' => CP1252_C1[c as usize - 0x80],
        _ => c,
    }
}

/// `ftfy.fix_latin_ligatures`.
fn fix_ligatures(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match ligature(c) {
            Some(letters) => out.push_str(letters),
            None => out.push(c),
        }
    }
    out
}

fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => return None,
    })
}

/// `ftfy.fix_character_width`: the ideographic space to a space, half- and full-width forms
/// (U+FF01..U+FFEF) to their NFKC forms.
fn fix_character_width(text: &str) -> String {
    let nfkc = ComposingNormalizerBorrowed::new_nfkc();
    let mut out = String::with_capacity(text.len());
    let mut buf = [0; 4];
    for c in text.chars() {
        match c {
            '\u{3000}' => out.push(' '),
            '\u{ff01}'..='\u{ffef}' => out.push_str(&nfkc.normalize(c.encode_utf8(&mut buf))),
            _ => out.push(c),
        }
    }
    out
}

/// `ftfy.uncurl_quotes`.
fn uncurl_quote(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        _ => c,
    }
}

/// The characters `ftfy.remove_control_chars` drops.
fn is_ftfy_control(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{8}'
            | '\u{b}'
            | '\u{e}'..='\u{1f}'
            | '\u{7f}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffc}'
    )
}

/// `ftfy.fixes.remove_terminal_escapes`' pattern.
static ANSI_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\x1b\[[\d;]*[a-zA-Z]").expect("valid ANSI regex"));

/// `ftfy.chardata.HTML_ENTITY_RE`.
static FTFY_ENTITY_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"&#?[0-9A-Za-z]{1,24};").expect("valid entity regex"));

/// `html._charref`.
static CHARREF_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\x0c <&#;]{1,32};?)")
        .expect("valid charref regex")
});

/// The entity tables, parsed once: name → value, and the names decoded without `;`.
struct Entities {
    named: HashMap<&'static str, &'static str>,
    legacy: Vec<&'static str>,
    /// ftfy's extra names: the upper-case spelling of a lower-case name (`&EACUTE;` → É).
    upper: HashMap<String, String>,
}

static ENTITIES: LazyLock<Entities> = LazyLock::new(|| {
    let named: HashMap<&str, &str> = HTML_ENTITIES
        .split(' ')
        .filter_map(|entry| entry.split_once(':'))
        .collect();
    let upper = named
        .iter()
        .filter(|(name, _)| name.chars().all(|c| !c.is_ascii_uppercase()))
        .map(|(name, value)| (name.to_ascii_uppercase(), value.to_uppercase()))
        .filter(|(name, _)| !named.contains_key(name.as_str()))
        .collect();
    Entities {
        named,
        legacy: LEGACY_ENTITIES.split(' ').collect(),
        upper,
    }
});

/// `ftfy.fixes.unescape_html`: named entities with a semicolon (and ftfy's upper-case
/// spellings), and numeric ones that `html.unescape` decodes to something without `;`.
fn ftfy_unescape_html(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    FTFY_ENTITY_RE
        .replace_all(text, |caps: &Captures| {
            let entity = &caps[0];
            let name = &entity[1..entity.len() - 1];
            if let Some(value) = ENTITIES.named.get(name) {
                return (*value).to_owned();
            }
            if let Some(value) = ENTITIES.upper.get(name) {
                return value.clone();
            }
            if name.starts_with('#') {
                let unescaped = html_unescape(entity);
                if !unescaped.contains(';') {
                    return unescaped;
                }
            }
            entity.to_owned()
        })
        .into_owned()
}

/// Python's `html.unescape`.
fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    CHARREF_RE
        .replace_all(text, |caps: &Captures| {
            let reference = &caps[1];
            if let Some(number) = reference.strip_prefix('#') {
                let number = number.trim_end_matches(';');
                let value = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => parse_saturating(hex, 16),
                    None => parse_saturating(number, 10),
                };
                return numeric_reference(value);
            }
            let entities = &*ENTITIES;
            if let Some(name) = reference.strip_suffix(';')
                && let Some(value) = entities.named.get(name)
            {
                return (*value).to_owned();
            }
            // The longest legacy name the reference starts with, then the rest verbatim.
            let mut cuts: Vec<usize> = reference.char_indices().map(|(i, _)| i).skip(2).collect();
            cuts.push(reference.len());
            for &cut in cuts.iter().rev() {
                let prefix = &reference[..cut];
                if entities.legacy.contains(&prefix) {
                    return format!("{}{}", entities.named[prefix], &reference[cut..]);
                }
            }
            format!("&{reference}")
        })
        .into_owned()
}

/// The number in `digits` (valid in `radix`), or `u32::MAX` when it does not fit.
fn parse_saturating(digits: &str, radix: u32) -> u32 {
    digits
        .chars()
        .filter_map(|c| c.to_digit(radix))
        .try_fold(0u32, |value, digit| {
            value.checked_mul(radix)?.checked_add(digit)
        })
        .unwrap_or(u32::MAX)
}

/// What `html.unescape` makes of `&#number;`.
fn numeric_reference(value: u32) -> String {
    match value {
        0 | 0xd800..=0xdfff | 0x11_0000.. => "\u{fffd}".to_owned(),
        0x0d => "\r".to_owned(),
        0x80..=0x9f => CP1252_C1[value as usize - 0x80].to_string(),
        0x1..=0x8 | 0xb | 0xe..=0x1f | 0x7f | 0xfdd0..=0xfdef => String::new(),
        _ if value & 0xfffe == 0xfffe => String::new(),
        _ => char::from_u32(value).map_or_else(String::new, String::from),
    }
}

/// The HTML entities decoded, as `name:value` separated by spaces: the HTML 4 names, `apos`
/// and HTML5's upper-case aliases. Written by `scripts/ref/clip_tokens.py --rust-entities`.
const HTML_ENTITIES: &str = "\
    AElig:Æ AMP:& Aacute:Á Acirc:Â Agrave:À Alpha:Α Aring:Å Atilde:Ã Auml:Ä Beta:Β COPY:© \
    Ccedil:Ç Chi:Χ Dagger:‡ Delta:Δ ETH:Ð Eacute:É Ecirc:Ê Egrave:È Epsilon:Ε Eta:Η Euml:Ë \
    GT:> Gamma:Γ Iacute:Í Icirc:Î Igrave:Ì Iota:Ι Iuml:Ï Kappa:Κ LT:< Lambda:Λ Mu:Μ Ntilde:Ñ \
    Nu:Ν OElig:Œ Oacute:Ó Ocirc:Ô Ograve:Ò Omega:Ω Omicron:Ο Oslash:Ø Otilde:Õ Ouml:Ö Phi:Φ \
    Pi:Π Prime:″ Psi:Ψ QUOT:\" REG:® Rho:Ρ Scaron:Š Sigma:Σ THORN:Þ TRADE:™ Tau:Τ Theta:Θ \
    Uacute:Ú Ucirc:Û Ugrave:Ù Upsilon:Υ Uuml:Ü Xi:Ξ Yacute:Ý Yuml:Ÿ Zeta:Ζ aacute:á acirc:â \
    acute:´ aelig:æ agrave:à alefsym:ℵ alpha:α amp:& and:∧ ang:∠ apos:' aring:å asymp:≈ \
    atilde:ã auml:ä bdquo:„ beta:β brvbar:¦ bull:• cap:∩ ccedil:ç cedil:¸ cent:¢ chi:χ \
    circ:ˆ clubs:♣ cong:≅ copy:© crarr:↵ cup:∪ curren:¤ dArr:⇓ dagger:† darr:↓ deg:° delta:δ \
    diams:♦ divide:÷ eacute:é ecirc:ê egrave:è empty:∅ emsp:\u{2003} ensp:\u{2002} epsilon:ε \
    equiv:≡ eta:η eth:ð euml:ë euro:€ exist:∃ fnof:ƒ forall:∀ frac12:½ frac14:¼ frac34:¾ \
    frasl:⁄ gamma:γ ge:≥ gt:> hArr:⇔ harr:↔ hearts:♥ hellip:… iacute:í icirc:î iexcl:¡ \
    igrave:ì image:ℑ infin:∞ int:∫ iota:ι iquest:¿ isin:∈ iuml:ï kappa:κ lArr:⇐ lambda:λ \
    lang:⟨ laquo:« larr:← lceil:⌈ ldquo:“ le:≤ lfloor:⌊ lowast:∗ loz:◊ lrm:\u{200e} lsaquo:‹ \
    lsquo:‘ lt:< macr:¯ mdash:— micro:µ middot:· minus:− mu:μ nabla:∇ nbsp:\u{a0} ndash:– \
    ne:≠ ni:∋ not:¬ notin:∉ nsub:⊄ ntilde:ñ nu:ν oacute:ó ocirc:ô oelig:œ ograve:ò oline:‾ \
    omega:ω omicron:ο oplus:⊕ or:∨ ordf:ª ordm:º oslash:ø otilde:õ otimes:⊗ ouml:ö para:¶ \
    part:∂ permil:‰ perp:⊥ phi:φ pi:π piv:ϖ plusmn:± pound:£ prime:′ prod:∏ prop:∝ psi:ψ \
    quot:\" rArr:⇒ radic:√ rang:⟩ raquo:» rarr:→ rceil:⌉ rdquo:” real:ℜ reg:® rfloor:⌋ rho:ρ \
    rlm:\u{200f} rsaquo:› rsquo:’ sbquo:‚ scaron:š sdot:⋅ sect:§ shy:\u{ad} sigma:σ sigmaf:ς \
    sim:∼ spades:♠ sub:⊂ sube:⊆ sum:∑ sup:⊃ sup1:¹ sup2:² sup3:³ supe:⊇ szlig:ß tau:τ \
    there4:∴ theta:θ thetasym:ϑ thinsp:\u{2009} thorn:þ tilde:˜ times:× trade:™ uArr:⇑ \
    uacute:ú uarr:↑ ucirc:û ugrave:ù uml:¨ upsih:ϒ upsilon:υ uuml:ü weierp:℘ xi:ξ yacute:ý \
    yen:¥ yuml:ÿ zeta:ζ zwj:\u{200d} zwnj:\u{200c}";

/// The names `html.unescape` also decodes without a semicolon (HTML5's legacy names).
const LEGACY_ENTITIES: &str = "\
    AElig AMP Aacute Acirc Agrave Aring Atilde Auml COPY Ccedil ETH Eacute Ecirc Egrave Euml \
    GT Iacute Icirc Igrave Iuml LT Ntilde Oacute Ocirc Ograve Oslash Otilde Ouml QUOT REG \
    THORN Uacute Ucirc Ugrave Uuml Yacute aacute acirc acute aelig agrave amp aring atilde \
    auml brvbar ccedil cedil cent copy curren deg divide eacute ecirc egrave eth euml frac12 \
    frac14 frac34 gt iacute icirc iexcl igrave iquest iuml laquo lt macr micro middot nbsp \
    not ntilde oacute ocirc ograve ordf ordm oslash otilde ouml para plusmn pound quot raquo \
    reg sect shy sup1 sup2 sup3 szlig thorn times uacute ucirc ugrave uml uuml yacute yen \
    yuml";

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    const TINY_CLIP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny-clip");
    const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/clip-tokens.jsonl");

    /// Reference captions whose ids we knowingly do not reproduce, each with the reason.
    /// Mojibake: `ftfy.fix_encoding` re-decodes text that looks like UTF-8 read as
    /// Windows-1252 (`cafÃ©` → `café`); porting its heuristics is out of scope.
    /// HTML5-only entity names (`&check;`, `&NewLine;`) are not in our table.
    const KNOWN_MISMATCHES: &[(&str, &str)] = &[
        ("cafÃ©", "ftfy mojibake repair"),
        ("Ã©tÃ© Ã  Paris", "ftfy mojibake repair"),
        ("â€œquotedâ€\u{9d}", "ftfy mojibake repair"),
        ("Ã¼ber cool", "ftfy mojibake repair"),
        ("voilÃ  le travail", "ftfy mojibake repair"),
        ("&Atilde;&copy; mojibake entity", "ftfy mojibake repair"),
        ("&check; &NewLine; html5", "HTML5-only entity names"),
    ];

    fn tokenizer() -> &'static ClipTokenizer {
        static TOKENIZER: OnceLock<ClipTokenizer> = OnceLock::new();
        TOKENIZER.get_or_init(|| ClipTokenizer::from_folder(Path::new(TINY_CLIP)).unwrap())
    }

    struct Reference {
        text: String,
        ids: Vec<u32>,
        clean: String,
    }

    fn reference() -> Vec<Reference> {
        let text = std::fs::read_to_string(REFERENCE).unwrap();
        text.lines()
            .map(|line| {
                let json: serde_json::Value = serde_json::from_str(line).unwrap();
                Reference {
                    text: json["text"].as_str().unwrap().to_owned(),
                    ids: serde_json::from_value(json["ids"].clone()).unwrap(),
                    clean: json["clean"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    }

    fn vocab_id(token: &str) -> u32 {
        static VOCAB: OnceLock<HashMap<String, u32>> = OnceLock::new();
        VOCAB.get_or_init(|| {
            let text = std::fs::read_to_string(Path::new(TINY_CLIP).join("vocab.json")).unwrap();
            parse_vocab(&text).unwrap()
        })[token]
    }

    #[test]
    fn every_reference_caption_matches_open_clip() {
        let tokenizer = tokenizer();
        let reference = reference();
        assert!(
            reference.len() >= 300,
            "{} reference captions",
            reference.len()
        );
        let mut unexpected = Vec::new();
        let mut known = Vec::new();
        for case in &reference {
            let ids = tokenizer.tokenize(&case.text);
            let allowed = KNOWN_MISMATCHES.iter().any(|(text, _)| *text == case.text);
            if ids == case.ids {
                if allowed {
                    unexpected.push(format!(
                        "{:?} now matches: drop it from the list",
                        case.text
                    ));
                }
                continue;
            }
            if allowed {
                known.push(&case.text);
                continue;
            }
            let ours = clean(&case.text);
            let stage = if ours == case.clean {
                String::from("BPE differs")
            } else {
                format!("cleaned to {ours:?}, open_clip {:?}", case.clean)
            };
            unexpected.push(format!(
                "{:?}: {stage}\n    ours     {ids:?}\n    open_clip {:?}",
                case.text, case.ids
            ));
        }
        assert_eq!(
            known.len(),
            KNOWN_MISMATCHES.len(),
            "allow-list texts missing from the file"
        );
        assert!(
            unexpected.is_empty(),
            "{} of {} captions differ from open_clip:\n{}",
            unexpected.len(),
            reference.len(),
            unexpected.join("\n")
        );
    }

    #[test]
    fn hand_checked_cases() {
        let tokenizer = tokenizer();
        assert_eq!(tokenizer.start_token(), 49406);
        assert_eq!(tokenizer.end_token(), 49407);
        assert_eq!(tokenizer.vocab_size(), 49408);
        let ids = |tokens: &[&str]| tokens.iter().map(|t| vocab_id(t)).collect::<Vec<_>>();

        assert_eq!(
            tokenizer.encode("A photo of a CAT!"),
            ids(&["a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>", "!</w>"])
        );
        // Curly apostrophe uncurled, then split off as a contraction.
        assert_eq!(tokenizer.encode("It\u{2019}s"), ids(&["it</w>", "'s</w>"]));
        // HTML unescaped until nothing is left (ftfy, then html.unescape twice).
        assert_eq!(
            tokenizer.encode("Fish &amp;amp; Chips"),
            ids(&["fish</w>", "&</w>", "chips</w>"])
        );
        // Ligature, full-width letters, whitespace runs.
        assert_eq!(
            tokenizer.encode("\u{fb01}ne\t\n  \u{ff23}\u{ff21}\u{ff34}"),
            ids(&["fine</w>", "cat</w>"])
        );
        // One byte symbol per UTF-8 byte of "é" (0xC3 0xA9 → "Ã", "©</w>"), then merged.
        assert_eq!(tokenizer.encode("\u{e9}"), ids(&["Ã©</w>"]));
        assert_eq!(
            tokenizer.encode("cafe\u{301}"),
            tokenizer.encode("caf\u{e9}")
        );
        // open_clip's own special-token spelling, not Hugging Face's.
        assert_eq!(tokenizer.encode("<start_of_text>"), vec![49406]);
        assert_ne!(tokenizer.encode("<|endoftext|>"), vec![49407]);

        assert_eq!(tokenizer.tokenize(""), vec![49406, 49407]);
        assert_eq!(tokenizer.tokenize(" \t\n "), vec![49406, 49407]);
        let long = "cat ".repeat(100);
        let tokens = tokenizer.tokenize(&long);
        assert_eq!(tokens.len(), CONTEXT_LENGTH);
        assert_eq!(tokens[0], 49406);
        assert_eq!(tokens[CONTEXT_LENGTH - 1], 49407);
        assert!(
            tokens[1..CONTEXT_LENGTH - 1]
                .iter()
                .all(|&id| id == vocab_id("cat</w>"))
        );
        // Exactly 77 with the end token: nothing cut.
        let fits = tokenizer.tokenize(&"cat ".repeat(75));
        assert_eq!(fits.len(), CONTEXT_LENGTH);
        assert_eq!(fits[CONTEXT_LENGTH - 2], vocab_id("cat</w>"));
    }

    #[test]
    fn batches_pad_with_the_end_token() {
        let tokenizer = tokenizer();
        let (ids, len) = tokenizer.tokenize_batch(&["a cat", "", "a photo of a dog"]);
        assert_eq!(len, 7);
        assert_eq!(ids.len(), 3 * len);
        let end = tokenizer.end_token();
        let row = |i: usize| &ids[i * len..(i + 1) * len];
        assert_eq!(
            row(0),
            [&tokenizer.tokenize("a cat")[..], &[end; 3]].concat()
        );
        assert_eq!(row(1), [49406, end, end, end, end, end, end]);
        assert_eq!(row(2), tokenizer.tokenize("a photo of a dog"));
        assert_eq!(tokenizer.tokenize_batch(&[]), (Vec::new(), 0));
    }

    #[test]
    fn shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ClipTokenizer>();
        // A fresh tokenizer, so four threads fill its cache at once.
        let fresh = ClipTokenizer::from_folder(Path::new(TINY_CLIP)).unwrap();
        let fresh = &fresh;
        let reference = reference();
        std::thread::scope(|scope| {
            for chunk in reference.chunks(reference.len() / 4 + 1) {
                scope.spawn(move || {
                    for case in chunk.iter().chain(chunk) {
                        assert_eq!(fresh.tokenize(&case.text), tokenizer().tokenize(&case.text));
                    }
                });
            }
        });
    }

    #[test]
    fn tokenizer_json_gives_the_same_ids() {
        let vocab = std::fs::read_to_string(Path::new(TINY_CLIP).join("vocab.json")).unwrap();
        let merges = std::fs::read_to_string(Path::new(TINY_CLIP).join("merges.txt")).unwrap();
        let vocab: serde_json::Value = serde_json::from_str(&vocab).unwrap();
        let merges = parse_merges_txt(&merges).unwrap();
        let as_strings: Vec<String> = merges.iter().map(|(a, b)| format!("{a} {b}")).collect();
        let as_pairs: Vec<[&String; 2]> = merges.iter().map(|(a, b)| [a, b]).collect();
        let reference = reference();
        for merges in [serde_json::json!(as_strings), serde_json::json!(as_pairs)] {
            let dir = tempfile::tempdir().unwrap();
            let json = serde_json::json!({
                "version": "1.0",
                "model": {
                    "type": "BPE",
                    "end_of_word_suffix": "</w>",
                    "vocab": vocab,
                    "merges": merges,
                },
            });
            std::fs::write(dir.path().join("tokenizer.json"), json.to_string()).unwrap();
            let from_json = ClipTokenizer::from_folder(dir.path()).unwrap();
            for case in &reference {
                assert_eq!(
                    from_json.tokenize(&case.text),
                    tokenizer().tokenize(&case.text),
                    "{:?}",
                    case.text
                );
            }
        }
    }

    fn error_text(dir: &Path) -> (ModelError, String) {
        let err = ClipTokenizer::from_folder(dir).unwrap_err();
        let text = err.to_string();
        (err, text)
    }

    #[test]
    fn missing_and_broken_files_are_errors() {
        let (err, text) = error_text(Path::new("/nonexistent/clip"));
        assert!(
            matches!(&err, ModelError::MissingFile { file, .. } if file == "tokenizer.json"),
            "{text}"
        );
        assert!(text.contains("vocab.json and merges.txt"), "{text}");

        let dir = tempfile::tempdir().unwrap();
        let merges = std::fs::read_to_string(Path::new(TINY_CLIP).join("merges.txt")).unwrap();
        std::fs::write(dir.path().join("merges.txt"), &merges).unwrap();
        let (err, text) = error_text(dir.path());
        assert!(matches!(&err, ModelError::MissingFile { file, .. } if file == "vocab.json"));
        assert!(text.contains("missing vocab.json"), "{text}");

        std::fs::write(dir.path().join("vocab.json"), "{\"a\": 1, \"b\": ").unwrap();
        let (err, text) = error_text(dir.path());
        assert!(
            matches!(&err, ModelError::BadFile { path, .. } if path.ends_with("vocab.json")),
            "{text}"
        );
        assert!(text.contains("not a JSON map"), "{text}");

        std::fs::write(dir.path().join("vocab.json"), "[1, 2, 3]").unwrap();
        let (_, text) = error_text(dir.path());
        assert!(text.contains("vocab.json: not a JSON map"), "{text}");

        // A vocabulary without the byte symbols is not CLIP's.
        std::fs::write(
            dir.path().join("vocab.json"),
            r#"{"<|startoftext|>": 0, "<|endoftext|>": 1, "a": 2}"#,
        )
        .unwrap();
        let (_, text) = error_text(dir.path());
        assert!(text.contains("no byte symbol"), "{text}");

        // The real vocabulary with a garbled merge line names the file and the line.
        std::fs::copy(
            Path::new(TINY_CLIP).join("vocab.json"),
            dir.path().join("vocab.json"),
        )
        .unwrap();
        std::fs::write(dir.path().join("merges.txt"), "#version: 0.2\ni n\nt h e\n").unwrap();
        let (err, text) = error_text(dir.path());
        assert!(
            matches!(&err, ModelError::BadFile { path, .. } if path.ends_with("merges.txt")),
            "{text}"
        );
        assert!(text.contains("line 3"), "{text}");

        // A merge whose tokens are not in the vocabulary.
        std::fs::write(
            dir.path().join("merges.txt"),
            "#version: 0.2\ni n\nzzz qqq\n",
        )
        .unwrap();
        let (_, text) = error_text(dir.path());
        assert!(text.contains("merges.txt: merge 2 (zzz qqq)"), "{text}");

        // tokenizer.json that is not JSON, or not a BPE model.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "not json").unwrap();
        let (_, text) = error_text(dir.path());
        assert!(text.contains("tokenizer.json: not valid JSON"), "{text}");
        std::fs::write(
            dir.path().join("tokenizer.json"),
            r#"{"model": {"type": "WordPiece", "vocab": {}}}"#,
        )
        .unwrap();
        let (_, text) = error_text(dir.path());
        assert!(text.contains("WordPiece"), "{text}");
        std::fs::write(
            dir.path().join("tokenizer.json"),
            r#"{"model": {"type": "BPE", "vocab": {}, "merges": [["a"]]}}"#,
        )
        .unwrap();
        let (_, text) = error_text(dir.path());
        assert!(text.contains("model.merges[0]"), "{text}");
    }

    #[test]
    fn in_memory_construction_checks_the_vocabulary() {
        let mut vocab: HashMap<String, u32> = byte_symbols()
            .iter()
            .flat_map(|c| [c.to_string(), format!("{c}{END_OF_WORD}")])
            .zip(0..)
            .collect();
        let err = ClipTokenizer::from_vocab_and_merges(&vocab, &[]).unwrap_err();
        assert!(
            err.to_string().contains("no <|startoftext|> token"),
            "{err}"
        );
        vocab.insert(START_TOKEN.into(), 512);
        vocab.insert(END_TOKEN.into(), 513);
        vocab.insert("hi</w>".into(), 514);
        let merges = vec![("h".to_owned(), "i</w>".to_owned())];
        let tokenizer = ClipTokenizer::from_vocab_and_merges(&vocab, &merges).unwrap();
        // Ids interleave by byte value: "h" (0x68) is 2 × 0x68, "h</w>" one more.
        assert_eq!(tokenizer.tokenize("Hi hh"), vec![512, 514, 208, 209, 513]);
        assert_eq!(tokenizer.vocab_size(), 515);
    }

    #[test]
    fn python_html_unescape_rules() {
        for (text, expected) in [
            ("&amp;", "&"),
            ("&ampfoo", "&foo"),
            ("&notit;", "¬it;"),
            ("&copy2024", "©2024"),
            ("&hearts", "&hearts"),
            ("&#128;&#x80;", "€€"),
            ("&#0;&#xD800;&#99999999999999;", "\u{fffd}\u{fffd}\u{fffd}"),
            ("&#1;&#xFFFF;&#x10FFFE;", ""),
            ("&#65&#x42;", "AB"),
            ("&unknown;", "&unknown;"),
        ] {
            assert_eq!(html_unescape(text), expected, "{text}");
        }
        // ftfy keeps numeric references that decode to something with a semicolon.
        assert_eq!(ftfy_unescape_html("&#59; &EACUTE; &SZLIG;"), "&#59; É SS");
    }
}
