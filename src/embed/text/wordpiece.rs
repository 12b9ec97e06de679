//! The BERT `WordPiece` tokenizer, matching Hugging Face `tokenizers`' `BertNormalizer` +
//! `BertPreTokenizer` + `WordPiece` (what `BertTokenizerFast` and sentence-transformers run):
//! clean the text, isolate CJK characters, strip accents, lower-case, split on whitespace and
//! punctuation, then greedy longest-match-first word pieces, wrapped in `[CLS] … [SEP]`.
//!
//! Character classes come from Unicode 16 (`unicode-general-category`, `icu_normalizer`);
//! `tokenizers` 0.23 uses older tables, so about 600 code points assigned since (format
//! characters, combining marks and punctuation of rare scripts, none in the vocabulary)
//! are dropped or split here where `tokenizers` keeps them inside an `[UNK]` word.

use std::collections::HashMap;
use std::path::Path;

use icu_normalizer::DecomposingNormalizerBorrowed;
use serde::Deserialize;
use unicode_general_category::{GeneralCategory, get_general_category};

use crate::embed::weights::ModelError;

/// What `BertNormalizer` does to the text before it is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "mirrors BertNormalizer's options"
)]
struct Normalizer {
    /// Drop control characters, map every whitespace character to a space.
    clean_text: bool,
    /// Put spaces around CJK ideographs so each one is a word.
    handle_chinese_chars: bool,
    /// NFD, then drop non-spacing marks.
    strip_accents: bool,
    lowercase: bool,
}

/// A `WordPiece` vocabulary with the normalisation and special tokens around it.
#[derive(Debug, Clone)]
pub(crate) struct WordPiece {
    vocab: HashMap<String, u32>,
    normalizer: Normalizer,
    continuing_prefix: String,
    max_chars_per_word: usize,
    unk_id: u32,
    cls_id: u32,
    sep_id: u32,
    /// Tokens matched verbatim in the raw text before normalisation (`[MASK]`, `[SEP]`, …),
    /// longest first so the leftmost-longest match wins.
    added: Vec<(String, u32)>,
}

fn bad(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::BadFile {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ModelError> {
    let text =
        std::fs::read_to_string(path).map_err(|err| bad(path, format!("cannot read: {err}")))?;
    serde_json::from_str(&text).map_err(|err| bad(path, format!("not the expected JSON: {err}")))
}

/// `tokenizer.json`, the parts a BERT tokenizer uses.
#[derive(Deserialize)]
struct TokenizerJson {
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
    normalizer: Option<serde_json::Value>,
    pre_tokenizer: Option<serde_json::Value>,
    post_processor: Option<serde_json::Value>,
    model: TokenizerModel,
}

#[derive(Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
    #[serde(default)]
    normalized: bool,
}

#[derive(Deserialize)]
struct TokenizerModel {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    vocab: serde_json::Value,
    unk_token: Option<String>,
    continuing_subword_prefix: Option<String>,
    max_input_chars_per_word: Option<usize>,
}

#[derive(Deserialize)]
struct BertNormalizerJson {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "yes")]
    clean_text: bool,
    #[serde(default = "yes")]
    handle_chinese_chars: bool,
    strip_accents: Option<bool>,
    #[serde(default = "yes")]
    lowercase: bool,
}

fn yes() -> bool {
    true
}

/// `tokenizer_config.json`, read next to `vocab.txt` when there is no `tokenizer.json`.
#[derive(Deserialize, Default)]
struct TokenizerConfig {
    do_lower_case: Option<bool>,
    strip_accents: Option<bool>,
    tokenize_chinese_chars: Option<bool>,
    unk_token: Option<TokenName>,
    sep_token: Option<TokenName>,
    pad_token: Option<TokenName>,
    cls_token: Option<TokenName>,
    mask_token: Option<TokenName>,
}

/// A special token as saved by `transformers`: a plain string or an `AddedToken` object.
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenName {
    Plain(String),
    Added { content: String },
}

impl TokenName {
    fn content(&self) -> &str {
        match self {
            Self::Plain(s) | Self::Added { content: s } => s,
        }
    }
}

