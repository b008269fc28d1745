//! Sorting and ordered collections with less generated code: the standard library's stable
//! sort is a large function copied once per element type (and `BTreeMap`/`BTreeSet`
//! `collect()` sorts too), which showed as some 50 KB of the .wasm. Here every stable sort runs
//! one shared copy over indices, and ordered collections are built by inserting.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// Sorts `v` stably by `cmp`, like `slice::sort_by`.
pub fn sort_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    let mut order: Vec<usize> = (0..v.len()).collect();
    sort_indices(&mut order, &mut |a, b| cmp(&v[a], &v[b]));
    // Puts the element at `order[i]` at `i`, one cycle of the permutation at a time.
    for start in 0..order.len() {
        let mut at = start;
        while order[at] != usize::MAX {
            let from = order[at];
            order[at] = usize::MAX;
            if from == start {
                break;
            }
            v.swap(at, from);
            at = from;
        }
    }
}

/// Sorts `v` stably, like `slice::sort`.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp);
}

/// The one copy of the standard stable sort: indices compared through `cmp`. Ties keep index
/// order, so sorting the elements by these indices is stable.
#[inline(never)]
#[allow(clippy::disallowed_methods)] // the one copy clippy.toml points everyone else to
fn sort_indices(order: &mut [usize], cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    order.sort_by(|a, b| cmp(*a, *b));
}

/// A set of the items, like `collect::<BTreeSet<_>>()` (of equal items, the first is kept).
pub fn set_of<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut set = BTreeSet::new();
    for x in items {
        set.insert(x);
    }
    set
}

/// A map of the pairs, like `collect::<BTreeMap<_, _>>()` (of equal keys, the last value is
/// kept).
pub fn map_of<K: Ord, V>(pairs: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    for (k, v) in pairs {
        map.insert(k, v);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sorts_like_the_standard_stable_sort(v in proptest::collection::vec((0u8..8, any::<u16>()), 0..200)) {
            let mut mine = v.clone();
            sort_by(&mut mine, |a, b| a.0.cmp(&b.0));
            let mut std = v.clone();
            std.sort_by_key(|a| a.0);
            prop_assert_eq!(&mine, &std);
            let mut mine = v.clone();
            sort(&mut mine);
            let mut std = v;
            std.sort();
            prop_assert_eq!(mine, std);
        }

        #[test]
        fn collections_match_collect(v in proptest::collection::vec((0u8..16, any::<u16>()), 0..100)) {
            prop_assert_eq!(map_of(v.clone()), v.iter().copied().collect::<BTreeMap<_, _>>());
            prop_assert_eq!(set_of(v.clone()), v.into_iter().collect::<BTreeSet<_>>());
        }
    }
}
