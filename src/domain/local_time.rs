//! Reader-local delivery: a schedule read "at 08:00 in each reader's zone".
//!
//! The digest of a week is still built once per list: when the schedule fires in
//! [`FIRST_ZONE`] (UTC+14, where every local time comes first), so no reader's local
//! time has passed when it is built. Its week (the content window and its name, such as
//! `2023-W45`) is read in that zone too, so the week has begun when the digest is built.
//! Each reader's delivery is due at the same local date and time in their own zone
//! (theirs, else their institution's, else the list's), fixed when the digest is built:
//! a reader who changes zone afterwards gets that week's digest at the time set then.
//!
//! Clock changes: a local time the clocks skip (spring forward) is read with the offset
//! in force before the change, so 02:30 on a night that jumps from 02:00 to 03:00 is
//! due at 03:30 new time; a local time that comes twice (autumn) is due the first time.

use super::{CronExpr, DeliveryZone, Schedule};
use chrono::{DateTime, NaiveDateTime, NaiveTime, Offset, TimeZone as _, Utc, Weekday};
use chrono_tz::Tz;

/// The zone where a local time comes first: UTC+14 (Kiribati's Line Islands).
pub const FIRST_ZONE: Tz = chrono_tz::Etc::GMTMinus14;

/// From a local time at UTC+14 to the same local time at UTC−12, the last zone.
pub const READER_ZONES_SPAN: chrono::TimeDelta = chrono::TimeDelta::hours(26);

impl Schedule {
    /// Whether each reader gets the digest at the schedule's time in their own zone.
    pub fn reader_local(&self) -> bool {
        self.delivery == DeliveryZone::ReaderZone
    }

    /// The zone the schedule fires in and the digest's week is read in: the list's, or
    /// for reader-local delivery [`FIRST_ZONE`].
    pub fn fire_zone(&self) -> Tz {
        match self.delivery {
            DeliveryZone::ListZone => self.timezone.tz(),
            DeliveryZone::ReaderZone => FIRST_ZONE,
        }
    }

    /// For reader-local delivery, the local date and time every reader's delivery of
    /// the window that fired at `fired` is due at, in their own zone.
    pub fn local_send_time(&self, fired: DateTime<Utc>) -> Option<NaiveDateTime> {
        self.reader_local()
            .then(|| fired.with_timezone(&FIRST_ZONE).naive_local())
    }

    /// How long after the schedule fired a window the service missed may still be built
    /// late: the grace period, and for reader-local delivery the span of zones on top
    /// (the last readers' time comes 26 hours later; each reader's own delivery then
    /// keeps to the grace period).
    pub fn catch_up_window(&self) -> chrono::TimeDelta {
        let grace = chrono::TimeDelta::minutes(i64::from(self.grace_minutes));
        if self.reader_local() {
            grace + READER_ZONES_SPAN
        } else {
            grace
        }
    }
}

/// The instant a local date and time names in a zone. A time the clocks skip is read
/// with the offset before the change (02:30 in a gap from 02:00 to 03:00 is 03:30 new
/// time); one that comes twice is the first.
pub fn local_instant(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // No zone changes its offset twice within a day.
            let before = tz
                .offset_from_utc_datetime(&(local - chrono::TimeDelta::days(1)))
                .fix()
                .local_minus_utc();
            Utc.from_utc_datetime(&(local - chrono::TimeDelta::seconds(i64::from(before))))
        }
    }
}

/// One zone's share of a reader-local digest: when its readers get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSend {
    pub zone: Tz,
    /// The local date and time (the same in every zone).
    pub local: NaiveDateTime,
    /// That local time in this zone, as an instant.
    pub at: DateTime<Utc>,
    pub readers: u64,
}

/// The sends of a reader-local digest due at `local`, from the readers counted by zone
/// (`None`, or a zone that is not a known IANA name, is the list's `fallback`), earliest
/// first.
pub fn zone_sends<'a>(
    local: NaiveDateTime,
    zones: impl IntoIterator<Item = (Option<&'a str>, u64)>,
    fallback: Tz,
) -> Vec<ZoneSend> {
    let mut by_zone: std::collections::BTreeMap<&'static str, (Tz, u64)> = Default::default();
    for (name, readers) in zones {
        let zone = name.and_then(|n| n.parse::<Tz>().ok()).unwrap_or(fallback);
        by_zone.entry(zone.name()).or_insert((zone, 0)).1 += readers;
    }
    let mut sends: Vec<ZoneSend> = by_zone
        .into_values()
        .map(|(zone, readers)| ZoneSend {
            zone,
            local,
            at: local_instant(local, zone),
            readers,
        })
        .collect();
    sends.sort_by(|a, b| a.at.cmp(&b.at).then(a.zone.name().cmp(b.zone.name())));
    sends
}

