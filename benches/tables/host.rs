//! What the settings files record about the machine and the moment: the UTC time and the
//! output of a few commands.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC time to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UtcMinute {
    /// The year.
    pub(crate) year: i64,
    /// 1 to 12.
    pub(crate) month: u32,
    /// 1 to 31.
    pub(crate) day: u32,
    /// 0 to 23.
    pub(crate) hour: u32,
    /// 0 to 59.
    pub(crate) minute: u32,
}

impl UtcMinute {
    /// Now (the Unix epoch if the clock is set before it).
    pub(crate) fn now() -> Self {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self::from_unix(secs as i64)
    }

    /// `secs` after the Unix epoch, in the proleptic Gregorian calendar.
    pub(crate) fn from_unix(secs: i64) -> Self {
        let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's days-to-civil: eras of 400 years, years starting in March.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        UtcMinute { year, month, day, hour: (of_day / 3600) as u32, minute: (of_day % 3600 / 60) as u32 }
    }

    /// `2026-11-25 16:12 UTC`.
    pub(crate) fn spaced(self) -> String {
        let UtcMinute { year, month, day, hour, minute } = self;
        format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
    }

    /// `2026-11-25T16:12Z`.
    pub(crate) fn iso(self) -> String {
        let UtcMinute { year, month, day, hour, minute } = self;
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}Z")
    }
}

/// The trimmed standard output of `program args`, or `?` when it cannot run or fails.
pub(crate) fn output_of(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => "?".to_owned(),
    }
}

/// The kernel release (`uname -r`), or `?`.
pub(crate) fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".to_owned(), |s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_to_utc_minutes() {
        let t = UtcMinute::from_unix(0);
        assert_eq!(t.spaced(), "1970-01-01 00:00 UTC");
        // `date -u -d @1795623120` = Wed Nov 25 16:12:00 UTC 2026
        let t = UtcMinute::from_unix(1_795_623_120);
        assert_eq!(t.spaced(), "2026-11-25 16:12 UTC");
        assert_eq!(t.iso(), "2026-11-25T16:12Z");
        // A leap day, and the last minute of a year.
        assert_eq!(UtcMinute::from_unix(951_782_400).iso(), "2000-02-29T00:00Z");
        assert_eq!(UtcMinute::from_unix(1_735_689_599).iso(), "2024-12-31T23:59Z");
    }
}
