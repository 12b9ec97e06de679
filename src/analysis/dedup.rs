//! Duplicate groups: exact (same file bytes) and near (perceptual hashes within a Hamming
//! distance), merged with union-find.
//!
//! The near search is a multi-index join that never builds an N×N matrix. Each 64-bit hash
//! is cut into four 16-bit chunks; by the pigeonhole principle two hashes within distance
//! `r` agree to within `⌊r/4⌋` bits on at least one chunk. For each chunk the hashes are
//! bucketed by chunk value, and only buckets whose values differ by at most `⌊r/4⌋` bits are
//! joined. A pair is reported once, by the first chunk that can find it. Identical hashes
//! are collapsed first, so a thousand copies of one blank image cost a thousand links, not
//! half a million pairs.

use std::collections::HashMap;

use rayon::prelude::*;

/// Default maximum pHash Hamming distance of a near-duplicate *candidate* (of 64 bits).
/// Candidates are verified on their pixels ([`crate::analysis::verify`]), so this only
/// bounds the work: crops of 8 % per border reach distances of 12 and more, look-alikes
/// (colour variants of one icon) sit at 0.
pub const DEFAULT_MAX_DISTANCE: u32 = 12;

const CHUNKS: usize = 4;
const CHUNK_BITS: u32 = 16;
const BUCKETS: usize = 1 << CHUNK_BITS;

/// A near-duplicate link between two hash indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Link {
    /// Lower index.
    pub a: u32,
    /// Higher index.
    pub b: u32,
    /// Hamming distance of their hashes.
    pub distance: u8,
}

/// Links whose connected components are exactly those of the graph "hashes within
/// `max_distance` bits" (unverified: the raw hash graph). Every distinct pair of distinct hash values within the distance is
/// linked; indices sharing one hash value are linked in a star to the first of them.
#[must_use]
pub fn near_links(hashes: &[u64], max_distance: u32) -> Vec<Link> {
    let mut order: Vec<u32> = (0..hashes.len() as u32).collect();
    order.sort_by_key(|&i| (hashes[i as usize], i));
    let mut values: Vec<u64> = Vec::new();
    let mut first_of_value: Vec<u32> = Vec::new();
    let mut links = Vec::new();
    for &i in &order {
        let hash = hashes[i as usize];
        if values.last() == Some(&hash) {
            let first = *first_of_value.last().expect("pushed with the value");
            links.push(Link {
                a: first,
                b: i,
                distance: 0,
            });
        } else {
            values.push(hash);
            first_of_value.push(i);
        }
    }
    links.extend(
        distinct_pairs(&values, max_distance)
            .into_iter()
            .map(|(x, y, distance)| {
                let (a, b) = (first_of_value[x as usize], first_of_value[y as usize]);
                Link {
                    a: a.min(b),
                    b: a.max(b),
                    distance,
                }
            }),
    );
    links
}

/// All pairs of (distinct) `values` within `max_distance` bits, as index pairs with their
/// distance.
#[must_use]
pub fn distinct_pairs(values: &[u64], max_distance: u32) -> Vec<(u32, u32, u8)> {
    let radius = max_distance / CHUNKS as u32;
    let masks: Vec<u16> = (1..=u16::MAX)
        .filter(|mask| mask.count_ones() <= radius)
        .collect();
    let chunk = |value: u64, c: usize| ((value >> (CHUNK_BITS as usize * c)) & 0xFFFF) as usize;
    let mut pairs = Vec::new();
    for c in 0..CHUNKS {
        // Bucket the values by this chunk (counting sort).
        let mut starts = vec![0_u32; BUCKETS + 1];
        for &value in values {
            starts[chunk(value, c) + 1] += 1;
        }
        for b in 0..BUCKETS {
            starts[b + 1] += starts[b];
        }
        let mut fill = starts.clone();
        let mut entries = vec![(0_u64, 0_u32); values.len()];
        for (index, &value) in values.iter().enumerate() {
            let slot = &mut fill[chunk(value, c)];
            entries[*slot as usize] = (value, index as u32);
            *slot += 1;
        }
        let bucket = |b: usize| &entries[starts[b] as usize..starts[b + 1] as usize];
        // Found by an earlier chunk already?
        let owned_here = |x: u64, y: u64| {
            (0..c).all(|earlier| (chunk(x, earlier) ^ chunk(y, earlier)).count_ones() > radius)
        };
        let found: Vec<(u32, u32, u8)> = (0..BUCKETS)
            .into_par_iter()
            .with_min_len(256)
            .fold(Vec::new, |mut out, b| {
                let here = bucket(b);
                if here.is_empty() {
                    return out;
                }
                let mut check = |&(x, i): &(u64, u32), &(y, j): &(u64, u32)| {
                    let distance = (x ^ y).count_ones();
                    if distance <= max_distance && owned_here(x, y) {
                        out.push((i.min(j), i.max(j), distance as u8));
                    }
                };
                for (n, left) in here.iter().enumerate() {
                    for right in &here[n + 1..] {
                        check(left, right);
                    }
                }
                for &mask in &masks {
                    let other = b ^ usize::from(mask);
                    if other > b {
                        for left in here {
                            for right in bucket(other) {
                                check(left, right);
                            }
                        }
                    }
                }
                out
            })
            .reduce(Vec::new, |mut a, mut b| {
                a.append(&mut b);
                a
            });
        pairs.extend(found);
    }
    pairs
}

