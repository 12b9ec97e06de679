//! The report: `DIR/.curate/report.parquet` (or `--report FILE`), one row per file found.
//!
//! Columns, in file order (other tools and the tests read this contract; nullable unless
//! said otherwise):
//! - `path` (utf8, not null: relative, `/`-separated; `SHARD.tar/MEMBER` or
//!   `FILE.parquet/ROW` inside shards), `status` (utf8, not null: `ok` or an error kind),
//!   `error` (utf8), `size_bytes` (u64, not null), `width`, `height` (u32), `caption`,
//!   `caption_error` (utf8), `content_hash` (utf8: blake3, hex), `phash` (u64);
//! - `exact_group` (i64, not null: -1 when unique), `dup_group` (i64, not null: -1 without
//!   duplicates), `dup_kind` (`exact`/`near`/`semantic`), `keeper` (path of the group's
//!   keeper), `keep` (bool, not null), `drop_reason` (`exact_duplicate`/`near_duplicate`/
//!   `semantic_duplicate`/`outlier`/`quality`/`manual`), `drop_detail` (the reason in words);
//! - `ood_score` (f32, higher = more unusual: the score `--outlier-score` chose), one f32
//!   column per quality score (`dark_score`, `light_score`, `blurry_score`,
//!   `low_information_score`, `grayscale_score`, `odd_size_score`, `odd_aspect_score`;
//!   higher = worse), `quality_flags` (comma-separated names of the flagged scores), `x`, `y`
//!   (f32 map coordinates);
//! - `clip_score` (f32: cosine of CLIP image and caption embeddings, with a CLIP model),
//!   `label` (utf8: the zero-shot label with `--labels`, else the default classifier's top
//!   ImageNet class), `label_max_logit`, `label_entropy`, `label_margin` (f32: the
//!   classifier's or zero-shot logits' maximum, softmax entropy and top-two margin),
//!   `caption_group` (i64: near-identical captions by sentence embedding, with
//!   `--text-model`);
//! - `ood_kth`, `ood_mean_knn`, `ood_mahalanobis` (f32: the three named outlier scores),
//!   `ensemble_score` (f32, 0–1, higher = worse), `cluster` (i64: k-means cluster of the
//!   embedding), `centroid_similarity` (f32: cosine to that cluster's centre),
//!   `ood_combined` (f32: rarity over every signal, see [`crate::analysis::rarity`]);
//! - `near_copies` (u32: how many other images were verified near copies of this one; the
//!   keeper choice prefers the member most others are copies of), `noise_sigma` (f32: the
//!   luma's noise σ; the keeper choice prefers the less noisy of equally large copies),
//!   `caption_dup_group` (i64: the group of near-duplicate captions by MinHash LSH, -1 when
//!   none; null when the folder has no captions);
//! - with `--class-from folder|manifest`: `given_class` (utf8: the image's class folder or
//!   manifest class), `class_issue_score` (f32, 0–1, higher = more likely mislabelled; see
//!   [`crate::analysis::classes`]), `suggested_class` (utf8: the class the data suggests,
//!   the given one where it agrees), `relabel` (utf8: the class a person gave the image in
//!   the app's Classes panel; filled by `curate export` and the app's exports from the saved
//!   session, null in `curate analyze`'s report).
//!
//! A test (`the_contract_comment_names_every_column`) holds this list to the schema.

use std::io;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    Array as _, ArrayRef, BooleanArray, Float32Array, Int64Array, RecordBatch, StringArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};

use super::atomic;
use super::columns as col;
use crate::analysis::quality::SCORE_NAMES;

