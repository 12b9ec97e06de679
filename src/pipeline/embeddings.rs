//! The embeddings file of `curate embed`: an analysis' vectors as the columns
//! [`crate::store::vectors::write_columns`] writes.

use std::path::Path;

use super::Analysis;
use crate::store;

/// Writes the embeddings of `analysis`' readable images, atomically: `image_embedding`
/// from its model stage (the classifier's pooled features as computed, or CLIP's
/// normalised image embeddings), `logits` (the classifier's class logits),
/// `text_embedding` (CLIP text tower, captioned images), and `sentence_embedding` of
/// captions when it had a text model. Columns the run has nothing for are left out.
/// Returns the row count.
///
/// # Errors
/// When the analysis had no model, or the file cannot be written.
pub fn write_embeddings(path: &Path, analysis: &Analysis) -> std::io::Result<usize> {
    let semantic = analysis.semantic.as_ref();
    let sentences = analysis.captions.as_ref();
    if semantic.is_none() && sentences.is_none() {
        return Err(std::io::Error::other(
            "the analysis ran without an image or a text model",
        ));
    }
    let n = analysis.readable.len();
    let mut caption_of = vec![None; analysis.rows.len()];
    if let Some(semantic) = semantic {
        for (i, &row) in semantic.caption_rows.iter().enumerate() {
            caption_of[row as usize] = Some(i);
        }
    }
    let mut sentence_of = vec![None; analysis.rows.len()];
    if let Some(s) = sentences {
        for (i, &row) in s.rows.iter().enumerate() {
            sentence_of[row as usize] = Some(i);
        }
    }
    let mut columns: Vec<(&str, Vec<Option<&[f32]>>)> = Vec::new();
    if let Some(semantic) = semantic {
        let dim = semantic.dim;
        let images = if semantic.pooled.is_empty() {
            &semantic.images
        } else {
            &semantic.pooled
        };
        columns.push((
            "image_embedding",
            (0..n).map(|p| slice(images, dim, p)).collect(),
        ));
        if !semantic.logits.is_empty() {
            let width = semantic.logits.len() / n.max(1);
            columns.push((
                "logits",
                (0..n).map(|p| slice(&semantic.logits, width, p)).collect(),
            ));
        }
        if !semantic.caption_rows.is_empty() {
            columns.push((
                "text_embedding",
                analysis
                    .readable
                    .iter()
                    .map(|&row| {
                        caption_of[row as usize]
                            .and_then(|i| slice(&semantic.caption_embeddings, dim, i))
                    })
                    .collect(),
            ));
        }
    }
    if let Some(s) = sentences {
        columns.push((
            "sentence_embedding",
            analysis
                .readable
                .iter()
                .map(|&row| sentence_of[row as usize].and_then(|i| slice(&s.embeddings, s.dim, i)))
                .collect(),
        ));
    }
    let paths: Vec<&str> = analysis
        .readable
        .iter()
        .map(|&row| analysis.rows[row as usize].path.as_str())
        .collect();
    store::vectors::write_columns(path, &paths, &columns)?;
    Ok(n)
}

/// Row `i` of a row-major matrix `width` wide, if it has one.
fn slice(values: &[f32], width: usize, i: usize) -> Option<&[f32]> {
    values.get(i * width..(i + 1) * width)
}
