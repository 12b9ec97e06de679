//! Semantic search in the app: a text query embedded by the CLIP text tower, or an image's
//! own embedding ("more like this"), compared with every point's CLIP image embedding.
//! The model loads in the background when a collection with embeddings opens; queries run
//! off the UI thread too.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use burn::tensor::Device;
use half::f16;
use rayon::prelude::*;

use crate::embed::clip::tokenizer::ClipTokenizer;
use crate::embed::clip::{ClipModel, normalize_rows};

/// How many of the closest images a search selects.
pub const RESULTS: usize = 60;

/// Every point's unit-length CLIP image embedding, as half floats (1 KB a point at 512-d).
#[derive(Debug)]
pub struct PointEmbeddings {
    /// Width.
    pub dim: usize,
    values: Vec<f16>,
}

impl PointEmbeddings {
    /// Takes `points × dim` unit-length floats.
    #[must_use]
    pub fn new(dim: usize, values: &[f32]) -> Self {
        Self {
            dim,
            values: values.par_iter().map(|&v| f16::from_f32(v)).collect(),
        }
    }

    /// Number of points.
    #[must_use]
    pub fn len(&self) -> usize {
        self.values.len() / self.dim.max(1)
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Point `i`'s embedding.
    #[must_use]
    pub fn row(&self, i: usize) -> Vec<f32> {
        self.values[i * self.dim..(i + 1) * self.dim]
            .iter()
            .map(|v| v.to_f32())
            .collect()
    }

    /// Cosine similarity of every point with the unit-length `query`.
    #[must_use]
    pub fn similarities(&self, query: &[f32]) -> Vec<f32> {
        self.values
            .par_chunks_exact(self.dim)
            .map(|row| row.iter().zip(query).map(|(a, b)| a.to_f32() * b).sum())
            .collect()
    }
}

/// The `count` points most similar to the query, most similar first.
#[must_use]
pub fn top(similarities: &[f32], count: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..similarities.len() as u32).collect();
    let count = count.min(order.len());
    if count == 0 {
        return Vec::new();
    }
    order.select_nth_unstable_by(count - 1, |&a, &b| {
        similarities[b as usize].total_cmp(&similarities[a as usize])
    });
    order.truncate(count);
    order.sort_by(|&a, &b| similarities[b as usize].total_cmp(&similarities[a as usize]));
    order
}

/// What a finished search hands back.
#[derive(Debug)]
pub struct Found {
    /// What was searched for, in words.
    pub what: String,
    /// Cosine similarity of every point with the query.
    pub similarity: Arc<Vec<f32>>,
}

type TextModel = Arc<(ClipModel, ClipTokenizer)>;

/// The search box's state: the text model (loading, loaded or failed) and a running query.
#[derive(Debug)]
pub struct Search {
    /// The query being typed.
    pub query: String,
    /// Why text search is unavailable (the model could not be loaded).
    pub error: Option<String>,
    model: Option<TextModel>,
    loading: Option<Receiver<Result<TextModel, String>>>,
    running: Option<Receiver<Result<Found, String>>>,
}

impl Search {
    /// Starts loading the text model from `clip_dir` in the background.
    #[must_use]
    pub fn new(clip_dir: Option<PathBuf>) -> Self {
        let loading = clip_dir.map(|dir| {
            let (send, receive) = channel();
            std::thread::spawn(move || {
                let loaded = ClipModel::load(&dir, &Device::flex())
                    .map_err(|e| e.to_string())
                    .and_then(|model| {
                        ClipTokenizer::from_folder(&dir)
                            .map(|t| Arc::new((model, t)))
                            .map_err(|e| e.to_string())
                    });
                send.send(loaded).ok();
            });
            receive
        });
        Self {
            query: String::new(),
            error: None,
            model: None,
            loading,
            running: None,
        }
    }

    /// Whether text queries can run now.
    #[must_use]
    pub fn text_ready(&self) -> bool {
        self.model.is_some()
    }

    /// Whether the model is still loading.
    #[must_use]
    pub fn loading(&self) -> bool {
        self.loading.is_some()
    }

    /// Whether a query is running.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// Takes a loaded model or a finished query.
    pub fn poll(&mut self) -> Option<Result<Found, String>> {
        if let Some(receive) = &self.loading {
            match receive.try_recv() {
                Ok(Ok(model)) => {
                    self.model = Some(model);
                    self.loading = None;
                }
                Ok(Err(err)) => {
                    self.error = Some(err);
                    self.loading = None;
                }
                Err(TryRecvError::Disconnected) => self.loading = None,
                Err(TryRecvError::Empty) => {}
            }
        }
        let receive = self.running.as_ref()?;
        match receive.try_recv() {
            Ok(found) => {
                self.running = None;
                Some(found)
            }
            Err(TryRecvError::Disconnected) => {
                self.running = None;
                Some(Err("the search stopped unexpectedly".to_owned()))
            }
            Err(TryRecvError::Empty) => None,
        }
    }

    /// Searches for the text in [`Self::query`].
    pub fn run_text(&mut self, embeddings: &Arc<PointEmbeddings>) {
        let Some(model) = self.model.clone() else {
            return;
        };
        let query = self.query.trim().to_owned();
        if query.is_empty() {
            return;
        }
        let embeddings = Arc::clone(embeddings);
        let (send, receive) = channel();
        std::thread::spawn(move || {
            let (clip, tokenizer) = &*model;
            let mut q = clip.embed_token_ids(&[tokenizer.tokenize(&query)]);
            normalize_rows(&mut q, clip.dim());
            let found = if q.len() == embeddings.dim {
                Ok(Found {
                    what: format!("\"{query}\""),
                    similarity: Arc::new(embeddings.similarities(&q)),
                })
            } else {
                Err(format!(
                    "the text model gives {}-d vectors, the images have {}-d",
                    q.len(),
                    embeddings.dim
                ))
            };
            send.send(found).ok();
        });
        self.running = Some(receive);
    }

    /// Searches for images like point `point` ("more like this").
    pub fn run_like(&mut self, embeddings: &Arc<PointEmbeddings>, point: u32, name: String) {
        let embeddings = Arc::clone(embeddings);
        let (send, receive) = channel();
        std::thread::spawn(move || {
            let q = embeddings.row(point as usize);
            send.send(Ok(Found {
                what: format!("images like {name}"),
                similarity: Arc::new(embeddings.similarities(&q)),
            }))
            .ok();
        });
        self.running = Some(receive);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_first() {
        let e = PointEmbeddings::new(2, &[1.0, 0.0, 0.0, 1.0, 0.6, 0.8, -1.0, 0.0]);
        assert_eq!(e.len(), 4);
        let s = e.similarities(&[1.0, 0.0]);
        assert_eq!(top(&s, 2), vec![0, 2]);
        assert_eq!(top(&s, 10), vec![0, 2, 1, 3]);
        assert!(top(&s, 0).is_empty());
    }
}
