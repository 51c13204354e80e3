//! Which of the matching targets a run takes: `one`, `all`, `count`, `percent`; random
//! but reproducible with a seed (ChaCha8, the same on every platform and release).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::Target;
use crate::experiment::model::{Select, SelectMode};
use crate::report::Selection;

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

/// The counts of a selection, for the report: requested, matched, selected, min.
pub fn summary(select: &Select, matched: usize, selected: usize) -> Selection {
    let requested = match select.mode {
        SelectMode::One => 1,
        SelectMode::All => matched as u64,
        SelectMode::Count => select.value.unwrap_or(1),
        SelectMode::Percent => {
            let p = select.value.unwrap_or(100) as usize;
            matched.saturating_mul(p).div_ceil(100).max(1) as u64
        }
    };
    Selection {
        mode: match select.mode {
            SelectMode::One => "one",
            SelectMode::All => "all",
            SelectMode::Count => "count",
            SelectMode::Percent => "percent",
        }
        .into(),
        requested,
        matched: matched as u64,
        selected: selected as u64,
        min: select.min,
    }
}

/// Why a selection is too small to run: nothing matched, or fewer than `select.min`.
/// `what` describes the target block (see [`crate::plan::describe_target`]).
pub fn too_few(s: &Selection, what: &str) -> Option<String> {
    if s.selected == 0 {
        return Some(format!("no target matched {what}"));
    }
    match s.min {
        Some(min) if s.selected < min => Some(format!(
            "only {} of {} requested targets matched {what}, fewer than select.min {min}",
            s.selected, s.requested
        )),
        _ => None,
    }
}

/// [`select`] plus the counts for the report.
pub fn select_counted(
    candidates: Vec<Target>,
    sel: &Select,
    seed: Option<u64>,
) -> (Vec<Target>, u64, Selection) {
    let matched = candidates.len();
    let (chosen, seed) = select(candidates, sel, seed);
    let counts = summary(sel, matched, chosen.len());
    (chosen, seed, counts)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(n: usize) -> Vec<Target> {
        (0..n)
            .map(|i| Target {
                platform: "docker".into(),
                id: format!("id{i}"),
                name: format!("web-{i:02}"),
                labels: Default::default(),
            })
            .collect()
    }

    fn sel(mode: SelectMode, value: Option<u64>) -> Select {
        Select {
            mode,
            value,
            seed: None,
            min: None,
        }
    }

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

    /// Regression: `count: 5` with 3 matches silently took 3.
    #[test]
    fn a_short_selection_says_so_and_min_refuses_it() {
        let mut s = sel(SelectMode::Count, Some(5));
        let (chosen, _, counts) = select_counted(targets(3), &s, Some(1));
        assert_eq!(chosen.len(), 3);
        assert_eq!(
            (counts.requested, counts.matched, counts.selected),
            (5, 3, 3)
        );
        assert_eq!(counts.shortfall().as_deref(), Some("3 of 5 requested"));
        assert_eq!(
            too_few(&counts, "x"),
            None,
            "without min, 3 of 5 still runs"
        );
        s.min = Some(4);
        let (_, _, counts) = select_counted(targets(3), &s, Some(1));
        assert_eq!(
            too_few(&counts, "x").as_deref(),
            Some("only 3 of 5 requested targets matched x, fewer than select.min 4")
        );
        s.min = Some(3);
        assert_eq!(
            too_few(&select_counted(targets(3), &s, Some(1)).2, "x"),
            None
        );
        // min with the other modes counts the selected targets too.
        let mut all = sel(SelectMode::All, None);
        all.min = Some(3);
        assert!(too_few(&select_counted(targets(2), &all, None).2, "x").is_some());
        assert_eq!(select_counted(targets(4), &all, None).2.shortfall(), None);
        let (_, _, none) = select_counted(targets(0), &all, None);
        assert_eq!(too_few(&none, "x").as_deref(), Some("no target matched x"));
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
