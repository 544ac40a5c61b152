//! Load balancing over one endpoint set: pure selection logic, no I/O.

use parking_lot::Mutex;
use sekisho_config::LbPolicy;

/// What the balancer needs to know about a candidate address (weights are fixed at build time).
pub(crate) trait Candidate {
    /// Requests in flight to it now.
    fn load(&self) -> usize;
}

/// A source of uniform random numbers; seedable in tests, thread-local in production.
pub(crate) trait Random {
    /// A uniform number in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64;
}

impl Random for fastrand::Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.u64(..n)
    }
}

/// The thread-local generator: no lock, no allocation per pick.
pub(crate) struct ThreadRandom;

impl Random for ThreadRandom {
    fn below(&mut self, n: u64) -> u64 {
        fastrand::u64(..n)
    }
}

/// Picks an index into a fixed candidate list. Built once per endpoint-set change.
#[derive(Debug)]
pub(crate) struct Balancer {
    policy: LbPolicy,
    weights: Vec<u64>,
    /// `cumulative[i]` = sum of weights `0..=i`, for weighted sampling by binary search.
    cumulative: Vec<u64>,
    total: u64,
    /// Smooth weighted round robin's current weights (nginx); only used by `RoundRobin`.
    current: Mutex<Vec<i64>>,
}

impl Balancer {
    /// A balancer for candidates with these weights (0 is treated as 1).
    pub(crate) fn new(policy: LbPolicy, weights: impl IntoIterator<Item = u32>) -> Self {
        let weights: Vec<u64> = weights.into_iter().map(|w| u64::from(w.max(1))).collect();
        let mut total = 0;
        let cumulative = weights
            .iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        let current = Mutex::new(vec![0; weights.len()]);
        Self {
            policy,
            weights,
            cumulative,
            total,
            current,
        }
    }

    /// The chosen candidate's index; `None` when there are no candidates.
    /// `cands` must be the list the balancer was built for.
    pub(crate) fn pick<C: Candidate>(&self, cands: &[C], rng: &mut impl Random) -> Option<usize> {
        match cands.len().min(self.weights.len()) {
            0 => None,
            1 => Some(0),
            n => Some(match self.policy {
                LbPolicy::RoundRobin => self.smooth_round_robin(),
                LbPolicy::Random => self.weighted(rng),
                LbPolicy::LeastRequest => self.p2c(cands, n, rng),
            }),
        }
    }

    /// nginx's smooth weighted round robin: every pick adds each weight to its current
    /// value, takes the largest and subtracts the total from it. Spreads heavy endpoints
    /// out (`a a b a c a a` for 5:1:1) instead of bursting them.
    fn smooth_round_robin(&self) -> usize {
        let mut current = self.current.lock();
        let mut best = 0;
        let mut best_value = i64::MIN;
        for (i, (cur, w)) in current.iter_mut().zip(&self.weights).enumerate() {
            *cur += *w as i64;
            if *cur > best_value {
                best = i;
                best_value = *cur;
            }
        }
        if let Some(cur) = current.get_mut(best) {
            *cur -= self.total as i64;
        }
        best
    }

    /// Weighted random choice.
    fn weighted(&self, rng: &mut impl Random) -> usize {
        self.index_of(rng.below(self.total))
    }

    /// The candidate whose cumulative weight range holds `point` (`< total`).
    fn index_of(&self, point: u64) -> usize {
        self.cumulative.partition_point(|&c| c <= point)
    }

    /// Power of two choices: sample two distinct candidates by weight, send to the one
    /// with fewer requests in flight per unit of weight (the first sampled on a tie,
    /// which keeps an idle cluster's distribution proportional to the weights).
    fn p2c<C: Candidate>(&self, cands: &[C], n: usize, rng: &mut impl Random) -> usize {
        let a = self.weighted(rng);
        let wa = self.weights.get(a).copied().unwrap_or(1);
        // Sample the second among the others: skip `a`'s weight range.
        let mut point = rng.below(self.total - wa);
        let a_start = self.cumulative.get(a).copied().unwrap_or(0) - wa;
        if point >= a_start {
            point += wa;
        }
        let b = self.index_of(point).min(n - 1);
        let (Some(ca), Some(cb)) = (cands.get(a), cands.get(b)) else {
            return a.min(n - 1);
        };
        let wb = self.weights.get(b).copied().unwrap_or(1);
        // la/wa <= lb/wb, without division.
        let left = ca.load() as u128 * u128::from(wb);
        let right = cb.load() as u128 * u128::from(wa);
        if left <= right {
            a
        } else {
            b
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct C(u32, usize);
    impl Candidate for C {
        fn load(&self) -> usize {
            self.1
        }
    }

    fn counts(policy: LbPolicy, cands: &[C], picks: usize) -> Vec<usize> {
        let b = Balancer::new(policy, cands.iter().map(|c| c.0));
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = vec![0; cands.len()];
        for _ in 0..picks {
            let i = b.pick(cands, &mut rng).expect("non-empty");
            counts[i] += 1;
        }
        counts
    }

    #[test]
    fn smooth_round_robin_matches_nginx_sequence() {
        let cands = [C(5, 0), C(1, 0), C(1, 0)];
        let b = Balancer::new(LbPolicy::RoundRobin, cands.iter().map(|c| c.0));
        let mut rng = fastrand::Rng::with_seed(1);
        let seq: Vec<usize> = (0..14)
            .map(|_| b.pick(&cands, &mut rng).expect("pick"))
            .collect();
        assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn round_robin_equal_weights_cycles() {
        let cands = [C(1, 0), C(1, 0), C(1, 0)];
        assert_eq!(counts(LbPolicy::RoundRobin, &cands, 300), [100, 100, 100]);
    }

    #[test]
    fn random_is_weighted() {
        let cands = [C(1, 0), C(3, 0), C(6, 0)];
        let c = counts(LbPolicy::Random, &cands, 100_000);
        for (got, want) in c.iter().zip([10_000, 30_000, 60_000]) {
            assert!(got.abs_diff(want) < 1_500, "{c:?}");
        }
    }

    #[test]
    fn least_request_idle_cluster_follows_weights() {
        let cands = [C(1, 0), C(3, 0)];
        let c = counts(LbPolicy::LeastRequest, &cands, 40_000);
        assert!(c[0].abs_diff(10_000) < 1_000, "{c:?}");
        assert!(c[1].abs_diff(30_000) < 1_000, "{c:?}");
    }

    #[test]
    fn least_request_prefers_less_loaded() {
        let cands = [C(1, 5), C(1, 0)];
        assert_eq!(counts(LbPolicy::LeastRequest, &cands, 1_000), [0, 1_000]);
        // Weight-aware: 4 in flight on weight 4 beats 2 in flight on weight 1.
        let cands = [C(4, 4), C(1, 2)];
        assert_eq!(counts(LbPolicy::LeastRequest, &cands, 1_000), [1_000, 0]);
    }

    #[test]
    fn least_request_never_picks_same_twice_and_spreads() {
        let cands: Vec<C> = (0..10).map(|_| C(1, 0)).collect();
        let c = counts(LbPolicy::LeastRequest, &cands, 100_000);
        for got in c {
            assert!(got.abs_diff(10_000) < 800, "{got}");
        }
    }

    #[test]
    fn empty_and_single() {
        let b = Balancer::new(LbPolicy::LeastRequest, []);
        assert_eq!(b.pick::<C>(&[], &mut ThreadRandom), None);
        let b = Balancer::new(LbPolicy::Random, [9]);
        assert_eq!(b.pick(&[C(9, 0)], &mut ThreadRandom), Some(0));
    }
}