impl WordPiece {
    /// Reads a Hugging Face `tokenizer.json` holding a BERT `WordPiece` tokenizer.
    pub(crate) fn from_tokenizer_json(path: &Path) -> Result<Self, ModelError> {
        let json: TokenizerJson = read_json(path)?;
        let model_kind = json.model.kind.as_deref().unwrap_or("WordPiece");
        if model_kind != "WordPiece" {
            return Err(bad(
                path,
                format!("a {model_kind} tokenizer; a BERT sentence encoder needs WordPiece"),
            ));
        }
        let normalizer = match &json.normalizer {
            None | Some(serde_json::Value::Null) => Normalizer {
                clean_text: false,
                handle_chinese_chars: false,
                strip_accents: false,
                lowercase: false,
            },
            Some(value) => {
                let n: BertNormalizerJson = serde_json::from_value(value.clone())
                    .map_err(|err| bad(path, format!("unsupported normalizer: {err}")))?;
                if n.kind != "BertNormalizer" {
                    return Err(bad(
                        path,
                        format!(
                            "unsupported normalizer {} (expected BertNormalizer)",
                            n.kind
                        ),
                    ));
                }
                Normalizer {
                    clean_text: n.clean_text,
                    handle_chinese_chars: n.handle_chinese_chars,
                    strip_accents: n.strip_accents.unwrap_or(n.lowercase),
                    lowercase: n.lowercase,
                }
            }
        };
        let pre_kind = json
            .pre_tokenizer
            .as_ref()
            .and_then(|p| p.get("type"))
            .and_then(serde_json::Value::as_str);
        if pre_kind != Some("BertPreTokenizer") {
            return Err(bad(
                path,
                format!(
                    "unsupported pre-tokenizer {} (expected BertPreTokenizer)",
                    pre_kind.unwrap_or("none")
                ),
            ));
        }
        let vocab: HashMap<String, u32> = serde_json::from_value(json.model.vocab)
            .map_err(|err| bad(path, format!("model.vocab is not a token → id map: {err}")))?;
        let unk = json.model.unk_token.unwrap_or_else(|| "[UNK]".to_owned());
        let unk_id = lookup(&vocab, &unk, path)?;
        let (cls_id, sep_id) = match special_ids(json.post_processor.as_ref()) {
            Some(ids) => ids,
            None => (
                lookup(&vocab, "[CLS]", path)?,
                lookup(&vocab, "[SEP]", path)?,
            ),
        };
        // Added tokens with `normalized: true` would be matched in the normalised text; BERT
        // files do not have them, so only the verbatim ones are honoured.
        let added = json
            .added_tokens
            .into_iter()
            .filter(|t| !t.normalized && !t.content.is_empty())
            .map(|t| (t.content, t.id))
            .collect();
        Ok(Self::new(
            vocab,
            normalizer,
            json.model
                .continuing_subword_prefix
                .unwrap_or_else(|| "##".to_owned()),
            json.model.max_input_chars_per_word.unwrap_or(100),
            [unk_id, cls_id, sep_id],
            added,
        ))
    }