/// One report row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportRow {
    /// Relative path.
    pub path: String,
    /// `ok` or the error kind.
    pub status: String,
    /// The reason a file could not be read.
    pub error: Option<String>,
    /// File size.
    pub size_bytes: u64,
    /// Width, for readable images.
    pub width: Option<u32>,
    /// Height, for readable images.
    pub height: Option<u32>,
    /// Caption text.
    pub caption: Option<String>,
    /// Why a caption source could not be used.
    pub caption_error: Option<String>,
    /// blake3 of the file bytes, hex.
    pub content_hash: Option<String>,
    /// Perceptual hash.
    pub phash: Option<u64>,
    /// Exact-copy group, -1 when unique.
    pub exact_group: i64,
    /// Duplicate group, -1 when none.
    pub dup_group: i64,
    /// `exact` / `near`.
    pub dup_kind: Option<String>,
    /// The path of the group's keeper.
    pub keeper: Option<String>,
    /// In the keep-list?
    pub keep: bool,
    /// Why not.
    pub drop_reason: Option<String>,
    /// The reason in words.
    pub drop_detail: Option<String>,
    /// Outlier score.
    pub ood_score: Option<f32>,
    /// Quality scores, in [`SCORE_NAMES`] order.
    pub quality: Option<[f32; 7]>,
    /// Flagged quality scores, comma-separated.
    pub quality_flags: Option<String>,
    /// Map x.
    pub x: Option<f32>,
    /// Map y.
    pub y: Option<f32>,
    /// Cosine similarity of the CLIP image and caption embeddings (with `--model`, for
    /// captioned images).
    pub clip_score: Option<f32>,
    /// The zero-shot label (with `--labels`).
    pub label: Option<String>,
    /// Zero-shot maximum logit (higher = more in-distribution).
    pub label_max_logit: Option<f32>,
    /// Zero-shot softmax entropy (higher = less sure).
    pub label_entropy: Option<f32>,
    /// Zero-shot margin between the two most likely labels' probabilities.
    pub label_margin: Option<f32>,
    /// Group of near-identical captions (with `--text-model`).
    pub caption_group: Option<i64>,
    /// Outlier score: cosine distance to the k-th neighbour outside the duplicate group.
    pub ood_kth: Option<f32>,
    /// Outlier score: mean cosine distance to the k nearest such neighbours.
    pub ood_mean_knn: Option<f32>,
    /// Outlier score: Mahalanobis distance to a Gaussian fitted on all images.
    pub ood_mahalanobis: Option<f32>,
    /// The combined rarity over every signal (see [`crate::analysis::rarity`]).
    pub ood_combined: Option<f32>,
    /// The ensemble of every operator (0..1, higher = worse): mean rank, or the
    /// probability of "bad" learned from labels.
    pub ensemble_score: Option<f32>,
    /// The k-means cluster of the image's embedding (the clustering SemDeDup, the IVF
    /// index and the Mahalanobis score share).
    pub cluster: Option<i64>,
    /// Cosine similarity of the embedding to its cluster's centre (what the `central` and
    /// `farthest` keeper policies rank by).
    pub centroid_similarity: Option<f32>,
    /// How many other images were verified near copies of this one (before grouping): a
    /// family's original is a copy-partner of all its copies, which need not be of each
    /// other. The keeper choice prefers it among members of equal resolution.
    pub near_copies: Option<u32>,
    /// The luma's noise σ (0–255 scale, Immerkær's estimate on the thumbnail): the keeper
    /// choice prefers the less noisy of equally large copies.
    pub noise_sigma: Option<f32>,
    /// Group of near-duplicate captions by MinHash LSH (see [`crate::analysis::minhash`]):
    /// -1 when the caption has none, `None` when the folder has no captions.
    pub caption_dup_group: Option<i64>,
    /// The image's class (`--class-from`).
    pub given_class: Option<String>,
    /// 0–1, higher = more likely the given class is wrong.
    pub class_issue_score: Option<f32>,
    /// The class the data suggests (the given one where it agrees).
    pub suggested_class: Option<String>,
    /// The class a person gave the image (saved session), in exports.
    pub relabel: Option<String>,
}