impl CronExpr {
    /// The day and time of a schedule that fires once a week at one time
    /// (`S M H * * DAY`), as the admin form shows it; `None` for any other schedule.
    pub fn weekly(&self) -> Option<(Weekday, NaiveTime)> {
        let fields: Vec<&str> = self.as_str().split_whitespace().collect();
        let [sec, min, hour, "*", "*", day] = fields.as_slice() else {
            return None;
        };
        let number = |s: &str| -> Option<u32> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let time = NaiveTime::from_hms_opt(number(hour)?, number(min)?, number(sec)?)?;
        let day = match day.to_ascii_lowercase().as_str() {
            "0" | "7" | "sun" => Weekday::Sun,
            "1" | "mon" => Weekday::Mon,
            "2" | "tue" => Weekday::Tue,
            "3" | "wed" => Weekday::Wed,
            "4" | "thu" => Weekday::Thu,
            "5" | "fri" => Weekday::Fri,
            "6" | "sat" => Weekday::Sat,
            _ => return None,
        };
        Some((day, time))
    }

    /// The schedule firing every week on `day` at `time`, to the second (07:15:30 is
    /// `30 15 7 * * ...`).
    pub fn weekly_at(day: Weekday, time: NaiveTime) -> Self {
        use chrono::Timelike;
        let name = match day.num_days_from_monday() {
            0 => "Mon",
            1 => "Tue",
            2 => "Wed",
            3 => "Thu",
            4 => "Fri",
            5 => "Sat",
            _ => "Sun",
        };
        Self::parse(&format!(
            "{} {} {} * * {name}",
            time.second(),
            time.minute(),
            time.hour()
        ))
        .expect("a weekly schedule parses")
    }
}

/// A day of the week as the admin form posts it (`mon` to `sun`).
pub fn parse_weekday(s: &str) -> Result<Weekday, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "mon" => Ok(Weekday::Mon),
        "tue" => Ok(Weekday::Tue),
        "wed" => Ok(Weekday::Wed),
        "thu" => Ok(Weekday::Thu),
        "fri" => Ok(Weekday::Fri),
        "sat" => Ok(Weekday::Sat),
        "sun" => Ok(Weekday::Sun),
        other => Err(format!("must be a day from mon to sun (got {other:?})")),
    }
}

/// A time of day as the admin form posts it (`08:00`, or `08:00:00`).
pub fn parse_time_of_day(s: &str) -> Result<NaiveTime, String> {
    let s = s.trim();
    NaiveTime::parse_from_str(s, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
        .map_err(|_| format!("must be a time of day such as 08:00 (got {s:?})"))
}

/// The form's name of a day (`mon`).
pub fn weekday_key(day: Weekday) -> &'static str {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][day.num_days_from_monday() as usize]
}

