//! A risk score that keeps growing with the findings (docs/risk-score.md).
//!
//! The 0–100 `score` of a scan (`ingest::pipeline::score_from_counts`) says how healthy a
//! target is and tends to 0 as findings pile up, so 10 high findings and 10,000 look alike once
//! rounded. The risk score is the other way round: 0 with nothing open, then 25 points more for
//! every tenfold of weighted findings, without a ceiling.

use crate::findings::SeverityCounts;

/// Weight of one finding per severity: the same weights as the scan score (critical 20, high
/// 10, medium 4, low 1, info 0), so the two numbers rank severities alike.
pub fn weighted(counts: &SeverityCounts) -> f64 {
    (20 * counts.critical + 10 * counts.high + 4 * counts.medium + counts.low) as f64
}

/// `25 × log10(1 + W)`, W the weighted count: 0 for nothing, 7.5 for one low, 33.1 for one
/// critical, 50.1 for ten high, 125.0 for 10,000 high. Strictly increasing in every severity
/// but info; not rounded, so it stays strictly increasing however large W grows.
pub fn risk_score(counts: &SeverityCounts) -> f64 {
    25.0 * (1.0 + weighted(counts)).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(critical: i64, high: i64, medium: i64, low: i64, info: i64) -> SeverityCounts {
        SeverityCounts {
            critical,
            high,
            medium,
            low,
            info,
            total: critical + high + medium + low + info,
        }
    }

    #[test]
    fn ten_and_ten_thousand_high_findings_differ() {
        let ten = risk_score(&counts(0, 10, 0, 0, 0));
        let many = risk_score(&counts(0, 10_000, 0, 0, 0));
        assert!((ten - 50.1).abs() < 0.05, "{ten}");
        assert!((many - 125.0).abs() < 0.05, "{many}");
        assert!(many > ten + 70.0);
        assert_eq!(risk_score(&SeverityCounts::default()), 0.0);
    }

    #[test]
    fn one_more_finding_of_any_weighted_severity_raises_the_score() {
        let bases = [
            counts(0, 0, 0, 0, 0),
            counts(1, 2, 3, 4, 5),
            counts(0, 10, 0, 0, 0),
            counts(0, 10_000, 0, 0, 0),
            counts(1_000_000, 1_000_000, 1_000_000, 1_000_000, 0),
        ];
        for base in bases {
            let before = risk_score(&base);
            for (i, more) in [
                counts(1, 0, 0, 0, 0),
                counts(0, 1, 0, 0, 0),
                counts(0, 0, 1, 0, 0),
                counts(0, 0, 0, 1, 0),
            ]
            .iter()
            .enumerate()
            {
                let after = counts(
                    base.critical + more.critical,
                    base.high + more.high,
                    base.medium + more.medium,
                    base.low + more.low,
                    base.info,
                );
                assert!(risk_score(&after) > before, "{base:?} + severity {i}");
            }
            // Info findings carry no weight.
            let info = counts(
                base.critical,
                base.high,
                base.medium,
                base.low,
                base.info + 1,
            );
            assert_eq!(risk_score(&info), before);
        }
    }

    #[test]
    fn worse_severities_weigh_more_and_the_score_never_saturates() {
        assert!(risk_score(&counts(1, 0, 0, 0, 0)) > risk_score(&counts(0, 1, 0, 0, 0)));
        assert!(risk_score(&counts(0, 1, 0, 0, 0)) > risk_score(&counts(0, 0, 1, 0, 0)));
        assert!(risk_score(&counts(0, 0, 1, 0, 0)) > risk_score(&counts(0, 0, 0, 1, 0)));
        let mut previous = 0.0;
        for exponent in 0..9 {
            let n = 10_i64.pow(exponent);
            let score = risk_score(&counts(0, n, 0, 0, 0));
            assert!(score > previous, "10^{exponent} high");
            if exponent > 0 {
                // Each tenfold adds about 25 points.
                assert!(
                    (score - previous - 25.0).abs() < 4.0,
                    "10^{exponent}: {score}"
                );
            }
            previous = score;
        }
    }
}