fn schema() -> Schema {
    let mut fields = vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("size_bytes", DataType::UInt64, false),
        Field::new("width", DataType::UInt32, true),
        Field::new("height", DataType::UInt32, true),
        Field::new("caption", DataType::Utf8, true),
        Field::new("caption_error", DataType::Utf8, true),
        Field::new("content_hash", DataType::Utf8, true),
        Field::new("phash", DataType::UInt64, true),
        Field::new("exact_group", DataType::Int64, false),
        Field::new("dup_group", DataType::Int64, false),
        Field::new("dup_kind", DataType::Utf8, true),
        Field::new("keeper", DataType::Utf8, true),
        Field::new("keep", DataType::Boolean, false),
        Field::new("drop_reason", DataType::Utf8, true),
        Field::new("drop_detail", DataType::Utf8, true),
        Field::new("ood_score", DataType::Float32, true),
    ];
    fields.extend(
        SCORE_NAMES
            .iter()
            .map(|name| Field::new(format!("{name}_score"), DataType::Float32, true)),
    );
    fields.extend([
        Field::new("quality_flags", DataType::Utf8, true),
        Field::new("x", DataType::Float32, true),
        Field::new("y", DataType::Float32, true),
        Field::new("clip_score", DataType::Float32, true),
        Field::new("label", DataType::Utf8, true),
        Field::new("label_max_logit", DataType::Float32, true),
        Field::new("label_entropy", DataType::Float32, true),
        Field::new("label_margin", DataType::Float32, true),
        Field::new("caption_group", DataType::Int64, true),
        Field::new("ood_kth", DataType::Float32, true),
        Field::new("ood_mean_knn", DataType::Float32, true),
        Field::new("ood_mahalanobis", DataType::Float32, true),
        Field::new("ensemble_score", DataType::Float32, true),
        Field::new("cluster", DataType::Int64, true),
        Field::new("centroid_similarity", DataType::Float32, true),
        Field::new("ood_combined", DataType::Float32, true),
        Field::new("near_copies", DataType::UInt32, true),
        Field::new("noise_sigma", DataType::Float32, true),
        Field::new("caption_dup_group", DataType::Int64, true),
        Field::new("given_class", DataType::Utf8, true),
        Field::new("class_issue_score", DataType::Float32, true),
        Field::new("suggested_class", DataType::Utf8, true),
        Field::new("relabel", DataType::Utf8, true),
    ]);
    Schema::new(fields)
}

fn strings<'a>(rows: &'a [ReportRow], f: impl Fn(&'a ReportRow) -> Option<&'a str>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<StringArray>())
}

fn floats(rows: &[ReportRow], f: impl Fn(&ReportRow) -> Option<f32>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<Float32Array>())
}

