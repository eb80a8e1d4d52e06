use super::is_chinese;
use chrono::{
    DateTime, Datelike, Duration, IsoWeek as ChronoWeek, NaiveDate, TimeZone as _, Utc, Weekday,
};
use std::fmt;

/// An ISO 8601 week such as `2023-W45`: Monday to Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IsoWeek {
    year: i32,
    week: u32,
}

impl IsoWeek {
    /// The first year whose weeks a digest can have.
    pub const FIRST_YEAR: i32 = 1900;

    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("must be an ISO week such as 2023-W45 (got {s:?})");
        let (year, week) = s.trim().split_once("-W").ok_or_else(bad)?;
        if year.len() != 4 || week.len() != 2 {
            return Err(bad());
        }
        if !(year.bytes().all(|b| b.is_ascii_digit()) && week.bytes().all(|b| b.is_ascii_digit())) {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let week: u32 = week.parse().map_err(|_| bad())?;
        // Earlier years would give dates before year 0 (the news of a digest reach
        // back a week), which RFC 3339 cannot write.
        if !(Self::FIRST_YEAR..=9999).contains(&year) {
            return Err(format!(
                "must be a week of the years {} to 9999 (got {s:?})",
                Self::FIRST_YEAR
            ));
        }
        if NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).is_none() {
            return Err(format!("{year} has no week {week}"));
        }
        Ok(Self { year, week })
    }

    /// The week a moment falls in, in the given zone.
    pub fn containing(at: DateTime<Utc>, tz: chrono_tz::Tz) -> Self {
        let w: ChronoWeek = at.with_timezone(&tz).date_naive().iso_week();
        Self {
            year: w.year(),
            week: w.week(),
        }
    }

    pub fn monday(&self) -> NaiveDate {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon).expect("checked when built")
    }

    /// Monday 00:00 in the zone, as an instant.
    pub fn start(&self, tz: chrono_tz::Tz) -> DateTime<Utc> {
        midnight(self.monday(), tz)
    }

    /// The next Monday 00:00 in the zone.
    pub fn end(&self, tz: chrono_tz::Tz) -> DateTime<Utc> {
        midnight(self.monday() + Duration::days(7), tz)
    }

    pub fn previous(&self) -> Self {
        let d = self.monday() - Duration::days(7);
        let w = d.iso_week();
        Self {
            year: w.year(),
            week: w.week(),
        }
    }

    /// The ISO year the week belongs to (not always its Monday's calendar year).
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The week's number in its ISO year, 1 to 53.
    pub fn week(&self) -> u32 {
        self.week
    }

    /// "6–12 November 2023".
    pub fn label(&self) -> String {
        self.label_in("en")
    }

    /// The week's dates as readers of `language` write them: Chinese for `zh…`
    /// ("2023年11月6日至12日"), else English ("6–12 November 2023").
    pub fn label_in(&self, language: &str) -> String {
        self.dates(is_chinese(language), true)
    }

    /// The week's dates without the year, for a line that names the year already:
    /// "11月6日至12日", "6–12 November" (the second year is kept when the week
    /// spans two: "12月28日至2021年1月3日").
    pub fn dates_in(&self, language: &str) -> String {
        self.dates(is_chinese(language), false)
    }

    fn dates(&self, chinese: bool, with_year: bool) -> String {
        let first = self.monday();
        let last = first + Duration::days(6);
        let same_year = first.year() == last.year();
        let same_month = same_year && first.month() == last.month();
        if chinese {
            let year = |d: NaiveDate| format!("{}年", d.year());
            let start = format!(
                "{}{}月{}日",
                if with_year {
                    year(first)
                } else {
                    String::new()
                },
                first.month(),
                first.day()
            );
            let end = if same_month {
                format!("{}日", last.day())
            } else if same_year {
                format!("{}月{}日", last.month(), last.day())
            } else {
                format!("{}{}月{}日", year(last), last.month(), last.day())
            };
            return format!("{start}至{end}");
        }
        let year = |d: NaiveDate| {
            if with_year || !same_year {
                format!(" {}", d.year())
            } else {
                String::new()
            }
        };
        if same_month {
            format!(
                "{}–{} {}{}",
                first.day(),
                last.day(),
                last.format("%B"),
                year(last)
            )
        } else if same_year {
            format!(
                "{} – {}{}",
                first.format("%-d %B"),
                last.format("%-d %B"),
                year(last)
            )
        } else {
            format!(
                "{}{} – {}{}",
                first.format("%-d %B"),
                year(first),
                last.format("%-d %B"),
                year(last)
            )
        }
    }
}