    /// Reads a `vocab.txt` (one token a line, id = line number) with the options in
    /// `tokenizer_config.json` when that file exists.
    pub(crate) fn from_vocab_txt(
        vocab_path: &Path,
        config_path: &Path,
    ) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(vocab_path)
            .map_err(|err| bad(vocab_path, format!("cannot read: {err}")))?;
        let mut vocab = HashMap::new();
        for (id, token) in text.lines().enumerate() {
            let id = u32::try_from(id).map_err(|_| bad(vocab_path, "too many tokens"))?;
            // A repeated token keeps its last id, as in `transformers`' `load_vocab`.
            vocab.insert(token.to_owned(), id);
        }
        let config: TokenizerConfig = if config_path.is_file() {
            read_json(config_path)?
        } else {
            TokenizerConfig::default()
        };
        let lowercase = config.do_lower_case.unwrap_or(true);
        let normalizer = Normalizer {
            clean_text: true,
            handle_chinese_chars: config.tokenize_chinese_chars.unwrap_or(true),
            strip_accents: config.strip_accents.unwrap_or(lowercase),
            lowercase,
        };
        let name = |t: &Option<TokenName>, default: &str| {
            t.as_ref().map_or(default, TokenName::content).to_owned()
        };
        let unk = name(&config.unk_token, "[UNK]");
        let cls = name(&config.cls_token, "[CLS]");
        let sep = name(&config.sep_token, "[SEP]");
        let ids = [
            lookup(&vocab, &unk, vocab_path)?,
            lookup(&vocab, &cls, vocab_path)?,
            lookup(&vocab, &sep, vocab_path)?,
        ];
        // The special tokens are never split, as in `BertTokenizer`.
        let added = [
            unk,
            cls,
            sep,
            name(&config.pad_token, "[PAD]"),
            name(&config.mask_token, "[MASK]"),
        ]
        .into_iter()
        .filter_map(|t| vocab.get(&t).map(|&id| (t, id)))
        .collect();
        Ok(Self::new(
            vocab,
            normalizer,
            "##".to_owned(),
            100,
            ids,
            added,
        ))
    }

    fn new(
        vocab: HashMap<String, u32>,
        normalizer: Normalizer,
        continuing_prefix: String,
        max_chars_per_word: usize,
        [unk_id, cls_id, sep_id]: [u32; 3],
        mut added: Vec<(String, u32)>,
    ) -> Self {
        added.sort_by_key(|(token, _)| std::cmp::Reverse(token.len()));
        Self {
            vocab,
            normalizer,
            continuing_prefix,
            max_chars_per_word,
            unk_id,
            cls_id,
            sep_id,
            added,
        }
    }

    /// The largest id the tokenizer can produce (must fit the model's embedding table).
    pub(crate) fn max_id(&self) -> u32 {
        let vocab = self.vocab.values().copied().max().unwrap_or(0);
        let added = self.added.iter().map(|(_, id)| *id).max().unwrap_or(0);
        vocab
            .max(added)
            .max(self.cls_id)
            .max(self.sep_id)
            .max(self.unk_id)
    }

    /// Token ids of `text`: `[CLS]`, at most `max_len - 2` word pieces, `[SEP]`.
    pub(crate) fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let budget = max_len.saturating_sub(2);
        let mut ids = vec![self.cls_id];
        let mut rest = text;
        while !rest.is_empty() && ids.len() <= budget {
            let (before, special, after) = self.split_added(rest);
            self.encode_plain(before, &mut ids);
            if let Some(id) = special {
                ids.push(id);
            }
            rest = after;
        }
        ids.truncate(budget + 1);
        ids.push(self.sep_id);
        ids
    }

    /// Splits at the first verbatim added token: (text before, its id, text after).
    fn split_added<'a>(&self, text: &'a str) -> (&'a str, Option<u32>, &'a str) {
        if !self.added.is_empty() {
            for (start, _) in text.char_indices() {
                let tail = &text[start..];
                if let Some((token, id)) = self
                    .added
                    .iter()
                    .find(|(t, _)| tail.starts_with(t.as_str()))
                {
                    return (&text[..start], Some(*id), &tail[token.len()..]);
                }
            }
        }
        (text, None, "")
    }

    /// Normalises, splits and word-pieces text that holds no added token.
    fn encode_plain(&self, text: &str, ids: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let normalized = self.normalizer.apply(text);
        let mut piece = String::new();
        for word in normalized.split(char::is_whitespace) {
            let mut start = 0;
            for (i, c) in word.char_indices() {
                if is_punctuation(c) {
                    self.word_pieces(&word[start..i], ids, &mut piece);
                    self.word_pieces(&word[i..i + c.len_utf8()], ids, &mut piece);
                    start = i + c.len_utf8();
                }
            }
            self.word_pieces(&word[start..], ids, &mut piece);
        }
    }

    /// Greedy longest-match-first word pieces of one word; the whole word is `[UNK]` when it
    /// is too long or some part of it matches nothing.
    fn word_pieces(&self, word: &str, ids: &mut Vec<u32>, piece: &mut String) {
        if word.is_empty() {
            return;
        }
        if word.chars().count() > self.max_chars_per_word {
            ids.push(self.unk_id);
            return;
        }
        let first = ids.len();
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                piece.clear();
                if start > 0 {
                    piece.push_str(&self.continuing_prefix);
                }
                piece.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(piece.as_str()) {
                    found = Some(id);
                    break;
                }
                let last = word[start..end]
                    .chars()
                    .next_back()
                    .map_or(1, char::len_utf8);
                end -= last;
            }
            let Some(id) = found else {
                ids.truncate(first);
                ids.push(self.unk_id);
                return;
            };
            ids.push(id);
            start = end;
        }
    }
}

impl Normalizer {
    fn apply(self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if self.clean_text {
                if c == '\0' || c == '\u{fffd}' || is_control(c) {
                    continue;
                }
                if is_whitespace(c) {
                    out.push(' ');
                    continue;
                }
            }
            if self.handle_chinese_chars && is_chinese_char(c) {
                out.push(' ');
                out.push(c);
                out.push(' ');
            } else {
                out.push(c);
            }
        }
        // `tokenizers` strips accents before lower-casing, and lower-cases char by char
        // (no final-sigma rule).
        if self.strip_accents {
            out = DecomposingNormalizerBorrowed::new_nfd()
                .normalize(&out)
                .chars()
                .filter(|&c| get_general_category(c) != GeneralCategory::NonspacingMark)
                .collect();
        }
        if self.lowercase {
            out = out.chars().flat_map(char::to_lowercase).collect();
        }
        out
    }
}