/// Disjoint sets with path halving and union by size.
#[derive(Clone, Debug)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    /// `n` singletons.
    #[must_use]
    pub fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    /// The representative of `x`'s set.
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grandparent = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grandparent;
            x = grandparent;
        }
        x
    }

    /// Merges the sets of `a` and `b`.
    pub fn union(&mut self, a: u32, b: u32) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a as usize] < self.size[b as usize] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b as usize] = a;
        self.size[a as usize] += self.size[b as usize];
    }
}

/// How an image relates to the rest of its duplicate group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DupKind {
    /// It has a byte-identical copy in the group.
    Exact,
    /// It has a perceptual near copy (pHash) in the group.
    Near,
    /// It is in the group only through model-embedding similarity (`--model`).
    Semantic,
}

impl DupKind {
    /// The report spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Near => "near",
            Self::Semantic => "semantic",
        }
    }
}

/// Duplicate groups of a dataset. Group ids count up from 0 in order of each group's first
/// member; rows without a duplicate (and unreadable rows) have -1.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Groups {
    /// Exact group per row (same content hash).
    pub exact_group: Vec<i64>,
    /// Merged exact + near group per row.
    pub dup_group: Vec<i64>,
    /// Per row: `Some` exactly when `dup_group >= 0`.
    pub dup_kind: Vec<Option<DupKind>>,
    /// Members of each dup group, in row order.
    pub members: Vec<Vec<u32>>,
}

/// A duplicate link between two rows that passed verification (or, for rows without an
/// image, came from their embeddings alone).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DupLink {
    /// One row.
    pub a: u32,
    /// The other row.
    pub b: u32,
    /// [`DupKind::Near`] for pixel-verified copies, [`DupKind::Semantic`] for
    /// embedding-only links.
    pub kind: DupKind,
}

