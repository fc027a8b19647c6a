//! Parsing a window and finding its occurrence around a given instant.

use std::fmt;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

/// A window as the operator wrote it.
#[derive(Clone, Debug)]
pub enum WindowSpec {
    /// One window between two instants.
    Fixed { start: Timestamp, end: Timestamp },
    /// Every day from `start` to `end` (the next day when `end <= start`), civil times in `tz`.
    Daily {
        start: Time,
        end: Time,
        tz: TimeZone,
        tz_name: String,
    },
}

/// A window that is not well formed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid outage window `{text}`: {reason}")]
pub struct WindowError {
    pub text: String,
    pub reason: String,
}

/// One concrete window: `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    pub start: Zoned,
    pub end: Zoned,
}

impl WindowSpec {
    /// Parses `START/END` (RFC 3339) or `HH:MM/HH:MM ZONE`.
    ///
    /// # Errors
    /// A malformed window, an unknown time zone, or an end not after the start.
    pub fn parse(text: &str) -> Result<Self, WindowError> {
        let err = |reason: String| WindowError {
            text: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        let (range, zone) = match trimmed.split_once(char::is_whitespace) {
            Some((range, zone)) => (range, Some(zone.trim())),
            None => (trimmed, None),
        };
        let Some((from, to)) = range.split_once('/') else {
            return Err(err(
                "expected START/END, such as `2026-11-28T22:00:00+01:00/2026-11-29T02:00:00+01:00` or `22:00/02:00 Europe/Berlin`".into(),
            ));
        };
        if let Some(zone) = zone {
            let tz = TimeZone::get(zone).map_err(|e| err(format!("unknown time zone: {e}")))?;
            let time = |s: &str| {
                s.parse::<Time>()
                    .map_err(|e| err(format!("`{s}` is not a time of day (HH:MM): {e}")))
            };
            let (start, end) = (time(from)?, time(to)?);
            if start == end {
                return Err(err("the window starts and ends at the same time".into()));
            }
            return Ok(Self::Daily {
                start,
                end,
                tz,
                tz_name: zone.to_owned(),
            });
        }
        let instant = |s: &str| {
            s.parse::<Timestamp>().map_err(|e| {
                err(format!(
                    "`{s}` is not an RFC 3339 instant (or give times of day and a zone, `22:00/02:00 Europe/Berlin`): {e}"
                ))
            })
        };
        let (start, end) = (instant(from)?, instant(to)?);
        if end <= start {
            return Err(err("the end is not after the start".into()));
        }
        Ok(Self::Fixed { start, end })
    }

    /// The window that is open at `now`, else the next one to open; `None` when there is no
    /// such window (a fixed window that has closed).
    pub fn occurrence(&self, now: Timestamp) -> Option<Occurrence> {
        match self {
            Self::Fixed { start, end } => (*end > now).then(|| {
                let tz = TimeZone::system();
                Occurrence {
                    start: start.to_zoned(tz.clone()),
                    end: end.to_zoned(tz),
                }
            }),
            Self::Daily { start, end, tz, .. } => {
                let today = now.to_zoned(tz.clone()).date();
                // The window that began yesterday may still be open; otherwise today's or
                // tomorrow's is next.
                let mut day = today.yesterday().ok()?;
                for _ in 0..3 {
                    let opens = day.to_datetime(*start).to_zoned(tz.clone()).ok()?;
                    let end_day = if end <= start {
                        day.tomorrow().ok()?
                    } else {
                        day
                    };
                    let closes = end_day.to_datetime(*end).to_zoned(tz.clone()).ok()?;
                    if closes.timestamp() > now {
                        return Some(Occurrence {
                            start: opens,
                            end: closes,
                        });
                    }
                    day = day.tomorrow().ok()?;
                }
                None
            }
        }
    }
}

impl WindowSpec {
    /// Where `now` stands in the window, for `runbook status`: time used and left while it is
    /// open, else when it opens.
    pub fn position(&self, now: Timestamp) -> String {
        let d = |s: SignedDuration| {
            runbook_modules::format_duration(std::time::Duration::try_from(s).unwrap_or_default())
        };
        match self.occurrence(now) {
            None => format!("window {self}: closed; give a new --window to resume"),
            Some(o) if o.is_open(now) => format!(
                "window {self} ({o}): open, {} used, {} left",
                d(now.duration_since(o.start.timestamp())),
                d(o.end.timestamp().duration_since(now))
            ),
            Some(o) => format!(
                "window {self} ({o}): opens in {}",
                d(o.start.timestamp().duration_since(now))
            ),
        }
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed { start, end } => write!(f, "{start}/{end}"),
            Self::Daily {
                start,
                end,
                tz_name,
                ..
            } => write!(
                f,
                "{}/{} {tz_name}",
                start.strftime("%H:%M"),
                end.strftime("%H:%M")
            ),
        }
    }
}