fn midnight(day: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    // Where midnight is skipped by a clock change, the day starts at the first instant.
    tz.from_local_datetime(&naive)
        .earliest()
        .unwrap_or_else(|| tz.from_utc_datetime(&naive))
        .with_timezone(&Utc)
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn week_45_of_2023_starts_on_monday_6_november() {
        let w = IsoWeek::parse("2023-W45").unwrap();
        assert_eq!(w.monday(), NaiveDate::from_ymd_opt(2023, 11, 6).unwrap());
        let sh = chrono_tz::Asia::Shanghai;
        assert_eq!(w.start(sh).to_rfc3339(), "2023-11-05T16:00:00+00:00");
        assert_eq!(w.end(sh).to_rfc3339(), "2023-11-12T16:00:00+00:00");
        assert_eq!(w.label(), "6–12 November 2023");
        assert_eq!((w.year(), w.week()), (2023, 45));
        assert_eq!(w.previous().to_string(), "2023-W44");
        let thursday = Utc.with_ymd_and_hms(2023, 11, 9, 6, 0, 0).unwrap();
        assert_eq!(IsoWeek::containing(thursday, sh), w);
    }

    #[test]
    fn week_labels_are_written_as_each_language_writes_dates() {
        let cases = [
            // (week, English, English without the year, Chinese, Chinese without the year)
            (
                "2023-W45",
                "6–12 November 2023",
                "6–12 November",
                "2023年11月6日至12日",
                "11月6日至12日",
            ),
            (
                "2023-W44",
                "30 October – 5 November 2023",
                "30 October – 5 November",
                "2023年10月30日至11月5日",
                "10月30日至11月5日",
            ),
            (
                "2020-W53",
                "28 December 2020 – 3 January 2021",
                "28 December 2020 – 3 January 2021",
                "2020年12月28日至2021年1月3日",
                "12月28日至2021年1月3日",
            ),
        ];
        for (week, en, en_short, zh, zh_short) in cases {
            let w = IsoWeek::parse(week).unwrap();
            assert_eq!(w.label(), en);
            assert_eq!(w.label_in("en-GB"), en);
            assert_eq!(
                w.label_in("fr"),
                en,
                "English for a language without its own"
            );
            assert_eq!(w.dates_in("en"), en_short);
            assert_eq!(w.label_in("zh"), zh);
            assert_eq!(w.label_in("zh-Hans"), zh);
            assert_eq!(w.dates_in("ZH"), zh_short);
        }
    }

    #[test]
    fn malformed_weeks_are_refused() {
        for bad in [
            "2023-45", "2023-W5", "2023-W54", "23-W45", "2023-W00", "2023W45", "",
        ] {
            assert!(IsoWeek::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IsoWeek::parse("2020-W53").is_ok(), "2020 had 53 weeks");
        assert!(IsoWeek::parse("2023-W53").is_err(), "2023 did not");
    }

    proptest! {
        #[test]
        fn a_week_round_trips_and_contains_its_own_days(days in 0i64..20_000, hour in 0u32..24) {
            let day = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap() + Duration::days(days);
            let at = Utc.from_utc_datetime(&day.and_hms_opt(hour, 0, 0).unwrap());
            let tz = chrono_tz::America::New_York;
            let w = IsoWeek::containing(at, tz);
            prop_assert_eq!(IsoWeek::parse(&w.to_string()).unwrap(), w);
            prop_assert!(w.start(tz) <= at && at < w.end(tz));
        }
    }
}
