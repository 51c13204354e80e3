//! Which of the matching targets a run takes: `one`, `all`, `count`, `percent`; random
//! but reproducible with a seed (ChaCha8, the same on every platform and release).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::Target;
use crate::experiment::model::{Select, SelectMode};

/// How many of `n` candidates the mode takes (percent rounds up, and takes at least 1).
pub fn how_many(select: &Select, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    match select.mode {
        SelectMode::One => 1,
        SelectMode::All => n,
        SelectMode::Count => (select.value.unwrap_or(1) as usize).min(n),
        SelectMode::Percent => {
            let p = select.value.unwrap_or(100) as usize;
            n.saturating_mul(p).div_ceil(100).clamp(1, n)
        }
    }
}

/// Picks targets. Candidates are ordered by name (then id) first, so the same seed and the
/// same candidates give the same choice whatever order the platform listed them in.
/// Returns the selection (ordered by name) and the seed used.
pub fn select(
    mut candidates: Vec<Target>,
    select: &Select,
    seed: Option<u64>,
) -> (Vec<Target>, u64) {
    candidates.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    let seed = seed.or(select.seed).unwrap_or_else(rand::random);
    let k = how_many(select, candidates.len());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (chosen, _) = candidates.partial_shuffle(&mut rng, k);
    let mut chosen = chosen.to_vec();
    chosen.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    (chosen, seed)
}

/// Candidates and selections for the tests of selection and its report.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// `n` Docker targets `web-00`, `web-01`, ...
    pub(crate) fn targets(n: usize) -> Vec<Target> {
        (0..n)
            .map(|i| Target {
                platform: "docker".into(),
                id: format!("id{i}"),
                name: format!("web-{i:02}"),
                labels: Default::default(),
            })
            .collect()
    }

    pub(crate) fn sel(mode: SelectMode, value: Option<u64>) -> Select {
        Select {
            mode,
            value,
            seed: None,
            min: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{sel, targets};
    use super::*;

    #[test]
    fn counts_per_mode() {
        assert_eq!(how_many(&sel(SelectMode::One, None), 5), 1);
        assert_eq!(how_many(&sel(SelectMode::All, None), 5), 5);
        assert_eq!(how_many(&sel(SelectMode::Count, Some(3)), 5), 3);
        assert_eq!(how_many(&sel(SelectMode::Count, Some(9)), 5), 5);
        assert_eq!(
            how_many(&sel(SelectMode::Percent, Some(50)), 5),
            3,
            "rounded up"
        );
        assert_eq!(
            how_many(&sel(SelectMode::Percent, Some(1)), 5),
            1,
            "at least one"
        );
        assert_eq!(how_many(&sel(SelectMode::Percent, Some(100)), 5), 5);
        assert_eq!(how_many(&sel(SelectMode::One, None), 0), 0);
    }

    #[test]
    fn same_seed_same_choice_whatever_the_listing_order() {
        let s = sel(SelectMode::Count, Some(3));
        let (a, _) = select(targets(10), &s, Some(7));
        let mut reversed = targets(10);
        reversed.reverse();
        let (b, _) = select(reversed, &s, Some(7));
        assert_eq!(a, b);
        let differs = (0..20u64).any(|seed| select(targets(10), &s, Some(seed)).0 != a);
        assert!(differs, "the seed must matter");
    }

    #[test]
    fn seed_from_the_file_or_the_command_line() {
        let mut s = sel(SelectMode::One, None);
        s.seed = Some(3);
        assert_eq!(select(targets(4), &s, None).1, 3);
        assert_eq!(select(targets(4), &s, Some(9)).1, 9, "--seed wins");
    }

    /// A pinned outcome: ChaCha8 is portable, so the same seed and candidates must pick
    /// the same targets in every build; a change here breaks users' reproducible runs.
    #[test]
    fn choice_is_stable_across_releases() {
        let (chosen, _) = select(targets(10), &sel(SelectMode::Count, Some(2)), Some(42));
        let names: Vec<&str> = chosen.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["web-08", "web-09"]);
    }
}