/// Groups the rows: byte-identical files (same content hash) always form one group; other
/// `links` join groups star-fashion, so every member of a group is linked to its centre
/// directly and look-alikes never chain (`a ~ b ~ c` does not put `a` and `c` together
/// through `b`). Centres are taken in `rank` order (lower first: the keeper order, so a
/// group is a star around its keeper), ties broken by number of links (the original of a
/// family is linked to all its copies). `None` content
/// hashes (unreadable files) take part in nothing. `rejected` lists pairs that were
/// compared and found not to be copies (see below).
#[must_use]
pub fn group_with(
    content_hashes: &[Option<[u8; 32]>],
    links: &[DupLink],
    rejected: &[(u32, u32)],
    rank: &[u32],
) -> Groups {
    let n = content_hashes.len();
    assert_eq!(n, rank.len(), "one rank per row");
    // Rows with identical bytes are one node: the first such row.
    let mut exact_first: HashMap<[u8; 32], u32> = HashMap::new();
    let mut exact_size: HashMap<[u8; 32], u32> = HashMap::new();
    let mut node = (0..n as u32).collect::<Vec<u32>>();
    for (row, hash) in content_hashes.iter().enumerate() {
        if let Some(hash) = hash {
            *exact_size.entry(*hash).or_default() += 1;
            node[row] = *exact_first.entry(*hash).or_insert(row as u32);
        }
    }
    let mut partners: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut kind_of: HashMap<(u32, u32), DupKind> = HashMap::new();
    for link in links {
        let (a, b) = (node[link.a as usize], node[link.b as usize]);
        if a == b {
            continue;
        }
        let key = (a.min(b), a.max(b));
        match kind_of.get(&key) {
            Some(DupKind::Near) => continue,
            Some(_) if link.kind != DupKind::Near => continue,
            Some(_) => {}
            None => {
                partners[a as usize].push(b);
                partners[b as usize].push(a);
            }
        }
        kind_of.insert(key, link.kind);
    }
    for list in &mut partners {
        list.sort_by_key(|&p| (rank[p as usize], p));
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| !partners[i].is_empty()).collect();
    order.sort_by_key(|&i| (rank[i], std::cmp::Reverse(partners[i].len()), i));
    let mut sets = UnionFind::new(n);
    let mut linked_kind: Vec<Option<DupKind>> = vec![None; n];
    for (centre, member) in crate::analysis::semdedup::star_links(&partners, order) {
        sets.union(centre, member);
        let kind = kind_of[&(centre.min(member), centre.max(member))];
        for end in [centre, member] {
            let slot = &mut linked_kind[end as usize];
            if *slot != Some(DupKind::Near) {
                *slot = Some(kind);
            }
        }
    }
    // Stars taken in keeper order can split one family: two copies made in opposite
    // directions (brighter, darker) are copies of the original but not of each other, and
    // the candidate pairs are sparse. A smaller group (or a node left out) joins a larger
    // one when each of its members is linked to at least two of the larger group's members
    // and to more of them than it was compared with and rejected. A look-alike of one
    // member is linked to one at most and stays out.
    let mut rejected_with: Vec<Vec<u32>> = vec![Vec::new(); n];
    for &(a, b) in rejected {
        let (a, b) = (node[a as usize], node[b as usize]);
        if a != b {
            rejected_with[a as usize].push(b);
            rejected_with[b as usize].push(a);
        }
    }
    let mut members: HashMap<u32, Vec<u32>> = HashMap::new();
    for i in (0..n as u32).filter(|&i| !partners[i as usize].is_empty()) {
        members.entry(sets.find(i)).or_default().push(i);
    }
    let mut by_size: Vec<(u32, Vec<u32>)> = members.into_iter().collect();
    by_size.sort_by_key(|(root, list)| (list.len(), *root));
    let sizes: HashMap<u32, usize> = by_size.iter().map(|(r, l)| (*r, l.len())).collect();
    for (root, list) in &by_size {
        let mut towards: HashMap<u32, u32> = HashMap::new();
        for &m in list {
            for &p in &partners[m as usize] {
                let other = sets.find(p);
                if other != sets.find(*root) {
                    *towards.entry(other).or_default() += 1;
                }
            }
        }
        let Some((target, _)) = towards
            .into_iter()
            .filter(|(other, _)| sizes.get(other).copied().unwrap_or(1) >= list.len())
            .max_by_key(|&(other, count)| (count, std::cmp::Reverse(other)))
        else {
            continue;
        };
        let joins = list.iter().all(|&m| {
            let linked = partners[m as usize]
                .iter()
                .filter(|&&p| sets.find(p) == target)
                .count();
            let refused = rejected_with[m as usize]
                .iter()
                .filter(|&&p| sets.find(p) == target)
                .count();
            linked >= 2 && linked > refused
        });
        if joins {
            for &m in list {
                if linked_kind[m as usize].is_none() {
                    linked_kind[m as usize] = Some(DupKind::Near);
                }
            }
            sets.union(target, *root);
        }
    }
    for (row, &first) in node.iter().enumerate() {
        sets.union(first, row as u32);
    }

    let mut groups = Groups {
        exact_group: vec![-1; n],
        dup_group: vec![-1; n],
        dup_kind: vec![None; n],
        members: Vec::new(),
    };
    let mut exact_ids: HashMap<[u8; 32], i64> = HashMap::new();
    for (row, hash) in content_hashes.iter().enumerate() {
        if let Some(hash) = hash
            && exact_size[hash] > 1
        {
            let next = exact_ids.len() as i64;
            groups.exact_group[row] = *exact_ids.entry(*hash).or_insert(next);
        }
    }
    let mut set_size = vec![0_u32; n];
    for row in 0..n as u32 {
        set_size[sets.find(row) as usize] += 1;
    }
    let mut group_of_root: HashMap<u32, i64> = HashMap::new();
    for row in 0..n as u32 {
        let root = sets.find(row);
        if set_size[root as usize] < 2 {
            continue;
        }
        let next = group_of_root.len() as i64;
        let id = *group_of_root.entry(root).or_insert(next);
        if id as usize == groups.members.len() {
            groups.members.push(Vec::new());
        }
        groups.members[id as usize].push(row);
        groups.dup_group[row as usize] = id;
        groups.dup_kind[row as usize] = Some(if groups.exact_group[row as usize] >= 0 {
            DupKind::Exact
        } else {
            linked_kind[node[row as usize] as usize].unwrap_or(DupKind::Near)
        });
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(values: &[u64], r: u32) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for i in 0..values.len() {
            for j in i + 1..values.len() {
                if (values[i] ^ values[j]).count_ones() <= r {
                    out.push((i as u32, j as u32));
                }
            }
        }
        out
    }

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn matches_brute_force_on_distinct_values() {
        let mut state = 0x9E37_79B9_7F4A_7C15;
        let mut values: Vec<u64> = (0..3000).map(|_| xorshift(&mut state)).collect();
        // Plant neighbours at every distance 1..=12.
        for d in 1..=12_u32 {
            for rep in 0..20 {
                let base = values[(d * 31 + rep) as usize];
                let mut flipped = base;
                let mut bits = 0;
                while bits < d {
                    let bit = 1_u64 << (xorshift(&mut state) % 64);
                    if flipped & bit == base & bit {
                        flipped ^= bit;
                        bits += 1;
                    }
                }
                values.push(flipped);
            }
        }
        values.sort_unstable();
        values.dedup();
        for r in [0, 3, 4, 8, 10, 12] {
            let mut got: Vec<(u32, u32)> = distinct_pairs(&values, r)
                .into_iter()
                .map(|(a, b, _)| (a, b))
                .collect();
            got.sort_unstable();
            let expected = brute(&values, r);
            assert_eq!(got, expected, "radius {r}");
        }
    }

    #[test]
    fn identical_hashes_link_in_a_star() {
        let links = near_links(&[5, 5, 5, 9], 0);
        assert_eq!(links.len(), 2);
        assert!(links.iter().all(|l| l.a == 0 && l.distance == 0));
    }

    fn near(a: u32, b: u32) -> DupLink {
        DupLink {
            a,
            b,
            kind: DupKind::Near,
        }
    }

    #[test]
    fn groups_merge_exact_and_near() {
        let h = |b: u8| Some([b; 32]);
        let content = [h(1), h(1), h(2), h(3), None, h(4)];
        let groups = group_with(&content, &[near(1, 2)], &[], &[0; 6]);
        assert_eq!(groups.exact_group, [0, 0, -1, -1, -1, -1]);
        assert_eq!(groups.dup_group, [0, 0, 0, -1, -1, -1]);
        assert_eq!(groups.dup_kind[0], Some(DupKind::Exact));
        assert_eq!(groups.dup_kind[2], Some(DupKind::Near));
        assert_eq!(groups.members, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn a_copy_of_most_of_a_group_joins_it() {
        // 0 is the original; 1 (brighter, the keeper) and 2 (darker) are not copies of each
        // other, but 2 is a copy of 0 and of 3; 4 looks like 3 only.
        let content: Vec<Option<[u8; 32]>> = (0..5).map(|b| Some([b; 32])).collect();
        let links = [
            near(0, 1),
            near(0, 2),
            near(0, 3),
            near(1, 3),
            near(2, 3),
            near(3, 4),
        ];
        let groups = group_with(&content, &links, &[(1, 2), (0, 4)], &[1, 0, 2, 3, 4]);
        assert_eq!(groups.members, vec![vec![0, 1, 2, 3]]);
        assert_eq!(groups.dup_kind[2], Some(DupKind::Near));
        assert_eq!(groups.dup_group[4], -1);
    }

    #[test]
    fn look_alikes_never_chain() {
        // 0 is the original of 1 and 2; 3 looks like 2 only; 4 and 5 look like each other.
        let content: Vec<Option<[u8; 32]>> = (0..6).map(|b| Some([b; 32])).collect();
        let links = [near(0, 1), near(0, 2), near(1, 2), near(2, 3), near(4, 5)];
        let groups = group_with(&content, &links, &[(0, 3)], &[0, 1, 2, 3, 4, 5]);
        assert_eq!(groups.members, vec![vec![0, 1, 2], vec![4, 5]]);
        assert_eq!(groups.dup_group[3], -1);
    }
}