fn batch(
    schema: &Arc<Schema>,
    rows: &[ReportRow],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut columns: Vec<ArrayRef> = vec![
        strings(rows, |r| Some(&r.path)),
        strings(rows, |r| Some(&r.status)),
        strings(rows, |r| r.error.as_deref()),
        Arc::new(rows.iter().map(|r| r.size_bytes).collect::<UInt64Array>()),
        Arc::new(rows.iter().map(|r| r.width).collect::<UInt32Array>()),
        Arc::new(rows.iter().map(|r| r.height).collect::<UInt32Array>()),
        strings(rows, |r| r.caption.as_deref()),
        strings(rows, |r| r.caption_error.as_deref()),
        strings(rows, |r| r.content_hash.as_deref()),
        Arc::new(rows.iter().map(|r| r.phash).collect::<UInt64Array>()),
        Arc::new(rows.iter().map(|r| r.exact_group).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.dup_group).collect::<Int64Array>()),
        strings(rows, |r| r.dup_kind.as_deref()),
        strings(rows, |r| r.keeper.as_deref()),
        Arc::new(rows.iter().map(|r| Some(r.keep)).collect::<BooleanArray>()),
        strings(rows, |r| r.drop_reason.as_deref()),
        strings(rows, |r| r.drop_detail.as_deref()),
        floats(rows, |r| r.ood_score),
    ];
    for i in 0..SCORE_NAMES.len() {
        columns.push(floats(rows, |r| r.quality.map(|q| q[i])));
    }
    columns.push(strings(rows, |r| r.quality_flags.as_deref()));
    columns.push(floats(rows, |r| r.x));
    columns.push(floats(rows, |r| r.y));
    columns.push(floats(rows, |r| r.clip_score));
    columns.push(strings(rows, |r| r.label.as_deref()));
    columns.push(floats(rows, |r| r.label_max_logit));
    columns.push(floats(rows, |r| r.label_entropy));
    columns.push(floats(rows, |r| r.label_margin));
    columns.push(Arc::new(
        rows.iter().map(|r| r.caption_group).collect::<Int64Array>(),
    ));
    columns.push(floats(rows, |r| r.ood_kth));
    columns.push(floats(rows, |r| r.ood_mean_knn));
    columns.push(floats(rows, |r| r.ood_mahalanobis));
    columns.push(floats(rows, |r| r.ensemble_score));
    columns.push(Arc::new(
        rows.iter().map(|r| r.cluster).collect::<Int64Array>(),
    ));
    columns.push(floats(rows, |r| r.centroid_similarity));
    columns.push(floats(rows, |r| r.ood_combined));
    columns.push(Arc::new(
        rows.iter().map(|r| r.near_copies).collect::<UInt32Array>(),
    ));
    columns.push(floats(rows, |r| r.noise_sigma));
    columns.push(Arc::new(
        rows.iter()
            .map(|r| r.caption_dup_group)
            .collect::<Int64Array>(),
    ));
    columns.push(strings(rows, |r| r.given_class.as_deref()));
    columns.push(floats(rows, |r| r.class_issue_score));
    columns.push(strings(rows, |r| r.suggested_class.as_deref()));
    columns.push(strings(rows, |r| r.relabel.as_deref()));
    RecordBatch::try_new(schema.clone(), columns)
}

/// Writes the report, atomically.
pub fn write(path: &Path, rows: &[ReportRow]) -> io::Result<()> {
    let schema = Arc::new(schema());
    atomic::write_with(path, |out| {
        super::sealed::write_parquet(
            out,
            &schema,
            rows.chunks(65_536).map(|chunk| batch(&schema, chunk)),
        )
    })
}

/// Reads a report written by [`write()`]; a damaged file is an error, never a panic.
pub fn read(path: &Path) -> io::Result<Vec<ReportRow>> {
    crate::guard::catch(|| read_unguarded(path)).unwrap_or_else(|why| {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: damaged parquet ({why})", path.display()),
        ))
    })
}

fn read_unguarded(path: &Path) -> io::Result<Vec<ReportRow>> {
    let bad = |e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    };
    let reader = super::sealed::read_parquet(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => e,
            _ => bad(&e),
        })?
        .with_batch_size(65_536)
        .build()
        .map_err(|e| bad(&e))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        read_batch(&batch, &mut rows).map_err(|e| bad(&e))?;
    }
    Ok(rows)
}