/// The English name of a weekday, for pages.
pub fn weekday_name(day: Weekday) -> &'static str {
    [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ][day.num_days_from_monday() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IsoWeek;
    use chrono::NaiveDate;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn reader_local() -> Schedule {
        Schedule {
            delivery: DeliveryZone::ReaderZone,
            timezone: crate::domain::TimeZone::parse("Asia/Shanghai").unwrap(),
            ..Schedule::default()
        }
    }

    #[test]
    fn a_reader_local_monday_fires_first_at_utc_plus_14_and_reaches_each_zone_at_its_0800() {
        let s = reader_local();
        let fired = s
            .cron
            .next_fire_after(
                Utc.with_ymd_and_hms(2023, 11, 4, 0, 0, 0).unwrap(),
                s.fire_zone(),
            )
            .unwrap();
        assert_eq!(fired.to_rfc3339(), "2023-11-05T18:00:00+00:00");
        assert_eq!(
            IsoWeek::containing(fired, s.fire_zone()).to_string(),
            "2023-W45"
        );
        let local = s.local_send_time(fired).unwrap();
        assert_eq!(local, at(2023, 11, 6, 8, 0));
        let utc = |zone: &str| local_instant(local, zone.parse().unwrap()).to_rfc3339();
        assert_eq!(utc("Asia/Karachi"), "2023-11-06T03:00:00+00:00");
        assert_eq!(utc("Asia/Shanghai"), "2023-11-06T00:00:00+00:00");
        assert_eq!(utc("Pacific/Kiritimati"), "2023-11-05T18:00:00+00:00");
        assert_eq!(utc("Pacific/Pago_Pago"), "2023-11-06T19:00:00+00:00");
        assert_eq!(utc("Asia/Kathmandu"), "2023-11-06T02:15:00+00:00");
        // Every reader's time is at or after the build, at most 26 hours later.
        assert_eq!(s.catch_up_window(), chrono::TimeDelta::hours(26 + 24));
        assert!(Schedule::default().local_send_time(fired).is_none());
        assert_eq!(
            Schedule::default().catch_up_window(),
            chrono::TimeDelta::hours(24)
        );
    }

    #[test]
    fn times_the_clocks_skip_are_read_with_the_offset_before_and_repeated_ones_the_first_time() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 10 March 2024: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist.
        assert_eq!(
            local_instant(at(2024, 3, 10, 2, 30), ny).to_rfc3339(),
            "2024-03-10T07:30:00+00:00",
            "03:30 EDT"
        );
        // 3 November 2024: 01:30 comes twice (EDT, then EST).
        assert_eq!(
            local_instant(at(2024, 11, 3, 1, 30), ny).to_rfc3339(),
            "2024-11-03T05:30:00+00:00",
            "the first 01:30, EDT"
        );
        let lord_howe: Tz = "Australia/Lord_Howe".parse().unwrap();
        // 1 October 2023: 02:00 jumps half an hour to 02:30 (+10:30 to +11).
        assert_eq!(
            local_instant(at(2023, 10, 1, 2, 15), lord_howe).to_rfc3339(),
            "2023-09-30T15:45:00+00:00"
        );
    }

    #[test]
    fn sends_are_grouped_by_zone_earliest_first_with_unknown_zones_on_the_list_zone() {
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        let sends = zone_sends(
            at(2023, 11, 6, 8, 0),
            [
                (Some("Asia/Karachi"), 2),
                (None, 1),
                (Some("Asia/Shanghai"), 2),
                (Some("Mars/Olympus"), 1),
                (Some("Asia/Phnom_Penh"), 1),
            ],
            shanghai,
        );
        let got: Vec<(&str, String, u64)> = sends
            .iter()
            .map(|s| (s.zone.name(), s.at.format("%H:%M").to_string(), s.readers))
            .collect();
        assert_eq!(
            got,
            [
                ("Asia/Shanghai", "00:00".to_owned(), 4),
                ("Asia/Phnom_Penh", "01:00".to_owned(), 1),
                ("Asia/Karachi", "03:00".to_owned(), 2),
            ]
        );
    }

    #[test]
    fn weekly_schedules_read_as_a_day_and_a_time_and_others_do_not() {
        let weekly = |s: &str| CronExpr::parse(s).unwrap().weekly();
        let eight = NaiveTime::from_hms_opt(8, 0, 0).unwrap();
        assert_eq!(weekly("0 0 8 * * Mon"), Some((Weekday::Mon, eight)));
        assert_eq!(
            weekly("0 30 17 * * 5"),
            Some((Weekday::Fri, NaiveTime::from_hms_opt(17, 30, 0).unwrap()))
        );
        assert_eq!(weekly("0 0 8 * * sun"), Some((Weekday::Sun, eight)));
        for other in [
            "0 0 8 * * Mon,Thu",
            "0 0 8 1 * *",
            "0 */5 * * * *",
            "0 0 8 * * Mon-Fri",
        ] {
            assert_eq!(weekly(other), None, "{other}");
        }
        let made = CronExpr::weekly_at(Weekday::Tue, NaiveTime::from_hms_opt(6, 45, 0).unwrap());
        assert_eq!(made.as_str(), "0 45 6 * * Tue");
        assert_eq!(
            made.weekly(),
            Some((Weekday::Tue, NaiveTime::from_hms_opt(6, 45, 0).unwrap()))
        );
        assert_eq!(parse_weekday(" Thu "), Ok(Weekday::Thu));
        assert!(parse_weekday("someday").is_err());
        assert_eq!(parse_time_of_day("08:00:00"), Ok(eight));
        assert!(parse_time_of_day("25:00").is_err());
        assert!(parse_time_of_day("8am").is_err());
    }
}
