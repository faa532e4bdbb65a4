//! How long something is kept: `Nd` days or `Ny` calendar years (`6y`, `180d`). Used for
//! retention policies and for how long object stores lock what aitrail writes.

use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

/// A retention period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Days(u32),
    Years(u32),
}

impl Default for Period {
    /// Six years: HIPAA's retention for compliance documentation, and a common one for audit
    /// records.
    fn default() -> Period {
        Period::Years(6)
    }
}

impl FromStr for Period {
    type Err = String;

    fn from_str(s: &str) -> Result<Period, String> {
        let bad = || format!("{s:?}: expected a number of days or years, like 180d or 6y");
        let t = s.trim();
        let (num, unit) = t.split_at(t.len().saturating_sub(1));
        let n: u32 = num.parse().map_err(|_| bad())?;
        match unit {
            _ if n == 0 => Err(bad()),
            "d" => Ok(Period::Days(n)),
            "y" => Ok(Period::Years(n)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Days(n) => write!(f, "{n}d"),
            Period::Years(n) => write!(f, "{n}y"),
        }
    }
}

impl Period {
    /// `start` plus the period, or None when out of range. Years are calendar years (a
    /// 29 February moves to 1 March).
    pub fn after(self, start: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Period::Days(n) => start.checked_add(time::Duration::days(n.into())),
            Period::Years(n) => {
                let year = start.year().checked_add(n as i32)?;
                let date = time::Date::from_calendar_date(year, start.month(), start.day())
                    .or_else(|_| time::Date::from_calendar_date(year, time::Month::March, 1))
                    .ok()?;
                Some(start.replace_date(date))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn parses_days_and_years_and_names_bad_input() {
        assert_eq!("6y".parse(), Ok(Period::Years(6)));
        assert_eq!(" 180d ".parse(), Ok(Period::Days(180)));
        for bad in ["", "0y", "6", "6w", "-1d", "y"] {
            let err = bad.parse::<Period>().unwrap_err();
            assert!(err.contains("like 180d or 6y"), "{bad}: {err}");
        }
        assert_eq!(Period::Years(6).to_string(), "6y");
    }

    #[test]
    fn years_are_calendar_years() {
        let leap = datetime!(2024-02-29 10:00 UTC);
        assert_eq!(
            Period::Years(1).after(leap),
            Some(datetime!(2025-03-01 10:00 UTC))
        );
        assert_eq!(
            Period::Years(6).after(datetime!(2026-11-29 0:00 UTC)),
            Some(datetime!(2032-11-29 0:00 UTC))
        );
        assert_eq!(
            Period::Days(90).after(datetime!(2026-01-01 0:00 UTC)),
            Some(datetime!(2026-04-01 0:00 UTC))
        );
    }
}