fn read_batch(batch: &RecordBatch, rows: &mut Vec<ReportRow>) -> Result<(), col::ColumnError> {
    let s = |name: &str| col::string(batch, name);
    let (
        path,
        status,
        error,
        caption,
        caption_error,
        content_hash,
        dup_kind,
        keeper,
        drop_reason,
        drop_detail,
        flags,
    ) = (
        s("path")?,
        s("status")?,
        s("error")?,
        s("caption")?,
        s("caption_error")?,
        s("content_hash")?,
        s("dup_kind")?,
        s("keeper")?,
        s("drop_reason")?,
        s("drop_detail")?,
        s("quality_flags")?,
    );
    let size = col::u64s(batch, "size_bytes")?;
    let (width, height) = (col::u32s(batch, "width")?, col::u32s(batch, "height")?);
    let phash = col::u64s(batch, "phash")?;
    let (exact, dup) = (
        col::i64s(batch, "exact_group")?,
        col::i64s(batch, "dup_group")?,
    );
    let keep = col::boolean(batch, "keep")?;
    let ood = col::f32s(batch, "ood_score")?;
    let (x, y) = (col::f32s(batch, "x")?, col::f32s(batch, "y")?);
    let quality: Vec<&Float32Array> = SCORE_NAMES
        .iter()
        .map(|name| col::f32s(batch, &format!("{name}_score")))
        .collect::<Result<_, _>>()?;
    let opt_s = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_owned());
    let opt_f = |a: &Float32Array, i: usize| a.is_valid(i).then(|| a.value(i));
    // Columns added with the models (absent from older reports).
    let has = |name: &str| batch.column_by_name(name).is_some();
    let clip_score = has("clip_score")
        .then(|| col::f32s(batch, "clip_score"))
        .transpose()?;
    let label = has("label").then(|| s("label")).transpose()?;
    let optional_floats: Vec<Option<&Float32Array>> = [
        "label_max_logit",
        "label_entropy",
        "label_margin",
        "ood_kth",
        "ood_mean_knn",
        "ood_mahalanobis",
        "ensemble_score",
        "centroid_similarity",
        "ood_combined",
        "class_issue_score",
    ]
    .iter()
    .map(|name| has(name).then(|| col::f32s(batch, name)).transpose())
    .collect::<Result<_, _>>()?;
    let opt_col = |a: Option<&Float32Array>, i: usize| a.and_then(|a| opt_f(a, i));
    let caption_group = has("caption_group")
        .then(|| col::i64s(batch, "caption_group"))
        .transpose()?;
    let cluster = has("cluster")
        .then(|| col::i64s(batch, "cluster"))
        .transpose()?;
    let near_copies = has("near_copies")
        .then(|| col::u32s(batch, "near_copies"))
        .transpose()?;
    let caption_dup_group = has("caption_dup_group")
        .then(|| col::i64s(batch, "caption_dup_group"))
        .transpose()?;
    let given_class = has("given_class").then(|| s("given_class")).transpose()?;
    let suggested_class = has("suggested_class")
        .then(|| s("suggested_class"))
        .transpose()?;
    let relabel = has("relabel").then(|| s("relabel")).transpose()?;
    let noise_sigma = has("noise_sigma")
        .then(|| col::f32s(batch, "noise_sigma"))
        .transpose()?;
    for i in 0..batch.num_rows() {
        rows.push(ReportRow {
            path: path.value(i).to_owned(),
            status: status.value(i).to_owned(),
            error: opt_s(error, i),
            size_bytes: size.value(i),
            width: width.is_valid(i).then(|| width.value(i)),
            height: height.is_valid(i).then(|| height.value(i)),
            caption: opt_s(caption, i),
            caption_error: opt_s(caption_error, i),
            content_hash: opt_s(content_hash, i),
            phash: phash.is_valid(i).then(|| phash.value(i)),
            exact_group: exact.value(i),
            dup_group: dup.value(i),
            dup_kind: opt_s(dup_kind, i),
            keeper: opt_s(keeper, i),
            keep: keep.value(i),
            drop_reason: opt_s(drop_reason, i),
            drop_detail: opt_s(drop_detail, i),
            ood_score: opt_f(ood, i),
            quality: quality[0]
                .is_valid(i)
                .then(|| std::array::from_fn(|q| quality[q].value(i))),
            quality_flags: opt_s(flags, i),
            x: opt_f(x, i),
            y: opt_f(y, i),
            clip_score: opt_col(clip_score, i),
            label: label.and_then(|a| opt_s(a, i)),
            label_max_logit: opt_col(optional_floats[0], i),
            label_entropy: opt_col(optional_floats[1], i),
            label_margin: opt_col(optional_floats[2], i),
            caption_group: caption_group.and_then(|a| a.is_valid(i).then(|| a.value(i))),
            ood_kth: opt_col(optional_floats[3], i),
            ood_mean_knn: opt_col(optional_floats[4], i),
            ood_mahalanobis: opt_col(optional_floats[5], i),
            ensemble_score: opt_col(optional_floats[6], i),
            cluster: cluster.and_then(|a| a.is_valid(i).then(|| a.value(i))),
            centroid_similarity: opt_col(optional_floats[7], i),
            ood_combined: opt_col(optional_floats[8], i),
            near_copies: near_copies.and_then(|a| a.is_valid(i).then(|| a.value(i))),
            noise_sigma: noise_sigma.and_then(|a| a.is_valid(i).then(|| a.value(i))),
            caption_dup_group: caption_dup_group.and_then(|a| a.is_valid(i).then(|| a.value(i))),
            given_class: given_class.and_then(|a| opt_s(a, i)),
            class_issue_score: opt_col(optional_floats[9], i),
            suggested_class: suggested_class.and_then(|a| opt_s(a, i)),
            relabel: relabel.and_then(|a| opt_s(a, i)),
        });
    }
    Ok(())
}

