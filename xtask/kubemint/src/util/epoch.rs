//! The build epoch: the one timestamp every artefact carries, as a value passed down from
//! `main` (never the clock), checked once when it is made, and shown as RFC 3339 in UTC for OCI
//! `created` fields.

use serde::Serialize;
use std::fmt;

/// Seconds since 1970, at most 4294967295 (2106-02-07): squashfs keeps 32-bit times, so an
/// epoch that every output can carry fits a `u32`. Made only by [`Epoch::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Epoch(u32);

impl Epoch {
    /// The one check of an epoch's range, wherever it comes from (a profile, `--epoch`,
    /// `SOURCE_DATE_EPOCH`).
    pub fn new(seconds: i128) -> Result<Epoch, String> {
        u32::try_from(seconds).map(Epoch).map_err(|_| {
            format!(
                "{seconds} is out of range: seconds since 1970, 0 to 4294967295 (2106-02-07; squashfs keeps 32-bit times)"
            )
        })
    }

    pub fn seconds(self) -> u64 {
        u64::from(self.0)
    }

    /// As squashfs stores it.
    pub fn as_u32(self) -> u32 {
        self.0
    }

    /// `2019-05-16T10:13:20Z`.
    pub fn rfc3339(self) -> String {
        rfc3339(self.seconds())
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `1558001600` → `2019-05-16T10:13:20Z`.
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_558_001_600), "2019-05-16T10:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn range() {
        assert_eq!(Epoch::new(0).unwrap().seconds(), 0);
        assert_eq!(Epoch::new(4_294_967_295).unwrap().as_u32(), u32::MAX);
        assert!(
            Epoch::new(4_294_967_296)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(Epoch::new(-1).is_err());
    }
}