/// Looks `token` up, or says the vocabulary lacks it.
fn lookup(vocab: &HashMap<String, u32>, token: &str, path: &Path) -> Result<u32, ModelError> {
    vocab
        .get(token)
        .copied()
        .ok_or_else(|| bad(path, format!("the vocabulary has no {token} token")))
}

/// `[CLS]` and `[SEP]` ids from a `BertProcessing` or single-sequence `TemplateProcessing`
/// post-processor.
fn special_ids(post: Option<&serde_json::Value>) -> Option<(u32, u32)> {
    let post = post?;
    let id_of = |v: &serde_json::Value| v.as_u64().and_then(|id| u32::try_from(id).ok());
    match post.get("type")?.as_str()? {
        "BertProcessing" => Some((
            id_of(post.get("cls")?.get(1)?)?,
            id_of(post.get("sep")?.get(1)?)?,
        )),
        "TemplateProcessing" => {
            let single = post.get("single")?.as_array()?;
            let special = |item: &serde_json::Value| {
                let name = item.get("SpecialToken")?.get("id")?.as_str()?;
                id_of(post.get("special_tokens")?.get(name)?.get("ids")?.get(0)?)
            };
            match single.as_slice() {
                [first, middle, last] if middle.get("Sequence").is_some() => {
                    Some((special(first)?, special(last)?))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whitespace as `tokenizers` counts it: Unicode `White_Space`, plus tab, newline, return.
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Control characters `clean_text` drops: categories Cc, Cf and Co, but not tab, newline
/// or return (those are whitespace). Unassigned code points are kept, as `tokenizers` does.
fn is_control(c: char) -> bool {
    if matches!(c, '\t' | '\n' | '\r') {
        return false;
    }
    matches!(
        get_general_category(c),
        GeneralCategory::Control | GeneralCategory::Format | GeneralCategory::PrivateUse
    )
}

/// The CJK Unified Ideographs blocks BERT treats as one word per character.
fn is_chinese_char(c: char) -> bool {
    matches!(
        u32::from(c),
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x2_0000..=0x2_A6DF
            | 0x2_A700..=0x2_B73F
            | 0x2_B740..=0x2_B81F
            | 0x2_B920..=0x2_CEAF
            | 0xF900..=0xFAFF
            | 0x2_F800..=0x2_FA1F
    )
}

/// ASCII punctuation (which includes symbols such as `$`, `+`, `^`) or Unicode P*.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            get_general_category(c),
            GeneralCategory::ConnectorPunctuation
                | GeneralCategory::DashPunctuation
                | GeneralCategory::OpenPunctuation
                | GeneralCategory::ClosePunctuation
                | GeneralCategory::InitialPunctuation
                | GeneralCategory::FinalPunctuation
                | GeneralCategory::OtherPunctuation
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> WordPiece {
        let tokens = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "cafe", ",",
            "a", "##b",
        ];
        let vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| ((*t).to_owned(), i as u32))
            .collect();
        let normalizer = Normalizer {
            clean_text: true,
            handle_chinese_chars: true,
            strip_accents: true,
            lowercase: true,
        };
        WordPiece::new(
            vocab,
            normalizer,
            "##".to_owned(),
            100,
            [1, 2, 3],
            vec![("[MASK]".to_owned(), 4)],
        )
    }

    #[test]
    fn pieces_accents_punctuation_and_unknowns() {
        let t = tiny();
        assert_eq!(t.encode("UNAFFABLE, Café", 64), [2, 5, 6, 7, 9, 8, 3]);
        // A word with an unmatched tail is one [UNK], not a partial match.
        assert_eq!(t.encode("unaffx a", 64), [2, 1, 10, 3]);
        assert_eq!(t.encode("a[MASK]ab", 64), [2, 10, 4, 10, 11, 3]);
        assert_eq!(t.encode(&"a".repeat(101), 64), [2, 1, 3]);
    }

    #[test]
    fn truncates_to_the_length_with_specials() {
        let t = tiny();
        assert_eq!(t.encode("a a a a a a", 5), [2, 10, 10, 10, 3]);
        assert_eq!(t.encode("", 5), [2, 3]);
    }
}