/// Applies saved decisions over a report's keep/drop, then drops the `drop_outliers_percent`
/// most unusual readable rows still kept. Returns how many outliers were dropped.
pub fn apply_decisions(
    rows: &mut [ReportRow],
    session: &super::session::Session,
    drop_outliers_percent: Option<f32>,
) -> usize {
    for row in rows.iter_mut() {
        if row.status != "ok" {
            continue;
        }
        row.relabel = session.relabels.get(&row.path).cloned();
        if let Some(decision) = session.decisions.get(&row.path) {
            row.keep = decision.keep;
            if decision.keep {
                row.drop_reason = None;
                row.drop_detail = None;
            } else {
                let kind = decision
                    .kind
                    .unwrap_or(crate::analysis::keep::DropReason::Manual);
                row.drop_reason = Some(kind.as_str().to_owned());
                row.drop_detail = Some(decision.reason.clone());
            }
        }
    }
    let Some(percent) = drop_outliers_percent else {
        return 0;
    };
    let readable: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].status == "ok")
        .collect();
    let unusual = crate::analysis::keep::most_unusual(
        &readable,
        |i| rows[i].ood_score.unwrap_or(0.0),
        percent,
    );
    let mut dropped = 0;
    for i in unusual {
        let manual_keep = session.decisions.get(&rows[i].path).is_some_and(|d| d.keep);
        if rows[i].keep && !manual_keep {
            rows[i].keep = false;
            rows[i].drop_reason = Some("outlier".to_owned());
            rows[i].drop_detail = Some(format!("among the {percent}% most unusual images"));
            dropped += 1;
        }
    }
    dropped
}

/// Writes `rows` as CSV (the decision columns and scores), atomically: `path`, `status`,
/// `keep`, `drop_reason`, `drop_detail`, `dup_group`, `dup_kind`, `keeper`, `ood_score`,
/// the quality scores, `caption`.
pub fn write_csv(path: &Path, rows: &[ReportRow]) -> io::Result<()> {
    atomic::write_with(path, |out| {
        let mut writer = csv::Writer::from_writer(out);
        let mut header: Vec<String> = [
            "path",
            "status",
            "keep",
            "drop_reason",
            "drop_detail",
            "dup_group",
            "dup_kind",
            "keeper",
            "ood_score",
        ]
        .map(str::to_owned)
        .to_vec();
        header.extend(SCORE_NAMES.iter().map(|n| format!("{n}_score")));
        header.push("caption".to_owned());
        // The class columns, when the run had classes or a person gave some.
        let classes = rows
            .iter()
            .any(|r| r.given_class.is_some() || r.relabel.is_some());
        if classes {
            header.extend(
                [
                    "given_class",
                    "class_issue_score",
                    "suggested_class",
                    "relabel",
                ]
                .map(str::to_owned),
            );
        }
        writer.write_record(&header).map_err(io::Error::other)?;
        let opt = |v: Option<f32>| v.map(|v| format!("{v:.5}")).unwrap_or_default();
        for row in rows {
            let mut record = vec![
                row.path.clone(),
                row.status.clone(),
                row.keep.to_string(),
                row.drop_reason.clone().unwrap_or_default(),
                row.drop_detail.clone().unwrap_or_default(),
                row.dup_group.to_string(),
                row.dup_kind.clone().unwrap_or_default(),
                row.keeper.clone().unwrap_or_default(),
                opt(row.ood_score),
            ];
            for k in 0..SCORE_NAMES.len() {
                record.push(opt(row.quality.map(|q| q[k])));
            }
            record.push(row.caption.clone().unwrap_or_default());
            if classes {
                record.extend([
                    row.given_class.clone().unwrap_or_default(),
                    opt(row.class_issue_score),
                    row.suggested_class.clone().unwrap_or_default(),
                    row.relabel.clone().unwrap_or_default(),
                ]);
            }
            writer.write_record(&record).map_err(io::Error::other)?;
        }
        writer.flush()?;
        Ok(())
    })
}