impl Occurrence {
    pub fn length(&self) -> SignedDuration {
        self.end.timestamp().duration_since(self.start.timestamp())
    }

    pub fn is_open(&self, now: Timestamp) -> bool {
        self.start.timestamp() <= now && now < self.end.timestamp()
    }
}

impl fmt::Display for Occurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} → {}",
            self.start.strftime("%Y-%m-%d %H:%M %Z"),
            self.end.strftime("%Y-%m-%d %H:%M %Z")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("a valid instant")
    }

    #[test]
    fn fixed_windows_parse_and_close() {
        let w = WindowSpec::parse("2026-11-28T22:00:00+01:00/2026-11-29T02:00:00+01:00")
            .expect("valid");
        let o = w
            .occurrence(ts("2026-11-28T20:00:00Z"))
            .expect("open later");
        assert_eq!(o.start.timestamp(), ts("2026-11-28T21:00:00Z"));
        assert_eq!(o.length(), SignedDuration::from_hours(4));
        assert!(!o.is_open(ts("2026-11-28T20:00:00Z")));
        assert!(o.is_open(ts("2026-11-28T21:00:00Z")));
        assert!(
            w.occurrence(ts("2026-11-29T01:00:00Z")).is_none(),
            "closed for good"
        );
    }

    #[test]
    fn daily_windows_cross_midnight_in_their_zone() {
        let w = WindowSpec::parse("22:00/02:00 Europe/Berlin").expect("valid");
        assert_eq!(w.to_string(), "22:00/02:00 Europe/Berlin");
        // 00:30 Berlin (23:30 UTC): inside the window that opened yesterday at 22:00.
        let o = w.occurrence(ts("2026-11-23T23:30:00Z")).expect("a window");
        assert!(o.is_open(ts("2026-11-23T23:30:00Z")));
        assert_eq!(o.start.timestamp(), ts("2026-11-23T21:00:00Z"));
        assert_eq!(o.end.timestamp(), ts("2026-11-24T01:00:00Z"));
        // 03:00 Berlin: the next window is tonight's.
        let o = w.occurrence(ts("2026-11-24T02:00:00Z")).expect("a window");
        assert_eq!(o.start.timestamp(), ts("2026-11-24T21:00:00Z"));
        assert!(!o.is_open(ts("2026-11-24T02:00:00Z")));
    }

    #[test]
    fn daily_windows_follow_dst() {
        // Europe/Berlin leaves summer time on 2026-10-25 at 03:00: that night is 5 hours long.
        let w = WindowSpec::parse("22:00/02:00 Europe/Berlin").expect("valid");
        let o = w.occurrence(ts("2026-10-24T12:00:00Z")).expect("a window");
        assert_eq!(o.length(), SignedDuration::from_hours(4));
        let w = WindowSpec::parse("00:00/04:00 Europe/Berlin").expect("valid");
        let o = w.occurrence(ts("2026-10-24T23:00:00Z")).expect("a window");
        assert_eq!(o.length(), SignedDuration::from_hours(5));
    }

    #[test]
    fn position_says_time_used_and_left() {
        let w = WindowSpec::parse("22:00/02:00 UTC").expect("valid");
        let open = w.position(ts("2026-11-23T23:15:00Z"));
        assert!(open.ends_with("open, 1h15m used, 2h45m left"), "{open}");
        let later = w.position(ts("2026-11-23T19:00:00Z"));
        assert!(later.ends_with("opens in 3h"), "{later}");
        let fixed = WindowSpec::parse("2026-11-23T22:00:00Z/2026-11-24T02:00:00Z").expect("valid");
        assert!(
            fixed
                .position(ts("2026-11-24T03:00:00Z"))
                .contains("closed")
        );
    }

    #[test]
    fn malformed_windows_say_what_is_wrong() {
        for (text, needle) in [
            ("22:00", "expected START/END"),
            ("22:00/02:00 Mars/Olympus", "unknown time zone"),
            ("25:00/02:00 UTC", "not a time of day"),
            (
                "2026-11-29T02:00:00Z/2026-11-28T22:00:00Z",
                "not after the start",
            ),
            ("tonight/tomorrow", "not an RFC 3339 instant"),
            ("22:00/22:00 UTC", "same time"),
        ] {
            let e = WindowSpec::parse(text).expect_err(text);
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }
}
