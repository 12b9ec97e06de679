//! Map-space geometry for interaction: lasso and box selection over a uniform grid (cells
//! wholly inside the lasso are taken without testing their points; only cells the outline
//! crosses test point by point, in parallel), and hover picking with a KD-tree.

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rayon::prelude::*;

/// Points per grid cell on average.
const POINTS_PER_CELL: usize = 16;
/// Largest grid side (cells per axis).
const MAX_SIDE: usize = 2048;

/// A uniform grid over the map: the point indices of each cell, stored contiguously.
#[derive(Debug)]
pub struct Grid {
    min: [f32; 2],
    cell: [f32; 2],
    side: usize,
    starts: Vec<u32>,
    items: Vec<u32>,
}

impl Grid {
    /// Buckets `positions` (a counting sort by cell).
    #[must_use]
    pub fn build(positions: &[[f32; 2]]) -> Self {
        let bounds = super::model::bounds(positions);
        let side = ((positions.len() / POINTS_PER_CELL) as f64)
            .sqrt()
            .ceil()
            .clamp(1.0, MAX_SIDE as f64) as usize;
        let extent = [
            (bounds[2] - bounds[0]).max(1e-6),
            (bounds[3] - bounds[1]).max(1e-6),
        ];
        let min = [bounds[0], bounds[1]];
        // A hair larger than the extent so the maximum lands in the last cell.
        let cell = [
            extent[0] * 1.0001 / side as f32,
            extent[1] * 1.0001 / side as f32,
        ];
        let mut grid = Self {
            min,
            cell,
            side,
            starts: Vec::new(),
            items: Vec::new(),
        };
        let cells: Vec<u32> = positions
            .par_iter()
            .map(|p| grid.cell_of(*p) as u32)
            .collect();
        let mut counts = vec![0_u32; side * side + 1];
        for &c in &cells {
            counts[c as usize + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let mut next = counts.clone();
        let mut items = vec![0_u32; positions.len()];
        for (point, &c) in cells.iter().enumerate() {
            let slot = &mut next[c as usize];
            items[*slot as usize] = point as u32;
            *slot += 1;
        }
        grid.starts = counts;
        grid.items = items;
        grid
    }

    fn column(&self, x: f32) -> usize {
        (((x - self.min[0]) / self.cell[0]).floor().max(0.0) as usize).min(self.side - 1)
    }

    fn row(&self, y: f32) -> usize {
        (((y - self.min[1]) / self.cell[1]).floor().max(0.0) as usize).min(self.side - 1)
    }

    fn cell_of(&self, p: [f32; 2]) -> usize {
        self.row(p[1]) * self.side + self.column(p[0])
    }

    fn members(&self, cell: usize) -> &[u32] {
        &self.items[self.starts[cell] as usize..self.starts[cell + 1] as usize]
    }

    /// Bytes per point of the grid (for the memory budget).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.items.capacity() * 4 + self.starts.capacity() * 4
    }

    /// The points inside `polygon` (map space, even-odd rule), sorted.
    #[must_use]
    pub fn lasso(&self, positions: &[[f32; 2]], polygon: &[[f32; 2]]) -> Vec<u32> {
        if polygon.len() < 3 || positions.is_empty() {
            return Vec::new();
        }
        let b = super::model::bounds(polygon);
        let (c0, c1) = (self.column(b[0]), self.column(b[2]));
        let (r0, r1) = (self.row(b[1]), self.row(b[3]));
        let width = c1 - c0 + 1;
        // Cells the outline passes through: their points are tested one by one.
        let mut boundary = vec![false; width * (r1 - r0 + 1)];
        for k in 0..polygon.len() {
            let (a, e) = (polygon[k], polygon[(k + 1) % polygon.len()]);
            let (ca, ce) = (self.column(a[0]), self.column(e[0]));
            for col in ca.min(ce)..=ca.max(ce) {
                // The part of the segment inside this column.
                let x_lo = self.min[0] + col as f32 * self.cell[0];
                let x_hi = x_lo + self.cell[0];
                let (y_lo, y_hi) = segment_y_range(a, e, x_lo, x_hi);
                for row in self.row(y_lo)..=self.row(y_hi) {
                    if (r0..=r1).contains(&row) && (c0..=c1).contains(&col) {
                        boundary[(row - r0) * width + (col - c0)] = true;
                    }
                }
            }
        }
        let mut inside: Vec<u32> = (r0..=r1)
            .into_par_iter()
            .flat_map_iter(|row| {
                let boundary = &boundary;
                (c0..=c1).flat_map(move |col| {
                    let cell = row * self.side + col;
                    let members = self.members(cell);
                    let whole = if members.is_empty() || boundary[(row - r0) * width + (col - c0)] {
                        None
                    } else {
                        let centre = [
                            self.min[0] + (col as f32 + 0.5) * self.cell[0],
                            self.min[1] + (row as f32 + 0.5) * self.cell[1],
                        ];
                        Some(point_in_polygon(centre, polygon))
                    };
                    members.iter().copied().filter(move |&p| match whole {
                        Some(all) => all,
                        None => point_in_polygon(positions[p as usize], polygon),
                    })
                })
            })
            .collect();
        inside.par_sort_unstable();
        inside
    }

    /// The points inside the axis-aligned box with corners `a` and `b`, sorted.
    #[must_use]
    pub fn in_box(&self, positions: &[[f32; 2]], a: [f32; 2], b: [f32; 2]) -> Vec<u32> {
        let (lo, hi) = (
            [a[0].min(b[0]), a[1].min(b[1])],
            [a[0].max(b[0]), a[1].max(b[1])],
        );
        self.lasso(
            positions,
            &[
                [lo[0], lo[1]],
                [hi[0], lo[1]],
                [hi[0], hi[1]],
                [lo[0], hi[1]],
            ],
        )
    }
}

/// The y range covered by segment `a`–`e` where its x lies in `x_lo..x_hi`.
fn segment_y_range(a: [f32; 2], e: [f32; 2], x_lo: f32, x_hi: f32) -> (f32, f32) {
    let dx = e[0] - a[0];
    if dx.abs() < f32::EPSILON {
        return (a[1].min(e[1]), a[1].max(e[1]));
    }
    let y_at = |x: f32| {
        let t = ((x - a[0]) / dx).clamp(0.0, 1.0);
        a[1] + t * (e[1] - a[1])
    };
    let (y1, y2) = (y_at(x_lo), y_at(x_hi));
    (y1.min(y2), y1.max(y2))
}

/// Even-odd point-in-polygon test.
#[must_use]
pub fn point_in_polygon(p: [f32; 2], polygon: &[[f32; 2]]) -> bool {
    let mut inside = false;
    let mut j = polygon.len() - 1;
    for i in 0..polygon.len() {
        let (a, b) = (polygon[i], polygon[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
            if p[0] < x {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// The brute-force reference of [`Grid::lasso`]: every point tested.
#[must_use]
pub fn lasso_reference(positions: &[[f32; 2]], polygon: &[[f32; 2]]) -> Vec<u32> {
    if polygon.len() < 3 {
        return Vec::new();
    }
    (0..positions.len() as u32)
        .filter(|&i| point_in_polygon(positions[i as usize], polygon))
        .collect()
}

/// Nearest-point lookup for hovering.
pub struct Picker {
    tree: Option<ImmutableKdTree<f32, 2>>,
}

impl std::fmt::Debug for Picker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picker").finish_non_exhaustive()
    }
}

impl Picker {
    /// Builds the KD-tree over `positions`.
    #[must_use]
    pub fn build(positions: &[[f32; 2]]) -> Self {
        let tree = if positions.is_empty() {
            None
        } else {
            ImmutableKdTree::new_from_slice(positions).ok()
        };
        Self { tree }
    }

    /// The point nearest to `p` within `max_distance` (map units).
    #[must_use]
    pub fn nearest(&self, p: [f32; 2], max_distance: f32) -> Option<u32> {
        let tree = self.tree.as_ref()?;
        let hit = tree
            .query(&p)
            .nearest_one::<SquaredEuclidean<f32>>()
            .execute();
        (hit.distance <= max_distance * max_distance).then_some(hit.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::model::{mix, unit};

    fn points(n: usize) -> Vec<[f32; 2]> {
        (0..n as u64)
            .map(|i| [unit(mix(i * 2)) * 10.0, unit(mix(i * 2 + 1)) * 10.0])
            .collect()
    }

    #[test]
    fn lasso_matches_the_brute_force_reference() {
        let pts = points(20_000);
        let grid = Grid::build(&pts);
        // A concave star, a thin sliver, a self-crossing bow tie and a box.
        let star: Vec<[f32; 2]> = (0..14)
            .map(|k| {
                let a = k as f32 / 14.0 * std::f32::consts::TAU;
                let r = if k % 2 == 0 { 4.5 } else { 1.5 };
                [5.0 + r * a.cos(), 5.0 + r * a.sin()]
            })
            .collect();
        let sliver = vec![[0.5, 0.5], [9.5, 9.4], [9.5, 9.6]];
        let bow = vec![[1.0, 1.0], [9.0, 9.0], [9.0, 1.0], [1.0, 9.0]];
        for polygon in [star, sliver, bow] {
            let fast = grid.lasso(&pts, &polygon);
            assert_eq!(fast, lasso_reference(&pts, &polygon));
            assert!(!fast.is_empty());
        }
        let boxed = grid.in_box(&pts, [7.0, 2.0], [3.0, 4.0]);
        let expected: Vec<u32> = (0..pts.len() as u32)
            .filter(|&i| {
                let p = pts[i as usize];
                (3.0..=7.0).contains(&p[0]) && (2.0..=4.0).contains(&p[1])
            })
            .collect();
        // Points exactly on the edge may differ by the even-odd rule; there are none here.
        assert_eq!(boxed, expected);
    }

    #[test]
    fn picker_finds_the_nearest_point_within_reach() {
        let pts = points(1000);
        let picker = Picker::build(&pts);
        let target = pts[417];
        assert_eq!(
            picker.nearest([target[0] + 1e-4, target[1]], 0.01),
            Some(417)
        );
        assert_eq!(picker.nearest([-50.0, -50.0], 1.0), None);
        assert_eq!(Picker::build(&[]).nearest([0.0, 0.0], 1.0), None);
    }
}