/// Writes the classes a person gave images (rows with a `relabel`) as CSV, atomically:
/// `path,given_class,class`, in row order. Returns how many.
pub fn write_relabels(path: &Path, rows: &[ReportRow]) -> io::Result<usize> {
    let mut count = 0;
    atomic::write_with(path, |out| {
        let mut writer = csv::Writer::from_writer(out);
        writer
            .write_record(["path", "given_class", "class"])
            .map_err(io::Error::other)?;
        for row in rows {
            if let Some(class) = &row.relabel {
                let given = row.given_class.as_deref().unwrap_or_default();
                writer
                    .write_record([row.path.as_str(), given, class.as_str()])
                    .map_err(io::Error::other)?;
                count += 1;
            }
        }
        writer.flush()?;
        Ok(())
    })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_comment_names_every_column() {
        let contract = include_str!("report.rs")
            .lines()
            .take_while(|line| line.starts_with("//!"))
            .collect::<Vec<_>>()
            .join(" ");
        for field in schema().fields() {
            assert!(
                contract.contains(&format!("`{}`", field.name())),
                "the module comment misses column `{}`",
                field.name()
            );
        }
    }
    use crate::store::session::{Decision, Session};

    fn row(path: &str, ood: f32, keep: bool) -> ReportRow {
        ReportRow {
            path: path.to_owned(),
            status: "ok".to_owned(),
            keep,
            ood_score: Some(ood),
            ..ReportRow::default()
        }
    }

    #[test]
    fn round_trip_and_decisions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("r.parquet");
        let mut bad = row("bad.png", 0.0, false);
        bad.status = "empty".to_owned();
        bad.error = Some("the file is empty (0 bytes)".to_owned());
        bad.ood_score = None;
        let rows = vec![
            row("a.jpg", 0.1, true),
            row("b.jpg", 0.9, true),
            row("c.jpg", 0.2, false),
            bad,
        ];
        write(&path, &rows).expect("write");
        let mut back = read(&path).expect("read");
        assert_eq!(back, rows);

        let mut session = Session::default();
        session.decisions.insert(
            "c.jpg".to_owned(),
            Decision {
                keep: true,
                reason: "looks fine".to_owned(),
                kind: None,
                keeper: false,
            },
        );
        session.decisions.insert(
            "a.jpg".to_owned(),
            Decision {
                keep: false,
                reason: "lasso".to_owned(),
                kind: None,
                keeper: false,
            },
        );
        session.decisions.insert(
            "bad.png".to_owned(),
            Decision {
                keep: true,
                reason: "ignored".to_owned(),
                kind: None,
                keeper: false,
            },
        );
        let dropped = apply_decisions(&mut back, &session, Some(34.0));
        let kept: Vec<&str> = back
            .iter()
            .filter(|r| r.keep)
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(kept, ["c.jpg"]);
        assert_eq!(dropped, 1, "b.jpg, the most unusual");
        assert_eq!(back[0].drop_reason.as_deref(), Some("manual"));
        assert_eq!(back[1].drop_reason.as_deref(), Some("outlier"));
        assert!(!back[3].keep, "unreadable files are never kept");
    }
}
